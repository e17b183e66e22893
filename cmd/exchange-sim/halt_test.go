package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHaltCarriedAcrossTakeover kills the coordinator while a shock's
// band trip has SYM0 halted. The standby must restore the halt from the
// state the killed coordinator published: it rejects SYM0's orders as
// halted from its first command, and never trips SYM0 again, since it
// knows both the halt and the band re-anchored at the trip price. A
// standby with a fresh breaker would admit SYM0's orders and trip a
// second time against the band around the opening price.
//
// The shock at command 300 trips at about command 306 (the flow is
// seeded); the kill comes at 360. The halt lasts a minute, longer than
// the run, so that a slow takeover (the race detector) still finds it.
func TestHaltCarriedAcrossTakeover(t *testing.T) {
	const shockAt, killAt = 300, 360
	code, rep, out := simulateJSON(t, "-orders", "1500", "-batch", "4", "-halt", "1m",
		"-shock", "SYM0@"+itoa(shockAt)+":25", "-kill", "coordinator@"+itoa(killAt))
	require.Equal(t, exitOK, code, out)
	requireAudit(t, rep)
	assert.EqualValues(t, 1, num(t, rep, "faults", "recovered"), "the takeover")
	assert.EqualValues(t, 1, num(t, rep, "breaker", "restored"), "the halt was not carried to the standby")
	assert.EqualValues(t, 1, num(t, rep, "breaker", "trips"), "the standby tripped again: it forgot the halt or the re-anchored band")
	// Only killAt-shockAt commands went to the old coordinator after the
	// shock: more halted rejections than that were the standby's.
	assert.Greater(t, num(t, rep, "aborted", "halted"), float64(killAt-shockAt), "the standby admitted the halted symbol's orders")
}

func TestBadHalt(t *testing.T) {
	for _, v := range []string{"0s", "-1ms", "2h"} {
		_, _, err := parseOptions([]string{"-halt", v}, nil)
		assert.ErrorContains(t, err, "want a duration from 1ns to 1h", "-halt %s", v)
	}
}
