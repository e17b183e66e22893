package circuitbreaker

import "github.com/commitcore/commitcore/engine"

// Gate wires a Breaker and the participants' overload breakers into the
// engine's coordinator: it implements engine.Gate, so setting it as
// engine.Config.Gate (or engine.CoordinatorConfig.Gate) is all the wiring
// a Core needs. The engine calls it on the coordinator's goroutine:
//
//   - Admit: a new order or replace for a halted scope is rejected with
//     engine.ReasonHalted and the instant trading resumes; then any command
//     meeting an open overload breaker (or a half-open one whose probe is
//     out) is rejected with engine.ReasonParticipantUnavailable and the
//     instant its recovery timeout ends. Cancels pass the halt check, not
//     the overload check: a cancel needs the participants as much as an
//     order does.
//   - Begin: Breaker.Begin tracks the transaction (or rejects it, if a halt
//     began since Admit); then the half-open breakers' probes are taken.
//   - Fills: Breaker.CheckFills on matching's tentative fills, before the
//     commit CAS; a trip makes the coordinator abort the transaction at once.
//   - Voted: each participant whose vote arrived is a success for its
//     overload breaker, each one the PREPARE timeout found silent a failure.
//   - Done: Breaker.Committed or Breaker.Aborted, for every Result.
//
// The Breaker stays safe for concurrent use (an operator's Halt from another
// goroutine races the coordinator's commit CAS, and the CAS settles it), but
// the Overloads belong to the coordinator's goroutine: read their State only
// between calls into the Core, from the goroutine that makes them.
type Gate struct {
	b *Breaker
	o *Overloads
}

var _ engine.Gate = (*Gate)(nil)

// NewGate returns the engine.Gate of the market and symbol breaker b and the
// per-participant overload breakers o (one per participant, in NodeID
// order). Either may be nil, to leave that kind of breaker out.
func NewGate(b *Breaker, o *Overloads) *Gate { return &Gate{b: b, o: o} }

// Admit implements engine.Gate.
func (g *Gate) Admit(cmd *engine.Command, now int64) (engine.Reason, int64) {
	if g.b != nil {
		if r, at := g.b.Admit(cmd, now); r != engine.ReasonNone {
			return r, at
		}
	}
	if g.o != nil {
		if i := g.o.blocked(now); i >= 0 {
			return engine.ReasonParticipantUnavailable, g.o.bs[i].retryAt()
		}
	}
	return engine.ReasonNone, 0
}

// Begin implements engine.Gate.
func (g *Gate) Begin(tx engine.TxID, cmd *engine.Command, now int64) (engine.Reason, int64) {
	if g.b != nil {
		if r, at := g.b.Begin(tx, cmd, now); r != engine.ReasonNone {
			return r, at
		}
	}
	if g.o != nil {
		g.o.take(now)
	}
	return engine.ReasonNone, 0
}

// Fills implements engine.Gate.
func (g *Gate) Fills(tx engine.TxID, out *engine.Outcome, now int64) bool {
	if g.b == nil || out.NFills == 0 {
		return false
	}
	return g.b.CheckFills(tx, out, now) != nil
}

// Voted implements engine.Gate.
func (g *Gate) Voted(_ engine.TxID, voted, missing uint32, now int64) {
	if g.o == nil {
		return
	}
	for i := range g.o.bs {
		bit := uint32(1) << i
		switch {
		case missing&bit != 0:
			g.o.Record(i, now, true)
		case voted&bit != 0:
			g.o.Record(i, now, false)
		}
	}
}

// Done implements engine.Gate.
func (g *Gate) Done(res *engine.Result, now int64) {
	if g.b == nil {
		return
	}
	if res.Reason == engine.ReasonNone {
		g.b.Committed(res.Tx, &res.Out, now)
		return
	}
	g.b.Aborted(res.Tx)
}
