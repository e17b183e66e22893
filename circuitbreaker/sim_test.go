package circuitbreaker

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/commitcore/commitcore/engine"
)

// The deterministic simulation: the engine's real Coordinator and Node state
// machines over a real decision table (heap memory), three test
// participants, and a Breaker wired in as a Core wires it: NewGate's
// engine.Gate in the coordinator's config, so that the coordinator itself
// calls Admit and Begin in Propose, CheckFills when matching's YES vote
// arrives, and Committed or Aborted for each Result. A seeded scheduler
// picks every next action: propose, deliver one pending message (any one:
// messages are reordered, and now and then duplicated), let time pass, or
// have an operator halt a scope. Every fourth seed runs the engine's 2PC
// mode instead of 3PC. Prices now and then leave the band, and
// the market index reaches a level, so the breaker also trips on its own.
//
// At every trip the test snapshots, from the table, what each in-flight
// transaction of the scope was deciding, and requires the report to match
// it exactly; at the end it checks agreement across participants and that
// nothing the report called aborted ever committed, nor the reverse.
var (
	simSeeds = flag.Int("cb.seeds", 10_000, "number of seeds TestSimTrips runs")
	simSeed  = flag.Int64("cb.seed", -1, "run only this seed of TestSimTrips")
)

const (
	simParts   = 3
	simSlots   = 64 // the smallest table: slots are reused often
	simSymbols = 2
	simRef     = 1000
	simTracked = 8 // the breaker's MaxInFlight on odd seeds
	us         = int64(time.Microsecond)
)

// simPart is a participant that records what happened to every
// transaction. Participant 0 is matching: its YES carries one fill at the
// order's price.
type simPart struct {
	id    int
	seed  uint64
	state map[engine.TxID]string
	err   error
}

func (p *simPart) fail(format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("participant %d: "+format, append([]any{p.id}, args...)...)
	}
}

func (p *simPart) Prepare(tx engine.TxID, cmd *engine.Command, out *engine.Outcome) engine.Reason {
	if s, ok := p.state[tx]; ok {
		p.fail("prepare of tx %d in state %s", tx, s)
	}
	// One vote in twelve is NO, from a hash of the seed, tx and participant.
	if h := (uint64(tx)*0x9E3779B97F4A7C15 ^ p.seed ^ uint64(p.id)*0xBF58476D1CE4E5B9) * 0x94D049BB133111EB; h>>60 < 1 && h>>56&3 == 0 {
		return engine.ReasonInsufficientCash
	}
	p.state[tx] = "prepared"
	if p.id == 0 && cmd.Kind == engine.NewOrder {
		out.Reset()
		out.NFills = 1
		out.Fills[0] = engine.Fill{TradeID: engine.TradeIDOf(tx, 0), Symbol: cmd.Symbol, TakerSide: cmd.Side,
			TakerOrder: cmd.OrderID, Price: cmd.Price, Qty: cmd.Qty}
	}
	return engine.ReasonNone
}

func (p *simPart) PreCommit(tx engine.TxID, _ *engine.Outcome) {
	if p.state[tx] != "prepared" {
		p.fail("precommit of tx %d in state %q", tx, p.state[tx])
	}
	p.state[tx] = "precommitted"
}

func (p *simPart) Commit(tx engine.TxID, _ *engine.Outcome) {
	if s := p.state[tx]; s != "prepared" && s != "precommitted" {
		p.fail("commit of tx %d in state %q", tx, s)
	}
	p.state[tx] = "committed"
}

func (p *simPart) Abort(tx engine.TxID) {
	switch p.state[tx] {
	case "committed", "precommitted":
		p.fail("abort of tx %d after %s", tx, p.state[tx])
	case "prepared":
		p.state[tx] = "aborted"
	}
}

func (p *simPart) Apply(engine.TxID, *engine.Command, *engine.Outcome) error {
	return errors.New("no recovery in this simulation")
}
func (p *simPart) Snapshot(io.Writer) error { return errors.New("no snapshots in this simulation") }
func (p *simPart) Restore(io.Reader) error  { return errors.New("no snapshots in this simulation") }

// memLog is the coordinator's write-ahead log, in memory.
type memLog struct{ n int }

func (l *memLog) Append(*engine.Record) error { l.n++; return nil }

// envelope is a message on its way to a participant (to >= 0) or to the
// coordinator (to < 0).
type envelope struct {
	to int
	m  engine.Msg
}

// simStats counts what the runs exercised.
type simStats struct {
	seeds, txs, commits, trips, bandTrips, levelTrips int
	aborted, completed                                int
	// lastYes counts transactions caught by a trip after every participant
	// had voted YES (all PREPARED) and before the coordinator's commit CAS.
	lastYes int
	// precommit counts transactions caught by a trip between the commit CAS
	// and COMMIT's arrival at matching.
	precommit int
	// turnedAway counts transactions Begin rejected for a full tracker:
	// their slots were opened, aborted and released before any PREPARE.
	turnedAway int
}

func (s *simStats) add(o simStats) {
	s.seeds += o.seeds
	s.txs += o.txs
	s.commits += o.commits
	s.trips += o.trips
	s.bandTrips += o.bandTrips
	s.levelTrips += o.levelTrips
	s.aborted += o.aborted
	s.completed += o.completed
	s.lastYes += o.lastYes
	s.precommit += o.precommit
	s.turnedAway += o.turnedAway
}

type simRun struct {
	seed     uint64
	rng      *rand.Rand
	now      int64
	table    *engine.DecisionTable
	coord    *engine.Coordinator
	nodes    [simParts]*engine.Node
	parts    [simParts]*simPart
	br       *Breaker
	pending  []*envelope
	inflight map[engine.TxID]uint32          // Begin'd, no Result yet: the model
	results  map[engine.TxID]engine.Reason   // every Result
	reported map[engine.TxID]engine.Decision // what some report said
	proposed map[engine.TxID]engine.Command  // every proposed command
	began    map[engine.TxID]int64           // when each was proposed
	stats    simStats
}

// newSimRun builds the world of one seed; dec wraps the table (nil: the
// table itself).
func newSimRun(seed uint64, dec func(*simRun) Decider) (*simRun, error) {
	s := &simRun{
		seed:     seed,
		rng:      rand.New(rand.NewPCG(seed, 0xC1C0)),
		now:      1_000_000,
		inflight: map[engine.TxID]uint32{},
		results:  map[engine.TxID]engine.Reason{},
		reported: map[engine.TxID]engine.Decision{},
		proposed: map[engine.TxID]engine.Command{},
		began:    map[engine.TxID]int64{},
	}
	var err error
	if s.table, err = engine.InitDecisionTable(make([]byte, engine.DecisionTableSize(simSlots)), simSlots); err != nil {
		return nil, err
	}
	for i := range s.nodes {
		s.parts[i] = &simPart{id: i, seed: seed, state: map[engine.TxID]string{}}
		if s.nodes[i], err = engine.NewNode(engine.NodeConfig{ID: engine.NodeID(i), Matching: i == 0,
			Participant: s.parts[i], Table: s.table}); err != nil {
			return nil, err
		}
		s.nodes[i].SetCoordinatorAlive(true)
	}
	var d Decider = s.table
	if dec != nil {
		d = dec(s)
	}
	cfg := Config{
		Symbols:     simSymbols,
		Band:        Band{WidthBps: 500, Halt: 30 * time.Microsecond, Reference: ReferenceFixed},
		Levels:      []Level{{MoveBps: 300, Halt: 40 * time.Microsecond}},
		MaxInFlight: simSlots,
	}
	if seed%2 == 1 {
		// Odd seeds track fewer transactions than the coordinator's
		// window: Begin turns the rest away, and the coordinator releases
		// their slots before any PREPARE, for later ids to reuse.
		cfg.MaxInFlight = simTracked
	}
	if s.br, err = New(cfg, d); err != nil {
		return nil, err
	}
	for sym := range uint32(simSymbols) {
		if err := s.br.SetReference(sym, simRef); err != nil {
			return nil, err
		}
	}
	s.br.StartDay()
	if s.coord, err = engine.NewCoordinator(engine.CoordinatorConfig{
		Epoch: 1, Participants: simParts, Matching: 0, Table: s.table, Log: &memLog{},
		Mode:     engine.Mode(seed % 4 / 3),                  // every fourth seed runs the 2PC baseline
		Timeouts: engine.Timeouts{Prepare: time.Millisecond}, // a few timeouts, not mostly timeouts
		Gate:     NewGate(s.br, nil),
	}); err != nil {
		return nil, err
	}
	if err := s.coord.Start(s.now, func(func(*engine.Record) bool) {}); err != nil {
		return nil, err
	}
	return s, nil
}

// collect queues what a state machine asked for and files the Results (the
// coordinator has shown them to the breaker already, through the Gate).
func (s *simRun) collect(rd *engine.Ready) {
	for _, m := range rd.Msgs {
		switch {
		case m.To == engine.Broadcast:
			for i := range simParts {
				s.pending = append(s.pending, &envelope{to: i, m: m})
			}
		case m.To == engine.CoordinatorID:
			s.pending = append(s.pending, &envelope{to: -1, m: m})
		default:
			s.pending = append(s.pending, &envelope{to: int(m.To), m: m})
		}
	}
	for i := range rd.Results {
		r := &rd.Results[i]
		s.results[r.Tx] = r.Reason
		delete(s.inflight, r.Tx)
		if r.Reason == engine.ReasonNone {
			s.stats.commits++
		}
	}
}

func (s *simRun) coordReady() {
	s.collect(s.coord.Ready())
	s.coord.Advance()
}

func (s *simRun) propose() error {
	cmd := engine.Command{Kind: engine.NewOrder, Side: engine.Buy, Type: engine.Limit,
		Symbol: uint32(s.rng.IntN(simSymbols)), Qty: 1, Price: simRef - 40 + s.rng.Int64N(81)}
	switch k := s.rng.IntN(40); {
	case k == 0:
		cmd.Price = simRef + 100 // outside the 5 % band
	case k < 4:
		cmd.Kind, cmd.OrderID = engine.Cancel, uint64(s.rng.IntN(100)+1)
	}
	full := s.seed%2 == 1 && s.br.InFlight() == simTracked
	tx, err := s.coord.Propose(s.now, &cmd)
	if errors.Is(err, engine.ErrBusy) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("propose: %w", err)
	}
	s.stats.txs++
	s.proposed[tx], s.began[tx] = cmd, s.now
	s.coordReady()
	r, rejected := s.results[tx]
	if !rejected {
		if cmd.Kind != engine.Cancel {
			s.inflight[tx] = cmd.Symbol // tracked by the breaker until its Result
		}
		return nil
	}
	// Rejected at once: only a halt of the order's scope, or a full
	// tracker, may do that, and never to a cancel.
	sym, _ := s.br.Halted(SymbolScope(cmd.Symbol), s.now)
	market, _ := s.br.Halted(MarketScope(), s.now)
	halted := r == engine.ReasonHalted && (sym || market)
	if cmd.Kind == engine.Cancel || !halted && (r != engine.ReasonBackpressure || !full) {
		return fmt.Errorf("tx %d (%v on symbol %d) finished in its Propose with %v; halted: symbol %v, market %v; tracker full %v",
			tx, cmd.Kind, cmd.Symbol, r, sym, market, full)
	}
	if r == engine.ReasonBackpressure {
		s.stats.turnedAway++
	}
	return nil
}

// expect snapshots, from the table, how a trip of scope at this instant must
// sort the in-flight transactions, plus tx (the tripping one) when withTx.
func (s *simRun) expect(scope Scope, tx engine.TxID, withTx bool) (aborted, completed []engine.TxID, lastYes, precommit int) {
	consider := func(t engine.TxID) {
		d, _, err := s.table.Lookup(t)
		if err == nil && d == engine.Commit {
			completed = append(completed, t)
			if s.nodes[0].State(t) != "COMMITTED" {
				precommit++
			}
			return
		}
		aborted = append(aborted, t)
		if err != nil || d != engine.Undecided {
			return
		}
		for _, n := range s.nodes {
			if n.State(t) != "PREPARED" {
				return
			}
		}
		lastYes++
	}
	for t, sym := range s.inflight {
		if scope.covers(sym) || (withTx && t == tx) {
			consider(t)
		}
	}
	if _, in := s.inflight[tx]; withTx && !in {
		consider(tx)
	}
	slices.Sort(aborted)
	slices.Sort(completed)
	return aborted, completed, lastYes, precommit
}

// checkReport compares a trip's report with the snapshot taken just before.
func (s *simRun) checkReport(r *Report, aborted, completed []engine.TxID, lastYes, precommit int) error {
	if len(r.Unresolved) > 0 || r.Err != nil {
		return fmt.Errorf("trip left %v unresolved: %v", r.Unresolved, r.Err)
	}
	if !slices.Equal(r.Aborted, aborted) || !slices.Equal(r.Completed, completed) {
		return fmt.Errorf("report %v\nwant aborted %v completed %v (the table before the trip)", r, aborted, completed)
	}
	for _, t := range r.Aborted {
		if d, _, err := s.table.Lookup(t); err != nil || d != engine.Abort {
			return fmt.Errorf("tx %d reported aborted, table says %v %v", t, d, err)
		}
		if _, dup := s.reported[t]; !dup {
			s.reported[t] = engine.Abort
		} else if s.reported[t] != engine.Abort {
			return fmt.Errorf("tx %d reported completed, then aborted", t)
		}
	}
	for _, t := range r.Completed {
		if prev, dup := s.reported[t]; dup && prev != engine.Commit {
			return fmt.Errorf("tx %d reported aborted, then completed", t)
		}
		s.reported[t] = engine.Commit
	}
	s.stats.trips++
	s.stats.aborted += len(r.Aborted)
	s.stats.completed += len(r.Completed)
	s.stats.lastYes += lastYes
	s.stats.precommit += precommit
	switch r.Cause {
	case CauseBand:
		s.stats.bandTrips++
	case CauseLevel:
		s.stats.levelTrips++
	}
	return nil
}

func (s *simRun) operatorHalt() error {
	scope := MarketScope()
	if k := s.rng.IntN(3); k < simSymbols {
		scope = SymbolScope(uint32(k))
	}
	if halted, _ := s.br.Halted(scope, s.now); halted {
		return nil
	}
	a, c, ly, pc := s.expect(scope, 0, false)
	r, err := s.br.Halt(scope, s.now, time.Duration(20+s.rng.IntN(60))*time.Microsecond)
	if err != nil {
		return fmt.Errorf("operator halt: %w", err)
	}
	return s.checkReport(r, a, c, ly, pc)
}

// deliver hands pending message i to its state machine.
func (s *simRun) deliver(i int) error {
	e := s.pending[i]
	if s.rng.IntN(50) != 0 { // now and then deliver it twice
		s.pending = slices.Delete(s.pending, i, i+1)
	}
	if e.to >= 0 {
		n := s.nodes[e.to]
		if err := n.Step(s.now, &e.m); err != nil {
			return fmt.Errorf("node %d: %w", e.to, err)
		}
		s.collect(n.Ready())
		n.Advance()
		return nil
	}
	trips := len(s.br.reports)
	var a, c, am, cm []engine.TxID
	var ly, pc, lym, pcm int
	if e.m.Type == engine.MsgVote && e.m.From == 0 && e.m.Reason == engine.ReasonNone && e.m.HasOutcome {
		// Matching's YES: the coordinator's Gate checks its prices before
		// the commit point. What a trip must find is the table now.
		var scope Scope
		if e.m.Out.NFills > 0 {
			scope = SymbolScope(e.m.Out.Fills[0].Symbol)
		}
		a, c, ly, pc = s.expect(scope, e.m.Tx, true)
		am, cm, lym, pcm = s.expect(MarketScope(), e.m.Tx, true)
	}
	if err := s.coord.Step(s.now, &e.m); err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	switch n := len(s.br.reports); {
	case n == trips+1:
		r := &s.br.reports[trips]
		if r.Scope.Market {
			a, c, ly, pc = am, cm, lym, pcm
		}
		if err := s.checkReport(r, a, c, ly, pc); err != nil {
			return err
		}
	case n != trips:
		return fmt.Errorf("one %v made %d trips", e.m.Type, n-trips)
	}
	s.coordReady()
	return nil
}

func (s *simRun) tick(d int64) error {
	s.now += d
	if err := s.coord.Tick(s.now); err != nil {
		return fmt.Errorf("coordinator tick: %w", err)
	}
	s.coordReady()
	for i, n := range s.nodes {
		n.Tick(s.now)
		s.collect(n.Ready())
		n.Advance()
		if s.parts[i].err != nil {
			return s.parts[i].err
		}
	}
	return nil
}

// run plays one seed and checks the oracles.
func (s *simRun) run() error {
	proposals := 10 + s.rng.IntN(15)
	for steps := 0; ; steps++ {
		if steps > 10_000 {
			return fmt.Errorf("no termination: %d in flight, %d messages pending", s.coord.InFlight(), len(s.pending))
		}
		done := proposals == 0
		if done && len(s.pending) == 0 && s.coord.InFlight() == 0 {
			break
		}
		s.now += 200
		var err error
		switch k := s.rng.IntN(100); {
		case k < 25 && !done:
			proposals--
			err = s.propose()
		case k < 27 && !done:
			err = s.operatorHalt()
		case (k >= 27 && k < 33) || len(s.pending) == 0:
			err = s.tick(s.rng.Int64N(20 * us))
		default:
			// One of the oldest few: reordered, but never starved (an
			// unbounded delay would only feed retransmits).
			err = s.deliver(s.rng.IntN(min(len(s.pending), 6)))
		}
		if err != nil {
			return err
		}
		for _, p := range s.parts {
			if p.err != nil {
				return p.err
			}
		}
	}
	return s.audit()
}

// audit checks agreement, the reports against the outcomes, and that the
// breaker tracked nothing in the end.
func (s *simRun) audit() error {
	for tx, r := range s.results {
		for _, p := range s.parts {
			st, ok := p.state[tx]
			if r == engine.ReasonNone && st != "committed" {
				return fmt.Errorf("agreement: tx %d committed, participant %d is %q", tx, p.id, st)
			}
			if r != engine.ReasonNone && ok && st != "aborted" {
				return fmt.Errorf("agreement: tx %d aborted (%v), participant %d is %q", tx, r, p.id, st)
			}
		}
		if d, in := s.reported[tx]; in && (d == engine.Commit) != (r == engine.ReasonNone) {
			return fmt.Errorf("tx %d reported %v by a trip, finished with reason %v", tx, d, r)
		}
		if r == engine.ReasonCircuitBreaker && s.reported[tx] != engine.Abort {
			return fmt.Errorf("tx %d aborted by the breaker but in no report", tx)
		}
	}
	// Nothing proposed during a halt of its scope trades.
	for _, r := range s.br.Reports() {
		for tx, res := range s.results {
			cmd := s.proposed[tx]
			if res == engine.ReasonNone && cmd.Kind != engine.Cancel && r.Scope.covers(cmd.Symbol) &&
				s.began[tx] >= r.TriggeredAt && s.began[tx] < r.ResumesAt {
				return fmt.Errorf("tx %d proposed at %d during the halt %v, committed", tx, s.began[tx], &r)
			}
		}
	}
	if n := s.br.InFlight(); n != 0 {
		return fmt.Errorf("breaker still tracks %d transactions", n)
	}
	if len(s.results) != s.stats.txs {
		return fmt.Errorf("%d transactions, %d results", s.stats.txs, len(s.results))
	}
	return nil
}

func runSeed(seed uint64, dec func(*simRun) Decider) (simStats, error) {
	s, err := newSimRun(seed, dec)
	if err != nil {
		return simStats{}, err
	}
	err = s.run()
	s.stats.seeds = 1
	return s.stats, err
}

func TestSimTrips(t *testing.T) {
	first, n := uint64(1), *simSeeds
	if *simSeed >= 0 {
		first, n = uint64(*simSeed), 1
	}
	var total simStats
	for seed := first; seed < first+uint64(n); seed++ {
		st, err := runSeed(seed, nil)
		if err != nil {
			t.Fatalf("seed %d (replay: -cb.seed=%d): %v", seed, seed, err)
		}
		total.add(st)
	}
	t.Logf("%+v", total)
	if n >= 1000 {
		// The runs must reach the instants that matter, or they prove little.
		check.True(t, total.lastYes > 0, "no trip landed between the last YES and the commit CAS")
		check.True(t, total.precommit > 0, "no trip landed between the commit CAS and COMMIT")
		check.True(t, total.bandTrips > 0 && total.levelTrips > 0, "the breaker never tripped on prices")
		check.True(t, total.completed > 0 && total.aborted > 0, "trips settled nothing")
		check.True(t, total.turnedAway > 0, "Begin never turned a transaction away")
	}
}

// phaseFlagDecider is the deliberate bug: it sorts a transaction by a phase
// snapshot (has any participant reached PRE-COMMIT?) instead of by the CAS
// result. A trip between the coordinator's commit CAS and the first
// PRE-COMMIT's arrival then reports aborted a transaction that commits.
type phaseFlagDecider struct{ s *simRun }

func (d phaseFlagDecider) Abort(tx engine.TxID, r engine.Reason) (engine.Decision, engine.Reason, error) {
	for _, n := range d.s.nodes {
		if st := n.State(tx); st == "PRECOMMITTED" || st == "COMMITTED" {
			return engine.Commit, engine.ReasonNone, nil
		}
	}
	_, _, err := d.s.table.Abort(tx, r) // the CAS's answer is ignored: the bug
	return engine.Abort, r, err
}

func TestSimCatchesPhaseFlagBug(t *testing.T) {
	for seed := uint64(1); seed <= 10_000; seed++ {
		_, err := runSeed(seed, func(s *simRun) Decider { return phaseFlagDecider{s} })
		if err != nil {
			t.Logf("the phase-flag bug is caught by seed %d: %v", seed, err)
			return
		}
	}
	t.Fatal("no seed caught the phase-flag bug")
}
