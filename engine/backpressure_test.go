package engine

import (
	"errors"
	"testing"
	"time"
)

// TestBurstIntoSmallRings sends a burst far larger than the rings to the
// participants can hold. The client meets back-pressure as ErrBusy (a
// bounded wait: it polls and sends again); PREPAREs that find a ring full
// are dropped, counted, and abort by the PREPARE timeout; every command
// gets exactly one Result and the participants agree with the Core.
func TestBurstIntoSmallRings(t *testing.T) {
	ps := []*NopParticipant{{}, {}, {}}
	cfg := Config{RingCapacity: 8192, Idle: IdleYield,
		Timeouts:        Timeouts{Prepare: 20 * time.Millisecond, PreCommit: 20 * time.Millisecond},
		DecisionTimeout: 10 * time.Second, Grace: 10 * time.Second}
	k, err := New(cfg, ps[0], ps[1], ps[2])
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000
	var busy, committed, timedOut int
	results := 0
	poll := func() {
		if _, err := k.Poll(func(r *Result) {
			results++
			switch r.Reason {
			case ReasonNone:
				committed++
			case ReasonTimeout:
				timedOut++
			default:
				t.Errorf("tx %d aborted with %v", r.Tx, r.Reason)
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	for i := uint64(0); i < n; {
		cmd := order(i)
		_, err := k.Send(&cmd)
		if errors.Is(err, ErrBusy) {
			busy++
			poll()
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		i++
	}
	deadline := time.Now().Add(time.Minute)
	for results < n {
		poll()
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d results after a minute", results, n)
		}
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d commands: %d committed, %d aborted by PREPARE timeout, %d messages dropped on full rings, %d ErrBusy",
		n, committed, timedOut, k.Dropped(), busy)
	if k.Dropped() == 0 && busy == 0 {
		t.Error("an 8 KiB ring took a 3,000-command burst without back-pressure: the test no longer tests it")
	}
	for i, p := range ps {
		if p.Committed != uint64(committed) {
			t.Errorf("participant %d committed %d, the Core %d", i, p.Committed, committed)
		}
	}
}
