package circuitbreaker

import (
	"errors"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/commitcore/commitcore/engine"
)

// txLog is what one simulated coordinator saw of one transaction. The
// stamps come from one atomic counter that is also the breaker's clock, so
// they order events across goroutines.
type txLog struct {
	tx        engine.TxID
	sym       uint32
	beginCall int64 // just before Begin
	begun     int64 // Begin returned ReasonNone (0: rejected)
	release   int64 // just before the slot was released (0: never begun)
	done      int64 // after Committed or Aborted returned
	won       bool  // the coordinator's commit CAS won
	decided   engine.Reason
	voteNo    bool
}

// tripLog is one report and the stamps around the call that produced it.
type tripLog struct {
	rep        *Report
	start, end int64
}

// resumeLog is an operator's Resume of scope, stamped just before the call.
type resumeLog struct {
	scope Scope
	at    int64
}

// TestConcurrentTrips races real goroutines: simulated coordinators doing
// Open, Begin, CheckFills, the commit CAS and Release on a real
// engine.DecisionTable in heap memory, and an operator halting and resuming
// scopes at the same time. It asserts that no transaction is reported
// aborted after its commit point (or completed without one), that each
// report's sets are disjoint and exact (everything in flight throughout the
// trip is in it, nothing finished before it or begun after it is), and that
// every transaction the breaker aborted is in a report, and that nothing
// begun during a halt of its scope commits. "In flight" runs
// from Begin to Committed or Aborted; "throughout" also needs the slot
// unreleased, since a released slot may be reused and then counts as done.
func TestConcurrentTrips(t *testing.T) {
	const (
		coords   = 4
		perCoord = 1500
		window   = 8
		slots    = 1024
		symbols  = 4
	)
	table, err := engine.InitDecisionTable(make([]byte, engine.DecisionTableSize(slots)), slots)
	must.NoError(t, err)
	must.NoError(t, table.AdvanceEpoch(1))
	br, err := New(Config{Symbols: symbols, Band: Band{WidthBps: 1000, Halt: 300, Reference: ReferenceFixed},
		MaxInFlight: slots}, table)
	must.NoError(t, err)
	for sym := range uint32(symbols) {
		must.NoError(t, br.SetReference(sym, 1000))
	}

	var clock, seq atomic.Int64
	now := func() int64 { return clock.Add(1) }
	var mu sync.Mutex
	var trips []tripLog
	var resumes []resumeLog
	addTrip := func(rep *Report, start, end int64) {
		mu.Lock()
		trips = append(trips, tripLog{rep, start, end})
		mu.Unlock()
	}
	logs := make([][]*txLog, coords)
	var wg sync.WaitGroup
	stop := make(chan struct{})

	// The operator.
	var opDone sync.WaitGroup
	opDone.Add(1)
	go func() {
		defer opDone.Done()
		rng := rand.New(rand.NewPCG(99, 1))
		for {
			select {
			case <-stop:
				return
			default:
			}
			scope := MarketScope()
			if k := rng.IntN(symbols + 1); k < symbols {
				scope = SymbolScope(uint32(k))
			}
			start := now()
			rep, err := br.Halt(scope, start, time.Duration(50+rng.IntN(200)))
			end := now()
			if err == nil {
				addTrip(rep, start, end)
			}
			if rng.IntN(3) == 0 {
				at := now()
				mu.Lock()
				resumes = append(resumes, resumeLog{scope, at})
				mu.Unlock()
				_ = br.Resume(scope, at)
			}
			for range rng.IntN(200) {
				runtime.Gosched()
			}
		}
	}()

	for c := range coords {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			var active []*txLog
			started := 0
			for (started < perCoord && !t.Failed()) || len(active) > 0 {
				if started < perCoord && len(active) < window {
					started++
					if x := begin(t, br, table, rng, &seq, now); x != nil {
						active = append(active, x)
						logs[c] = append(logs[c], x)
					}
					continue
				}
				i := rng.IntN(len(active))
				if rng.IntN(3) != 0 {
					runtime.Gosched() // a participant is still voting
					continue
				}
				finish(t, br, table, rng, active[i], now, addTrip)
				active = slices.Delete(active, i, i+1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	opDone.Wait()
	if t.Failed() {
		return
	}

	byTx := map[engine.TxID]*txLog{}
	for _, l := range logs {
		for _, x := range l {
			byTx[x.tx] = x
		}
	}
	reportedAborted := map[engine.TxID]bool{}
	bandTrips, settled := 0, 0
	for _, tr := range trips {
		r := tr.rep
		if r.Cause == CauseBand {
			bandTrips++
		}
		must.Empty(t, r.Unresolved, "unresolved in %v", r)
		check.True(t, slices.IsSorted(r.Aborted) && slices.IsSorted(r.Completed), "sorted: %v", r)
		in := map[engine.TxID]bool{}
		for _, tx := range r.Aborted {
			x := byTx[tx]
			must.NotNil(t, x, "report names unknown tx %d", tx)
			check.False(t, x.won, "tx %d reported aborted, yet its commit CAS won: %v", tx, r)
			in[tx] = true
			reportedAborted[tx] = true
		}
		for _, tx := range r.Completed {
			x := byTx[tx]
			must.NotNil(t, x, "report names unknown tx %d", tx)
			check.True(t, x.won, "tx %d reported completed without its commit CAS: %v", tx, r)
			check.False(t, in[tx], "tx %d both aborted and completed: %v", tx, r)
			in[tx] = true
		}
		settled += len(in)
		// The halt surely lasts until its resume instant or the first
		// Resume of its scope after it.
		haltEnd := r.ResumesAt
		for _, rs := range resumes {
			if rs.scope == r.Scope && rs.at > tr.start {
				haltEnd = min(haltEnd, rs.at)
			}
		}
		for _, x := range byTx {
			if !r.Scope.covers(x.sym) || x.tx == r.Tx && r.Cause != CauseOperator {
				continue
			}
			throughout := x.begun != 0 && x.begun < tr.start && x.release > tr.end
			outside := x.begun == 0 || x.done < tr.start || x.beginCall > tr.end
			if throughout {
				check.True(t, in[x.tx], "tx %d was in flight throughout the trip %v but is not in its report", x.tx, r)
			}
			if outside {
				check.False(t, in[x.tx], "tx %d was not in flight at the trip %v but is in its report", x.tx, r)
			}
			if x.beginCall > tr.end && x.beginCall < haltEnd {
				check.False(t, x.won, "tx %d begun during the halt %v committed", x.tx, r)
			}
		}
	}
	committed, breakerAborts := 0, 0
	for _, x := range byTx {
		if x.won {
			committed++
		}
		if x.decided == engine.ReasonCircuitBreaker {
			breakerAborts++
			check.True(t, reportedAborted[x.tx], "tx %d aborted by the breaker, in no report", x.tx)
		}
		if x.begun == 0 {
			check.False(t, x.won, "tx %d rejected by Begin committed", x.tx)
		}
	}
	t.Logf("%d transactions, %d committed, %d trips (%d on the band) settled %d, %d aborted by the breaker",
		len(byTx), committed, len(trips), bandTrips, settled, breakerAborts)
	check.True(t, len(trips) > 0 && breakerAborts > 0 && committed > 0, "the race was not exercised")
	check.Equal(t, 0, br.InFlight())
}

// begin admits, opens and begins one transaction; nil if Admit rejected it.
func begin(t *testing.T, br *Breaker, table *engine.DecisionTable, rng *rand.Rand, seq *atomic.Int64, now func() int64) *txLog {
	cmd := newOrder(uint32(rng.IntN(4)), 1000)
	if r, _ := br.Admit(cmd, now()); r != engine.ReasonNone {
		return nil
	}
	if rng.IntN(2) == 0 {
		runtime.Gosched() // Propose's work: a halt may land after Admit
	}
	x := &txLog{tx: engine.MakeTxID(1, uint64(seq.Add(1))), sym: cmd.Symbol, voteNo: rng.IntN(20) == 0}
	if err := table.Open(x.tx); err != nil {
		// The slot still holds a transaction 1024 ids older, in some
		// coordinator's window (a real coordinator answers ErrBusy), or
		// this goroutine lost the CPU between taking its id and opening
		// it, and a newer id took the slot: skip the id either way.
		if !errors.Is(err, engine.ErrSlotBusy) && !errors.Is(err, engine.ErrStaleEpoch) {
			t.Errorf("open tx %d: %v", x.tx, err)
		}
		return nil
	}
	x.beginCall = now()
	if r, _ := br.Begin(x.tx, cmd, x.beginCall); r == engine.ReasonNone {
		x.begun = now()
	}
	return x
}

// finish runs the rest of x: matching's YES through CheckFills, the commit
// CAS (or a NO vote's abort), the slot's release and the breaker's Done.
func finish(t *testing.T, br *Breaker, table *engine.DecisionTable, rng *rand.Rand, x *txLog, now func() int64, addTrip func(*Report, int64, int64)) {
	price := int64(1000 + rng.IntN(100) - 50)
	if rng.IntN(150) == 0 {
		price = 1200 // outside the band
	}
	out := outcome(x.sym, price)
	start := now()
	if rep := br.CheckFills(x.tx, out, start); rep != nil {
		addTrip(rep, start, now())
		if _, in := slices.BinarySearch(rep.Aborted, x.tx); !in {
			t.Errorf("tripping tx %d not aborted by its own trip: %v", x.tx, rep)
		}
	}
	var d engine.Decision
	var err error
	if x.voteNo {
		d, x.decided, err = table.Abort(x.tx, engine.ReasonInsufficientCash)
	} else {
		d, x.decided, err = table.Commit(x.tx)
	}
	if err != nil {
		t.Errorf("decide tx %d: %v", x.tx, err)
	}
	x.won = d == engine.Commit && !x.voteNo
	for range rng.IntN(3) {
		runtime.Gosched() // PRE-COMMIT and COMMIT
	}
	if x.begun != 0 {
		x.release = now()
	}
	if err := table.Release(x.tx); err != nil {
		t.Errorf("release tx %d: %v", x.tx, err)
	}
	if x.won {
		br.Committed(x.tx, out, now())
	} else {
		br.Aborted(x.tx)
	}
	x.done = now()
}
