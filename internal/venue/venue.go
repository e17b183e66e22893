package venue

import (
	"fmt"
	"io"
	"sync"

	"github.com/commitcore/commitcore/engine"
	"github.com/commitcore/commitcore/matching"
	"github.com/commitcore/commitcore/risk"
	"github.com/commitcore/commitcore/settlement"
)

// New builds a fresh participant for role r from c: a *matching.Matcher, a
// *risk.Manager or a *settlement.Ledger at genesis. Every process that
// calls New with the same c and r gets the same state.
func New(c Config, r Role) (engine.Participant, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var (
		p   engine.Participant
		err error
	)
	switch r {
	case Matching:
		p, err = matching.New(c.matchingConfig())
	case Risk:
		p, err = risk.New(c.riskConfig())
	case Settlement:
		p, err = settlement.New(c.settlementConfig())
	default:
		return nil, fmt.Errorf("venue: new %v: no such role", r)
	}
	if err != nil {
		return nil, fmt.Errorf("venue: new %v: %w", r, err)
	}
	return p, nil
}

// NewAll builds one fresh participant per role, in Roles (NodeID) order,
// ready for engine.New.
func NewAll(c Config) ([]engine.Participant, error) {
	ps := make([]engine.Participant, len(Roles))
	for i, r := range Roles {
		p, err := New(c, r)
		if err != nil {
			return nil, err
		}
		ps[i] = p
	}
	return ps, nil
}

// Recorder wraps a participant and records the ids of the transactions it
// committed, through Commit or Apply, in the order it committed them, so
// that a run can check that every participant committed the same ones.
// Its methods may be called from the engine's runner while another
// goroutine reads Committed.
type Recorder struct {
	p         engine.Participant
	mu        sync.Mutex
	committed []engine.TxID
}

var _ engine.Participant = (*Recorder)(nil)

// NewRecorder returns a Recorder around p.
func NewRecorder(p engine.Participant) *Recorder { return &Recorder{p: p} }

// Unwrap returns the wrapped participant.
func (r *Recorder) Unwrap() engine.Participant { return r.p }

// Committed returns a copy of the committed transaction ids, in commit
// order.
func (r *Recorder) Committed() []engine.TxID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]engine.TxID(nil), r.committed...)
}

func (r *Recorder) record(tx engine.TxID) {
	r.mu.Lock()
	r.committed = append(r.committed, tx)
	r.mu.Unlock()
}

// Prepare calls the wrapped participant's Prepare.
func (r *Recorder) Prepare(tx engine.TxID, cmd *engine.Command, out *engine.Outcome) engine.Reason {
	return r.p.Prepare(tx, cmd, out)
}

// PreCommit calls the wrapped participant's PreCommit.
func (r *Recorder) PreCommit(tx engine.TxID, out *engine.Outcome) { r.p.PreCommit(tx, out) }

// Commit calls the wrapped participant's Commit and records tx.
func (r *Recorder) Commit(tx engine.TxID, out *engine.Outcome) {
	r.p.Commit(tx, out)
	r.record(tx)
}

// Abort calls the wrapped participant's Abort.
func (r *Recorder) Abort(tx engine.TxID) { r.p.Abort(tx) }

// Apply calls the wrapped participant's Apply and records tx if it
// succeeded.
func (r *Recorder) Apply(tx engine.TxID, cmd *engine.Command, out *engine.Outcome) error {
	if err := r.p.Apply(tx, cmd, out); err != nil {
		return err
	}
	r.record(tx)
	return nil
}

// Snapshot calls the wrapped participant's Snapshot.
func (r *Recorder) Snapshot(w io.Writer) error { return r.p.Snapshot(w) }

// Restore calls the wrapped participant's Restore. The record of committed
// ids is kept: it is the history of this Recorder, not of the state.
func (r *Recorder) Restore(rd io.Reader) error { return r.p.Restore(rd) }

// unwrap strips Recorders (and anything else with an Unwrap method
// returning a participant) off p.
func unwrap(p engine.Participant) engine.Participant {
	for {
		u, ok := p.(interface{ Unwrap() engine.Participant })
		if !ok {
			return p
		}
		p = u.Unwrap()
	}
}
