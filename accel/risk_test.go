package accel

import (
	"errors"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/commitcore/commitcore/engine"
	"github.com/stretchr/testify/require"
)

// simClock is a simulated clock: tests move it by hand, so timing
// assertions are deterministic.
type simClock struct{ t int64 }

func (c *simClock) Now() int64 { return c.t }

// riskContract checks the RiskOffload contract against an implementation
// made by newOffload over a simulated clock and the given rules.
func riskContract(t *testing.T, newOffload func(capacity int, clock Clock, check RiskCheck) RiskOffload) {
	oddIsBad := func(tx engine.TxID, cmd *engine.Command) engine.Reason {
		if cmd.Qty%2 == 1 {
			return engine.ReasonMaxQty
		}
		return engine.ReasonNone
	}
	t.Run("ordered exactly once", func(t *testing.T) {
		o := newOffload(64, &simClock{}, oddIsBad)
		for i := range 40 {
			require.NoError(t, o.Submit(&RiskRequest{Tag: uint64(100 + i), Tx: engine.TxID(i), Cmd: engine.Command{Qty: int64(i)}}))
		}
		var got []uint64
		for len(got) < 40 {
			n := o.Poll(func(c *RiskCompletion) {
				want := engine.ReasonNone
				if c.Tx%2 == 1 {
					want = engine.ReasonMaxQty
				}
				require.Equal(t, want, c.Reason, "tx %d", c.Tx)
				require.Equal(t, uint64(c.Tx)+100, c.Tag)
				require.False(t, c.Late)
				got = append(got, c.Tag)
			})
			require.Positive(t, n, "completions missing: have %d of 40", len(got))
		}
		for i, tag := range got {
			require.Equal(t, uint64(100+i), tag, "completion %d out of order", i)
		}
		require.Zero(t, o.Poll(func(c *RiskCompletion) { t.Fatalf("duplicate completion of %d", c.Tag) }))
	})
	t.Run("back-pressure", func(t *testing.T) {
		o := newOffload(4, &simClock{}, oddIsBad)
		accepted := 0
		for i := range 10 {
			err := o.Submit(&RiskRequest{Tag: uint64(i)})
			if err != nil {
				require.ErrorIs(t, err, ErrOffloadBusy)
				continue
			}
			accepted++
		}
		require.Less(t, accepted, 10, "an offload never refuses work")
		done := 0
		for done < accepted {
			n := o.Poll(func(*RiskCompletion) {})
			require.Positive(t, n)
			done += n
		}
		require.Equal(t, accepted, done, "a refused submit yielded a completion")
		require.NoError(t, o.Submit(&RiskRequest{Tag: 99}), "room again after Poll")
	})
	t.Run("late completion is void", func(t *testing.T) {
		clock := &simClock{t: 1000}
		slow := func(tx engine.TxID, cmd *engine.Command) engine.Reason {
			clock.t += 500 // the rules take 500 ns
			return engine.ReasonNone
		}
		o := newOffload(8, clock, slow)
		require.Equal(t, engine.ReasonNone, NewRiskCaller(o, clock, nil).Check(&RiskRequest{Tag: 1, Deadline: clock.t + 600}))
		require.Equal(t, engine.ReasonTimeout, NewRiskCaller(o, clock, nil).Check(&RiskRequest{Tag: 2, Deadline: clock.t + 400}),
			"a YES past its deadline became a YES vote")
		require.Zero(t, o.Poll(func(c *RiskCompletion) { t.Fatalf("completion %d delivered twice", c.Tag) }))
	})
}

func TestInlineRiskContract(t *testing.T) {
	riskContract(t, func(capacity int, clock Clock, check RiskCheck) RiskOffload {
		r, err := NewInlineRisk(capacity, clock, check)
		require.NoError(t, err)
		return r
	})
}

// laggingOffload completes each check lag nanoseconds of simulated time
// after its submission, in order: a stand-in for hardware with latency.
type laggingOffload struct {
	clock *simClock
	lag   int64
	due   []int64
	comp  []RiskCompletion
}

func (l *laggingOffload) Submit(req *RiskRequest) error {
	l.due = append(l.due, l.clock.t+l.lag)
	done := l.clock.t + l.lag
	l.comp = append(l.comp, RiskCompletion{Tag: req.Tag, Tx: req.Tx, Done: done, Late: req.Deadline != 0 && done > req.Deadline})
	return nil
}

func (l *laggingOffload) Poll(fn func(*RiskCompletion)) int {
	n := 0
	for len(l.due) > 0 && l.due[0] <= l.clock.t {
		fn(&l.comp[0])
		l.due, l.comp = l.due[1:], l.comp[1:]
		n++
	}
	return n
}

// TestRiskCallerAbandonsTimedOut: a check whose completion has not come by
// its deadline is a NO with ReasonTimeout, and its completion, arriving
// later, is discarded by the next check rather than taken for the next
// verdict.
func TestRiskCallerAbandonsTimedOut(t *testing.T) {
	clock := &simClock{}
	o := &laggingOffload{clock: clock, lag: 300}
	c := NewRiskCaller(o, clock, func() { clock.t += 100 })
	require.Equal(t, engine.ReasonTimeout, c.Check(&RiskRequest{Tag: 1, Deadline: clock.t + 200}))
	require.Equal(t, engine.ReasonNone, c.Check(&RiskRequest{Tag: 2, Deadline: clock.t + 1000}))
	require.Empty(t, o.due, "completions left undelivered")
}

func TestInlineRiskBusyError(t *testing.T) {
	r, err := NewInlineRisk(1, &simClock{}, func(engine.TxID, *engine.Command) engine.Reason { return engine.ReasonNone })
	require.NoError(t, err)
	require.NoError(t, r.Submit(&RiskRequest{Tag: 1}))
	err = r.Submit(&RiskRequest{Tag: 2})
	require.True(t, errors.Is(err, ErrOffloadBusy), "%v", err)
	require.Equal(t, engine.ReasonBackpressure, NewRiskCaller(r, &simClock{}, nil).Check(&RiskRequest{Tag: 3}))
	_, err = NewInlineRisk(0, &simClock{}, nil)
	require.Error(t, err)
}

// BenchmarkInlineRiskCheck is the cost of a check through the offload
// contract (submit, poll, deadline) beside its peer, the same rules called
// directly: blocks of 256 checks of each alternate, each block timed, and
// the median block gives each path's cost per check (the ns-per-check
// metrics); ns/op is one block of each.
func BenchmarkInlineRiskCheck(b *testing.B) {
	const block = 256
	clock := NewMonotonicClock()
	rules := func(_ engine.TxID, cmd *engine.Command) engine.Reason {
		if cmd.Qty > 1000 {
			return engine.ReasonMaxQty
		}
		return engine.ReasonNone
	}
	r, err := NewInlineRisk(16, clock, rules)
	require.NoError(b, err)
	c := NewRiskCaller(r, clock, nil)
	req := RiskRequest{Cmd: engine.Command{Qty: 10}}
	direct := func(i int) engine.Reason {
		_ = clock.Now() + 100_000 // the deadline the offload path computes
		return rules(engine.TxID(i), &req.Cmd)
	}
	offload := func(i int) engine.Reason {
		req.Tag = uint64(i)
		req.Deadline = clock.Now() + 100_000
		return c.Check(&req)
	}
	paths := []func(int) engine.Reason{direct, offload}
	hs := []*hdrhistogram.Histogram{hdrhistogram.New(1, int64(time.Second), 3), hdrhistogram.New(1, int64(time.Second), 3)}
	late := 0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		for k := range paths {
			k = (k + i) % len(paths)
			t0 := time.Now()
			for j := range block {
				switch v := paths[k](i*block + j); v {
				case engine.ReasonNone:
				case engine.ReasonTimeout:
					late++ // preempted for 100 µs between stamping and checking
				default:
					b.Fatalf("check: %v", v)
				}
			}
			hs[k].RecordValue(int64(time.Since(t0)))
		}
	}
	d, o := float64(hs[0].ValueAtPercentile(50))/block, float64(hs[1].ValueAtPercentile(50))/block
	b.ReportMetric(d, "direct-ns/check")
	b.ReportMetric(o, "offload-ns/check")
	b.ReportMetric(o/d, "offload/direct")
	b.ReportMetric(float64(late), "late")
}
