package venue

import (
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/commitcore/commitcore/engine"
)

// slackConfig gives c timeouts no scheduler hiccup on a shared 2-core CI
// machine reaches, as engine's tests do: these tests assert outcomes, not
// speed.
func slackConfig(c engine.Config) engine.Config {
	c.Timeouts = engine.Timeouts{Prepare: 5 * time.Second, PreCommit: 50 * time.Millisecond}
	c.DecisionTimeout, c.Grace = 10*time.Second, 10*time.Second
	return c
}

// driver feeds commands to a Core with at most window of them in flight and
// hands every Result to onResult, on the calling goroutine.
type driver struct {
	tb       testing.TB
	k        *engine.Core
	window   int
	out      int // sent, result not yet delivered
	onResult func(*engine.Result)
	deliver  func(*engine.Result)
}

func newDriver(tb testing.TB, k *engine.Core, window int, onResult func(*engine.Result)) *driver {
	d := &driver{tb: tb, k: k, window: window, onResult: onResult}
	d.deliver = func(r *engine.Result) {
		d.out--
		d.onResult(r)
	}
	return d
}

// send sends cmd, polling while the window or the Core is full.
func (d *driver) send(cmd *engine.Command) {
	for d.out >= d.window {
		d.poll()
	}
	for {
		_, err := d.k.Send(cmd)
		if err == nil {
			d.out++
			return
		}
		if !errors.Is(err, engine.ErrBusy) {
			d.tb.Fatalf("send %+v: %v", cmd, err)
		}
		d.poll()
	}
}

// poll runs one Poll; when it delivers nothing it yields the processor, so
// that on two cores the participants' runner gets to run.
func (d *driver) poll() {
	n, err := d.k.Poll(d.deliver)
	if err != nil {
		d.tb.Fatalf("poll: %v", err)
	}
	if n == 0 {
		runtime.Gosched()
	}
}

// drain polls until every command sent has its Result and nothing is in
// flight at the coordinator.
func (d *driver) drain() {
	for d.out > 0 || d.k.InFlight() > 0 {
		d.poll()
	}
}

// chaos wraps a participant and votes NO at random on transactions it
// would have voted YES on, releasing what the wrapped participant
// reserved: aborts forced at every participant, matching included.
type chaos struct {
	p        engine.Participant
	rng      *rand.Rand
	perMille int
	forced   atomic.Int64
}

// reasonForced is the reason chaos votes NO with.
const reasonForced = engine.ReasonParticipantUnavailable

func newChaos(p engine.Participant, seed uint64, perMille int) *chaos {
	return &chaos{p: p, rng: rand.New(rand.NewPCG(seed, 3)), perMille: perMille}
}

func (c *chaos) Unwrap() engine.Participant { return c.p }

func (c *chaos) Prepare(tx engine.TxID, cmd *engine.Command, out *engine.Outcome) engine.Reason {
	r := c.p.Prepare(tx, cmd, out)
	if r == engine.ReasonNone && c.rng.IntN(1000) < c.perMille {
		c.p.Abort(tx)
		out.Reset()
		c.forced.Add(1)
		return reasonForced
	}
	return r
}

func (c *chaos) PreCommit(tx engine.TxID, out *engine.Outcome) { c.p.PreCommit(tx, out) }
func (c *chaos) Commit(tx engine.TxID, out *engine.Outcome)    { c.p.Commit(tx, out) }
func (c *chaos) Abort(tx engine.TxID)                          { c.p.Abort(tx) }
func (c *chaos) Apply(tx engine.TxID, cmd *engine.Command, out *engine.Outcome) error {
	return c.p.Apply(tx, cmd, out)
}
func (c *chaos) Snapshot(w io.Writer) error { return c.p.Snapshot(w) }
func (c *chaos) Restore(r io.Reader) error  { return c.p.Restore(r) }
