package circuitbreaker

import (
	"fmt"
	"time"

	"github.com/commitcore/commitcore/engine"
)

// OverloadState is the state of one participant's overload breaker.
type OverloadState uint8

const (
	// Closed: the participant is healthy and every transaction goes ahead.
	Closed OverloadState = iota
	// Open: the participant failed too often; transactions are rejected
	// before PREPARE until the recovery timeout has passed.
	Open
	// HalfOpen: after the recovery timeout one probe transaction at a time
	// goes ahead; enough successes close the breaker, a failure reopens it.
	HalfOpen
)

// String returns "closed", "open" or "half_open".
func (s OverloadState) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half_open"
	}
	return fmt.Sprintf("overload_state(%d)", uint8(s))
}

// OverloadConfig configures an Overload breaker.
type OverloadConfig struct {
	// Window is the length of the sliding window over which the failure
	// rate is taken, and Buckets its resolution: the window slides by
	// Window/Buckets. Window must be a multiple of Buckets nanoseconds.
	Window  time.Duration
	Buckets int
	// MinSamples is the fewest observations in the window for the breaker
	// to open: a single early failure proves nothing.
	MinSamples int
	// FailurePercent opens the breaker when failures are at least this
	// share of the window's observations, in percent (1 to 100).
	FailurePercent int
	// RecoveryTimeout is how long the breaker stays open before it lets a
	// probe through; a probe that reports nothing within it is presumed
	// lost and another is let through.
	RecoveryTimeout time.Duration
	// Probes is how many consecutive successful probes close the breaker.
	Probes int
}

// DefaultOverloadConfig returns a breaker that opens at 50 % failures over
// at least 20 observations in a 1-second window of ten 100 ms buckets, and
// probes again after 1 second; one successful probe closes it.
func DefaultOverloadConfig() OverloadConfig {
	return OverloadConfig{
		Window:          time.Second,
		Buckets:         10,
		MinSamples:      20,
		FailurePercent:  50,
		RecoveryTimeout: time.Second,
		Probes:          1,
	}
}

const maxBuckets = 1024

func (c *OverloadConfig) validate() error {
	switch {
	case c.Buckets <= 0 || c.Buckets > maxBuckets:
		return fmt.Errorf("%w: Buckets = %d, want 1 to %d", ErrInvalidConfig, c.Buckets, maxBuckets)
	case c.Window <= 0 || int64(c.Window)%int64(c.Buckets) != 0:
		return fmt.Errorf("%w: Window = %v, want a positive multiple of Buckets (%d) nanoseconds", ErrInvalidConfig, c.Window, c.Buckets)
	case c.MinSamples <= 0:
		return fmt.Errorf("%w: MinSamples = %d, want at least 1", ErrInvalidConfig, c.MinSamples)
	case c.FailurePercent <= 0 || c.FailurePercent > 100:
		return fmt.Errorf("%w: FailurePercent = %d, want 1 to 100", ErrInvalidConfig, c.FailurePercent)
	case c.RecoveryTimeout <= 0:
		return fmt.Errorf("%w: RecoveryTimeout = %v, want a positive duration", ErrInvalidConfig, c.RecoveryTimeout)
	case c.Probes <= 0:
		return fmt.Errorf("%w: Probes = %d, want at least 1", ErrInvalidConfig, c.Probes)
	}
	return nil
}

// bucket counts the observations of one slice of the window.
type bucket struct {
	epoch     int64 // which slice of time (now / bucket length) it counts
	ok, fails int64
}

// Overload is one participant's overload breaker: closed, open or half-open
// on the failure rate over a sliding window. Failures are timeouts and
// transport errors, never NO votes: a NO is the participant working.
// Observations allocate nothing (the window is a ring of buckets).
//
// An Overload belongs to the coordinator's goroutine: it is not safe for
// concurrent use.
type Overload struct {
	cfg      OverloadConfig
	span     int64 // nanoseconds per bucket
	buckets  []bucket
	state    OverloadState
	openedAt int64 // when it last opened
	probing  bool  // a probe is out
	probeAt  int64 // when the probe went out
	passed   int   // consecutive successful probes
}

// NewOverload returns a closed breaker for cfg.
func NewOverload(cfg OverloadConfig) (*Overload, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	o := &Overload{
		cfg:     cfg,
		span:    int64(cfg.Window) / int64(cfg.Buckets),
		buckets: make([]bucket, cfg.Buckets),
	}
	o.reset()
	return o, nil
}

// reset empties the window.
func (o *Overload) reset() {
	for i := range o.buckets {
		o.buckets[i] = bucket{epoch: -1 << 63}
	}
}

// State returns the state as of the last call; an Open breaker whose
// recovery timeout has passed turns HalfOpen at the next Allow.
func (o *Overload) State() OverloadState { return o.state }

// Allow reports whether a new transaction may go to the participant at now.
// False means reject it before PREPARE with
// engine.ReasonParticipantUnavailable. In HalfOpen a true answer makes the
// transaction the probe, and its Record decides the breaker's fate.
func (o *Overload) Allow(now int64) bool {
	if !o.ready(now) {
		return false
	}
	o.take(now)
	return true
}

// ready reports whether Allow would say yes, moving Open to HalfOpen once
// the recovery timeout is over, without taking the probe.
func (o *Overload) ready(now int64) bool {
	switch o.state {
	case Open:
		if now-o.openedAt < int64(o.cfg.RecoveryTimeout) {
			return false
		}
		o.state, o.probing, o.passed = HalfOpen, false, 0
		return true
	case HalfOpen:
		return !o.probing || now-o.probeAt >= int64(o.cfg.RecoveryTimeout)
	}
	return true
}

// take sends the probe in HalfOpen.
func (o *Overload) take(now int64) {
	if o.state == HalfOpen {
		o.probing, o.probeAt = true, now
	}
}

// retryAt returns the instant a breaker that just refused a transaction
// will let one through: the end of the recovery timeout, of the open state
// or of the outstanding probe.
func (o *Overload) retryAt() int64 {
	if o.state == HalfOpen {
		return o.probeAt + int64(o.cfg.RecoveryTimeout)
	}
	return o.openedAt + int64(o.cfg.RecoveryTimeout)
}

// Record observes the result of one transaction at the participant at now:
// failed is true for a timeout or a transport error. In Closed it may open
// the breaker; in HalfOpen it is the probe's result; in Open it is a late
// result of a transaction admitted before the breaker opened, and ignored.
func (o *Overload) Record(now int64, failed bool) {
	switch o.state {
	case Open:
		return
	case HalfOpen:
		o.probing = false
		if failed {
			o.open(now)
			return
		}
		o.passed++
		if o.passed >= o.cfg.Probes {
			o.state = Closed
			o.reset()
		}
		return
	}
	epoch := floorDiv(now, o.span)
	b := &o.buckets[floorMod(epoch, int64(len(o.buckets)))]
	if b.epoch != epoch {
		*b = bucket{epoch: epoch}
	}
	if failed {
		b.fails++
	} else {
		b.ok++
	}
	if !failed {
		return
	}
	var ok, fails int64
	oldest := epoch - int64(len(o.buckets))
	for i := range o.buckets {
		if e := o.buckets[i].epoch; e > oldest && e <= epoch {
			ok += o.buckets[i].ok
			fails += o.buckets[i].fails
		}
	}
	n := ok + fails
	if n >= int64(o.cfg.MinSamples) && fails*100 >= int64(o.cfg.FailurePercent)*n {
		o.open(now)
	}
}

func (o *Overload) open(now int64) {
	o.state, o.openedAt, o.probing, o.passed = Open, now, false, 0
	o.reset()
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

func floorMod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// Overloads holds the overload breakers of all of a transaction's
// participants, so that the coordinator can admit a transaction only when
// every one allows it, and take a half-open probe only then.
type Overloads struct {
	bs []Overload
}

// NewOverloads returns n closed breakers, one per participant, for cfg.
func NewOverloads(n int, cfg OverloadConfig) (*Overloads, error) {
	if n <= 0 {
		return nil, fmt.Errorf("%w: %d participants, want at least 1", ErrInvalidConfig, n)
	}
	s := &Overloads{bs: make([]Overload, n)}
	for i := range s.bs {
		o, err := NewOverload(cfg)
		if err != nil {
			return nil, err
		}
		s.bs[i] = *o
	}
	return s, nil
}

// Admit reports whether a new transaction may start at now. It answers
// engine.ReasonParticipantUnavailable and the first participant whose
// breaker is open (or whose half-open probe is out) without taking any
// probe; otherwise engine.ReasonNone and -1, taking the probes of the
// half-open breakers.
func (s *Overloads) Admit(now int64) (engine.Reason, int) {
	if i := s.blocked(now); i >= 0 {
		return engine.ReasonParticipantUnavailable, i
	}
	s.take(now)
	return engine.ReasonNone, -1
}

// blocked returns the first participant whose breaker refuses a new
// transaction at now, or -1, without taking any probe.
func (s *Overloads) blocked(now int64) int {
	for i := range s.bs {
		if !s.bs[i].ready(now) {
			return i
		}
	}
	return -1
}

// take takes the half-open breakers' probes for a transaction admitted at
// now.
func (s *Overloads) take(now int64) {
	for i := range s.bs {
		s.bs[i].take(now)
	}
}

// Record observes the result of a transaction at participant i; see
// Overload.Record.
func (s *Overloads) Record(i int, now int64, failed bool) { s.bs[i].Record(now, failed) }

// State returns participant i's breaker state.
func (s *Overloads) State(i int) OverloadState { return s.bs[i].state }
