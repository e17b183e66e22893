package circuitbreaker

import (
	"fmt"
	"testing"
	"time"

	"github.com/commitcore/commitcore/engine"
)

// step is one call on an Overload and what must follow: for allow, the
// answer; for every step, the state after it.
type step struct {
	allow  bool // call Allow (else Record)
	now    int64
	failed bool // Record's argument
	n      int  // repeat Record n times (0 = once)
	want   bool // Allow's answer
	state  OverloadState
}

func allowAt(now int64, want bool, s OverloadState) step {
	return step{allow: true, now: now, want: want, state: s}
}

func recordAt(now int64, failed bool, n int, s OverloadState) step {
	return step{now: now, failed: failed, n: n, state: s}
}

func TestOverloadTransitions(t *testing.T) {
	// Window 1 s of ten 100 ms buckets, 50 % over ≥ 4 samples, recovery 1 s.
	cfg := OverloadConfig{Window: time.Second, Buckets: 10, MinSamples: 4, FailurePercent: 50,
		RecoveryTimeout: time.Second, Probes: 1}
	const ms = int64(time.Millisecond)
	tests := []struct {
		name   string
		probes int
		steps  []step
	}{
		{"closed allows", 0, []step{allowAt(0, true, Closed), recordAt(0, false, 10, Closed), allowAt(1, true, Closed)}},
		{"too few samples stay closed", 0, []step{recordAt(0, true, 3, Closed)}},
		{"closed to open at the threshold", 0, []step{
			recordAt(0, false, 2, Closed), recordAt(ms, true, 1, Closed), recordAt(2*ms, true, 1, Open),
			allowAt(3*ms, false, Open)}},
		{"just under the threshold stays closed", 0, []step{
			recordAt(0, false, 11, Closed), recordAt(ms, true, 10, Closed)}},
		{"old failures slide out of the window", 0, []step{
			recordAt(0, true, 3, Closed), recordAt(1000*ms, true, 1, Closed),
			recordAt(1000*ms, true, 2, Closed), recordAt(1000*ms, true, 1, Open)}},
		{"failures in the window's last bucket count", 0, []step{
			recordAt(100*ms, true, 3, Closed), recordAt(1099*ms, true, 1, Open)}},
		{"open rejects until the recovery timeout", 0, []step{
			recordAt(0, true, 4, Open), allowAt(999*ms, false, Open), allowAt(1000*ms, true, HalfOpen)}},
		{"open ignores late results", 0, []step{
			recordAt(0, true, 4, Open), recordAt(ms, false, 50, Open), allowAt(999*ms, false, Open)}},
		{"half-open lets one probe at a time", 0, []step{
			recordAt(0, true, 4, Open), allowAt(1000*ms, true, HalfOpen), allowAt(1001*ms, false, HalfOpen)}},
		{"half-open probe success closes", 0, []step{
			recordAt(0, true, 4, Open), allowAt(1000*ms, true, HalfOpen), recordAt(1001*ms, false, 1, Closed),
			allowAt(1002*ms, true, Closed)}},
		{"closing forgets the old window", 0, []step{
			recordAt(0, true, 4, Open), allowAt(1000*ms, true, HalfOpen), recordAt(1000*ms, false, 1, Closed),
			recordAt(1000*ms, true, 3, Closed), recordAt(1000*ms, true, 1, Open)}},
		{"half-open probe failure reopens", 0, []step{
			recordAt(0, true, 4, Open), allowAt(1000*ms, true, HalfOpen), recordAt(1500*ms, true, 1, Open),
			allowAt(2499*ms, false, Open), allowAt(2500*ms, true, HalfOpen)}},
		{"a lost probe is replaced after the recovery timeout", 0, []step{
			recordAt(0, true, 4, Open), allowAt(1000*ms, true, HalfOpen), allowAt(1999*ms, false, HalfOpen),
			allowAt(2000*ms, true, HalfOpen), recordAt(2001*ms, false, 1, Closed)}},
		{"several probes to close", 3, []step{
			recordAt(0, true, 4, Open),
			allowAt(1000*ms, true, HalfOpen), recordAt(1001*ms, false, 1, HalfOpen),
			allowAt(1002*ms, true, HalfOpen), recordAt(1003*ms, false, 1, HalfOpen),
			allowAt(1004*ms, true, HalfOpen), recordAt(1005*ms, false, 1, Closed)}},
		{"a failed probe among several reopens", 2, []step{
			recordAt(0, true, 4, Open),
			allowAt(1000*ms, true, HalfOpen), recordAt(1001*ms, false, 1, HalfOpen),
			allowAt(1002*ms, true, HalfOpen), recordAt(1003*ms, true, 1, Open),
			allowAt(2002*ms, false, Open), allowAt(2003*ms, true, HalfOpen), recordAt(2004*ms, false, 1, HalfOpen)}},
		{"negative clock", 0, []step{
			recordAt(-5*ms, true, 2, Closed), recordAt(-ms, true, 2, Open),
			allowAt(998*ms, false, Open), allowAt(999*ms, true, HalfOpen)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			if tt.probes > 0 {
				c.Probes = tt.probes
			}
			o, err := NewOverload(c)
			must.NoError(t, err)
			for i, s := range tt.steps {
				if s.allow {
					check.Equal(t, s.want, o.Allow(s.now), "step %d: Allow(%d)", i, s.now)
				} else {
					for range max(s.n, 1) {
						o.Record(s.now, s.failed)
					}
				}
				must.Equal(t, s.state, o.State(), "step %d: state", i)
			}
		})
	}
}

func TestOverloadConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		edit func(*OverloadConfig)
	}{
		{"zero buckets", func(c *OverloadConfig) { c.Buckets = 0 }},
		{"too many buckets", func(c *OverloadConfig) { c.Buckets = maxBuckets + 1 }},
		{"zero window", func(c *OverloadConfig) { c.Window = 0 }},
		{"window not a multiple of buckets", func(c *OverloadConfig) { c.Window = 7; c.Buckets = 2 }},
		{"zero samples", func(c *OverloadConfig) { c.MinSamples = 0 }},
		{"zero percent", func(c *OverloadConfig) { c.FailurePercent = 0 }},
		{"over 100 percent", func(c *OverloadConfig) { c.FailurePercent = 101 }},
		{"zero recovery", func(c *OverloadConfig) { c.RecoveryTimeout = 0 }},
		{"zero probes", func(c *OverloadConfig) { c.Probes = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultOverloadConfig()
			tt.edit(&c)
			_, err := NewOverload(c)
			must.ErrorIs(t, err, ErrInvalidConfig)
			t.Log(err)
		})
	}
	_, err := NewOverloads(0, DefaultOverloadConfig())
	check.ErrorIs(t, err, ErrInvalidConfig)
}

func TestOverloadsAdmit(t *testing.T) {
	cfg := DefaultOverloadConfig()
	s, err := NewOverloads(3, cfg)
	must.NoError(t, err)
	rt := int64(cfg.RecoveryTimeout)
	r, who := s.Admit(0)
	check.Equal(t, engine.ReasonNone, r)
	check.Equal(t, -1, who)
	for range cfg.MinSamples {
		s.Record(1, 0, true)
		s.Record(2, 0, true)
	}
	check.Equal(t, Open, s.State(1))
	check.Equal(t, Open, s.State(2))
	check.Equal(t, Closed, s.State(0))
	r, who = s.Admit(1)
	check.Equal(t, engine.ReasonParticipantUnavailable, r)
	check.Equal(t, 1, who)

	// Participant 1 is due for a probe before 2 is: the rejection because
	// of 2 must not spend 1's probe.
	s.Record(2, 0, false) // ignored while open
	s.bs[2].openedAt = rt / 2
	r, who = s.Admit(rt)
	check.Equal(t, engine.ReasonParticipantUnavailable, r)
	check.Equal(t, 2, who)
	check.Equal(t, HalfOpen, s.State(1))
	check.False(t, s.bs[1].probing, "no probe taken for a rejected transaction")
	r, _ = s.Admit(rt + rt/2)
	check.Equal(t, engine.ReasonNone, r, "both probe together")
	r, who = s.Admit(rt + rt/2)
	check.Equal(t, engine.ReasonParticipantUnavailable, r, "one probe at a time")
	check.Equal(t, 1, who)
	s.Record(0, rt+rt/2, false)
	s.Record(1, rt+rt/2, false)
	s.Record(2, rt+rt/2, false)
	for i := range 3 {
		check.Equal(t, Closed, s.State(i), fmt.Sprintf("participant %d", i))
	}
}

func TestOverloadStateString(t *testing.T) {
	for s, want := range map[OverloadState]string{Closed: "closed", Open: "open", HalfOpen: "half_open", 9: "overload_state(9)"} {
		check.Equal(t, want, s.String())
	}
}
