package accel

import (
	"errors"
	"fmt"

	"github.com/commitcore/commitcore/engine"
)

// ErrOffloadBusy means a RiskOffload has as many checks outstanding as it
// can hold: Poll, then submit again (or vote NO with ReasonBackpressure).
var ErrOffloadBusy = errors.New("accel: risk offload busy")

// RiskRequest is one pre-trade check handed to a RiskOffload.
type RiskRequest struct {
	// Tag is the caller's name for the check, echoed by its completion.
	// Tags of outstanding checks must differ; the transaction id serves.
	Tag uint64
	// Tx and Cmd are the transaction and the command to check.
	Tx  engine.TxID
	Cmd engine.Command
	// Deadline is the reading of the offload's Clock after which the
	// caller no longer waits for the verdict; 0 means none.
	Deadline int64
}

// RiskCompletion is the verdict on one RiskRequest.
type RiskCompletion struct {
	Tag uint64
	Tx  engine.TxID
	// Reason is ReasonNone when the command passes, the rule it broke
	// otherwise.
	Reason engine.Reason
	// Done is the reading of the offload's Clock when the check finished.
	Done int64
	// Late reports that the check finished after the request's Deadline.
	// A late verdict is void: see RiskOffload.
	Late bool
}

// RiskOffload is an asynchronous pre-trade check, the software shape of a
// risk engine in an FPGA: the risk participant submits the check at
// PREPARE and polls for its completion instead of running the rules
// itself. Every implementation honours this contract (riskContract in the
// tests checks it):
//
//   - Exactly once: every Submit that returns nil yields exactly one
//     completion from Poll; a Submit that fails yields none.
//   - Ordering: completions come out of Poll in submission order, the
//     order in which Participant.Prepare sees transactions, whatever order
//     the hardware finished them in.
//   - Back-pressure: Submit never blocks; with too many checks outstanding
//     it returns ErrOffloadBusy and the caller votes NO (it must not wait
//     beyond its PREPARE budget).
//   - Timeouts belong to the caller. If the completion of a request has
//     not come out of Poll by its Deadline, the caller votes NO with
//     ReasonTimeout and abandons the tag. The completion still comes,
//     exactly once, and the caller discards it, whatever it says.
//   - A late completion (Late set: finished after its Deadline) is void
//     even when the caller has not given up yet: a YES that missed its
//     deadline never turns into a YES vote. An implementation may skip the
//     rules of a request already past its deadline and complete it late.
//   - No side effects the caller must undo: reservations stay with the
//     risk participant, which makes them only on a YES it acts on, so a
//     voided verdict leaves nothing behind.
//
// An implementation is used by one goroutine at a time (the participant's).
type RiskOffload interface {
	// Submit hands req to the offload; req is copied.
	Submit(req *RiskRequest) error
	// Poll hands every completion that is ready to fn, in submission
	// order, and returns how many. fn must not keep the pointer.
	Poll(fn func(*RiskCompletion)) int
}

// RiskCheck is a set of pre-trade rules: it returns ReasonNone when cmd
// passes and the broken rule's reason otherwise.
type RiskCheck func(tx engine.TxID, cmd *engine.Command) engine.Reason

// InlineRisk is the software RiskOffload: Submit runs the rules at once on
// the caller's goroutine and queues the completion for the next Poll. It
// keeps the contract, late completions included (rules slower than the
// deadline complete late), and allocates nothing after NewInlineRisk.
type InlineRisk struct {
	check RiskCheck
	clock Clock
	q     []RiskCompletion
	head  int
	n     int
}

// NewInlineRisk returns an InlineRisk running check, stamping completions
// with clock, and holding at most capacity completions between Polls.
func NewInlineRisk(capacity int, clock Clock, check RiskCheck) (*InlineRisk, error) {
	if capacity <= 0 || clock == nil || check == nil {
		return nil, fmt.Errorf("new inline risk: needs a positive capacity (got %d), a clock and a check", capacity)
	}
	return &InlineRisk{check: check, clock: clock, q: make([]RiskCompletion, capacity)}, nil
}

// Submit runs the check and queues its completion.
func (r *InlineRisk) Submit(req *RiskRequest) error {
	if r.n == len(r.q) {
		return fmt.Errorf("submit check %d: %d outstanding: %w", req.Tag, r.n, ErrOffloadBusy)
	}
	c := &r.q[(r.head+r.n)%len(r.q)]
	r.n++
	c.Tag, c.Tx = req.Tag, req.Tx
	c.Reason = r.check(req.Tx, &req.Cmd)
	c.Done = r.clock.Now()
	c.Late = req.Deadline != 0 && c.Done > req.Deadline
	return nil
}

// Poll delivers the queued completions in submission order.
func (r *InlineRisk) Poll(fn func(*RiskCompletion)) int {
	n := r.n
	for ; r.n > 0; r.n-- {
		fn(&r.q[r.head])
		r.head = (r.head + 1) % len(r.q)
	}
	return n
}

// RiskCaller is the caller's side of the contract for a participant that
// waits for its verdict within PREPARE. Like the offload it is used by one
// goroutine, and it allocates nothing per check.
type RiskCaller struct {
	o       RiskOffload
	clock   Clock
	wait    func()
	take    func(*RiskCompletion)
	tag     uint64
	got     bool
	verdict engine.Reason
}

// NewRiskCaller returns a caller of o that reads deadlines on clock (the
// offload's) and calls wait between empty polls (nil spins).
func NewRiskCaller(o RiskOffload, clock Clock, wait func()) *RiskCaller {
	c := &RiskCaller{o: o, clock: clock, wait: wait}
	c.take = c.onCompletion
	return c
}

// Check submits req and polls until its completion arrives or the clock
// passes req.Deadline. It returns the verdict; ReasonTimeout when the
// deadline passed first or the completion is late; ReasonBackpressure
// when the offload is busy. Completions of checks abandoned earlier come
// first (submission order) and are discarded on the way.
func (c *RiskCaller) Check(req *RiskRequest) engine.Reason {
	if err := c.o.Submit(req); err != nil {
		return engine.ReasonBackpressure
	}
	c.tag, c.got, c.verdict = req.Tag, false, engine.ReasonTimeout
	for {
		c.o.Poll(c.take)
		if c.got {
			return c.verdict
		}
		if req.Deadline != 0 && c.clock.Now() > req.Deadline {
			return engine.ReasonTimeout
		}
		if c.wait != nil {
			c.wait()
		}
	}
}

func (c *RiskCaller) onCompletion(r *RiskCompletion) {
	if r.Tag == c.tag && !c.got {
		c.got = true
		if !r.Late {
			c.verdict = r.Reason
		}
	}
}
