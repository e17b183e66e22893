package engine

import (
	"container/heap"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The deterministic simulation. One seed fixes everything: the workload,
// the network's delays, reordering, duplicates and losses, and the faults.
// The real Coordinator and Node state machines run inside it, their
// messages pass through the real codec, and a test participant checks the
// Participant contract on every call. At the end of each run the oracles of
// DESIGN.md are checked: agreement, validity, non-triviality (on the clean
// runs), termination, idempotence, and a conservation check over the test
// participants' balances and reservations.
var (
	simSeeds = flag.Int("sim.seeds", 10000, "number of simulation seeds TestSim runs (long mode: 1000000)")
	simFirst = flag.Uint64("sim.first", 1, "first seed TestSim runs")
	simSeed  = flag.Int64("sim.seed", -1, "run only this seed (replays a failure)")
	simTrace = flag.Bool("sim.trace", false, "print the trace of every seed run (use with -sim.seed)")
)

const (
	// simHorizon is when every run must be over: faults stop within a few
	// milliseconds and every stall and restart ends within 3 ms of them.
	simHorizon = 100_000_000
	simParts   = 3
	simSlots   = 64 // decision-table slots: the smallest table, so slots are reused often
)

// Simulated processes: participants 0 … simParts-1 and coordinator
// incarnations, which are addressed by their index in sim.coords.
type evKind uint8

const (
	evDeliverNode  evKind = iota // bytes to participant proc
	evDeliverCoord               // bytes to coordinator incarnation proc
	evTimerNode
	evTimerCoord
	evPropose
	evCrashNode
	evRestartNode
	evStallNode
	evStallCoord
	evKillCoord
	evTakeover
	evBreaker
	evSetAlive
	evFlushMerge // a merged reply to coordinator incarnation proc leaves
	evFlushNode  // participant proc, incarnation arg, sends what it held
	evFlushCoord // coordinator incarnation proc sends what it held
)

type event struct {
	at   int64
	seq  uint64
	kind evKind
	proc int
	arg  int64
	data []byte
}

type eventQueue []event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	return q[i].at < q[j].at || q[i].at == q[j].at && q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// profile is a seed's fault mix.
type profile struct {
	name      string
	clean     bool    // no faults, FIFO links, all YES: every tx must commit
	mode      Mode    // 3PC or 2PC
	pNo       float64 // per participant and tx: vote NO
	pDup      float64 // per message: deliver twice
	pDrop     float64 // per message: lose it
	pSlow     float64 // per message: a delay past the timeouts
	pMerge    float64 // per outcome-less reply: wait to be merged with other nodes' (Msg.Senders)
	pHold     float64 // per step: hold the Ready for later steps to add to, so runs form (Msg.Run)
	maxHold   int64   // ns a held reply or Ready waits at most
	pFault    float64 // per event: inject a fault
	maxFaults int
}

type simCoord struct {
	c          *Coordinator
	dead       bool
	held       bool // a flush is due: steps add to the Ready meanwhile
	stallUntil int64
	timerAt    int64 // the pending timer event, 0 if none
	killed     bool  // proposed transactions may lack a result
}

type simNode struct {
	n          *Node
	p          *testParticipant
	inc        int
	dead       bool
	held       bool // a flush is due: steps add to the Ready meanwhile
	stallUntil int64
	timerAt    int64 // the pending timer event, 0 if none
}

type sim struct {
	seed     uint64
	prof     profile
	rng      *rand.Rand
	now      int64
	seq      uint64
	q        eventQueue
	tab      *DecisionTable
	log      *simLog
	coords   []*simCoord
	nodes    [simParts]*simNode
	lastSend [simParts + 1][simParts + 1]int64 // FIFO links in the clean profile
	faults   int
	events   int
	trace    *strings.Builder
	err      error
	buf      []byte
	m        Msg
	// merging holds the senders of replies waiting to leave as one merged
	// message, as a Host sends them.
	merging map[mergeKey]uint16
	// runs and merged count delivered messages with a Run and with
	// Senders.
	runs, merged uint64

	// Oracle state, across incarnations.
	votedYes  [simParts]map[TxID]bool
	committed [simParts]map[TxID]bool // Commit or Apply, any incarnation
	aborted   [simParts]map[TxID]bool // Abort of a YES vote, any incarnation
	proposed  map[TxID]*Command
	proposer  map[TxID]int
	results   map[TxID][]Result
	toPropose int
}

func (s *sim) tracef(format string, args ...any) {
	if s.trace != nil {
		fmt.Fprintf(s.trace, "%9d ", s.now)
		fmt.Fprintf(s.trace, format, args...)
		s.trace.WriteByte('\n')
	}
}

func (s *sim) failf(format string, args ...any) {
	if s.err == nil {
		s.err = fmt.Errorf("t=%d: %s", s.now, fmt.Sprintf(format, args...))
		s.tracef("FAIL: %v", s.err)
	}
}

func (s *sim) push(at int64, k evKind, proc int, arg int64, data []byte) {
	s.seq++
	heap.Push(&s.q, event{at: at, seq: s.seq, kind: k, proc: proc, arg: arg, data: data})
}

func (s *sim) chance(p float64) bool { return p > 0 && s.rng.Float64() < p }

func (s *sim) between(lo, hi int64) int64 { return lo + s.rng.Int64N(hi-lo+1) }

func pickProfile(rng *rand.Rand) profile {
	mode := ThreePhase
	if rng.IntN(4) == 0 {
		mode = TwoPhase
	}
	switch rng.IntN(8) {
	case 0:
		// Replies are merged and held too, briefly enough that no timer
		// fires: a run or a merged message that lost a transaction's
		// reply would then show as a retransmission.
		return profile{name: "clean", clean: true, mode: mode, pMerge: 0.5, pHold: 0.5, maxHold: 2_000}
	case 1:
		return profile{name: "lossy", mode: mode, pNo: 0.05, pDup: 0.1, pDrop: 0.05, pSlow: 0.02, pMerge: 0.5, pHold: 0.5, maxHold: 5_000}
	case 2, 3:
		return profile{name: "crashy", mode: mode, pNo: 0.05, pDup: 0.05, pDrop: 0.01, pSlow: 0.01, pMerge: 0.5, pHold: 0.5, maxHold: 5_000, pFault: 0.02, maxFaults: 3}
	default:
		return profile{name: "chaos", mode: mode, pNo: 0.1, pDup: 0.1, pDrop: 0.03, pSlow: 0.03, pMerge: 0.5, pHold: 0.5, maxHold: 5_000, pFault: 0.04, maxFaults: 6}
	}
}

func newSim(seed uint64, trace bool) *sim {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	s := &sim{
		seed:     seed,
		rng:      rng,
		prof:     pickProfile(rng),
		buf:      make([]byte, MaxMsgSize),
		proposed: map[TxID]*Command{},
		proposer: map[TxID]int{},
		results:  map[TxID][]Result{},
		merging:  map[mergeKey]uint16{},
	}
	s.log = &simLog{s: s}
	if trace {
		s.trace = &strings.Builder{}
	}
	var err error
	s.tab, err = InitDecisionTable(make([]byte, DecisionTableSize(simSlots)), simSlots)
	if err != nil {
		panic(err)
	}
	for i := range s.votedYes {
		s.votedYes[i], s.committed[i], s.aborted[i] = map[TxID]bool{}, map[TxID]bool{}, map[TxID]bool{}
	}
	return s
}

// run plays one seed and returns the first violation.
func (s *sim) run() error {
	s.tracef("seed %d profile %s mode %v", s.seed, s.prof.name, s.prof.mode)
	s.takeover()
	for i := range s.nodes {
		s.startNode(i, false)
	}
	// Workload: bursts of proposals (a burst shares one Ready: a batch).
	s.toPropose = 4 + s.rng.IntN(20)
	for i, t := 0, int64(0); i < s.toPropose; {
		burst := 1 + s.rng.IntN(4)
		for j := 0; j < burst && i < s.toPropose; j++ {
			s.push(t, evPropose, 0, 0, nil)
			i++
		}
		t += s.between(0, 150_000)
	}
	const limit = 200_000
	for s.q.Len() > 0 && s.err == nil {
		if s.events++; s.events > limit {
			s.failf("no termination: %d events and still busy", limit)
			break
		}
		ev := heap.Pop(&s.q).(event)
		if ev.at > simHorizon {
			s.failf("no termination: still busy at the horizon, t=%d", simHorizon)
			break
		}
		s.now = ev.at
		s.handle(&ev)
		if s.err == nil && s.faults < s.prof.maxFaults && s.chance(s.prof.pFault) {
			s.injectFault()
		}
	}
	if s.err == nil {
		s.check()
	}
	return s.err
}

func (s *sim) active() *simCoord { return s.coords[len(s.coords)-1] }

// takeover starts a coordinator incarnation with the next epoch: the first
// start, a backup after a kill, or a false suspicion of a stalled one.
func (s *sim) takeover() {
	cfg := CoordinatorConfig{
		Epoch: s.tab.Epoch() + 1, Participants: simParts, Matching: 0, Mode: s.prof.mode,
		Table: s.tab, Log: s.log, ReplyOnCommitSent: s.seed%3 == 0,
	}
	if s.seed%5 == 0 && !s.prof.clean {
		// Adaptive timeouts may legitimately fire on the network's
		// jitter, so clean runs, which assert that nothing aborts, use
		// the fixed ones.
		cfg.Timeouts = Timeouts{Adaptive: true}
	}
	c, err := NewCoordinator(cfg)
	if err != nil {
		s.failf("new coordinator: %v", err)
		return
	}
	s.coords = append(s.coords, &simCoord{c: c})
	s.tracef("coordinator %d starts with epoch %d", len(s.coords)-1, cfg.Epoch)
	if s.guard(func() error { return c.Start(s.now, s.log.all()) }) {
		s.tracef("coordinator %d crashes during its start", len(s.coords)-1)
		s.killCoord(len(s.coords) - 1)
		return
	}
	s.flushCoord(len(s.coords) - 1)
	for i := range s.nodes {
		if s.nodes[i] != nil {
			s.nodes[i].n.SetCoordinatorAlive(true)
		}
	}
}

func (s *sim) startNode(i int, restart bool) {
	inc := 0
	if s.nodes[i] != nil {
		inc = s.nodes[i].inc + 1
	}
	p := &testParticipant{s: s, id: i, inc: inc, state: map[TxID]uint8{}, qty: map[TxID]int64{}}
	n, err := NewNode(NodeConfig{ID: NodeID(i), Matching: i == 0, Participant: p, Table: s.tab})
	if err != nil {
		s.failf("new node: %v", err)
		return
	}
	s.nodes[i] = &simNode{n: n, p: p, inc: inc}
	if restart {
		s.tracef("node %d restarts (incarnation %d)", i, inc)
		if err := n.Recover(s.now, s.log.all()); err != nil {
			s.failf("node %d recover: %v", i, err)
		}
		a := s.active()
		n.SetCoordinatorAlive(!a.dead && a.stallUntil <= s.now)
	}
}

func (s *sim) handle(ev *event) {
	switch ev.kind {
	case evDeliverNode, evTimerNode:
		nd := s.nodes[ev.proc]
		if nd.dead {
			return
		}
		if ev.kind == evTimerNode {
			if ev.at != nd.timerAt {
				return // superseded
			}
			nd.timerAt = 0
		}
		if nd.stallUntil > s.now {
			s.push(nd.stallUntil, ev.kind, ev.proc, ev.arg, ev.data)
			if ev.kind == evTimerNode {
				nd.timerAt = nd.stallUntil
			}
			return
		}
		if ev.kind == evTimerNode {
			nd.n.Tick(s.now)
		} else {
			if _, err := s.m.Decode(ev.data); err != nil {
				s.failf("node %d decode: %v", ev.proc, err)
				return
			}
			s.tracef("node %d <- %v tx %d+%d e%d r=%v", ev.proc, s.m.Type, s.m.Tx, s.m.Run, s.m.Epoch, s.m.Reason)
			s.count(&s.m)
			if err := nd.n.Step(s.now, &s.m); err != nil {
				s.failf("node %d step: %v", ev.proc, err)
			}
		}
		if s.midCrash() { // after the Participant call, before any reply leaves
			s.tracef("node %d crashes mid-step", ev.proc)
			s.crashNode(ev.proc)
			return
		}
		if !nd.held && s.chance(s.prof.pHold) {
			nd.held = true
			s.push(s.now+s.between(200, s.prof.maxHold), evFlushNode, ev.proc, int64(nd.inc), nil)
		}
		if !nd.held {
			s.flushNode(ev.proc)
		}
	case evFlushNode:
		nd := s.nodes[ev.proc]
		if nd.dead || int64(nd.inc) != ev.arg {
			return // crashed: what it held is lost
		}
		if nd.stallUntil > s.now {
			s.push(nd.stallUntil, ev.kind, ev.proc, ev.arg, nil)
			return
		}
		nd.held = false
		s.flushNode(ev.proc)
	case evFlushCoord:
		sc := s.coords[ev.proc]
		if sc.dead {
			return
		}
		if sc.stallUntil > s.now {
			s.push(sc.stallUntil, ev.kind, ev.proc, 0, nil)
			return
		}
		sc.held = false
		s.flushCoord(ev.proc)
	case evDeliverCoord, evTimerCoord:
		sc := s.coords[ev.proc]
		if sc.dead {
			return
		}
		if ev.kind == evTimerCoord {
			if ev.at != sc.timerAt {
				return // superseded
			}
			sc.timerAt = 0
		}
		if sc.stallUntil > s.now {
			s.push(sc.stallUntil, ev.kind, ev.proc, ev.arg, ev.data)
			if ev.kind == evTimerCoord {
				sc.timerAt = sc.stallUntil
			}
			return
		}
		var crashed bool
		if ev.kind == evTimerCoord {
			crashed = s.guard(func() error { return sc.c.Tick(s.now) })
		} else {
			if _, err := s.m.Decode(ev.data); err != nil {
				s.failf("coordinator decode: %v", err)
				return
			}
			s.tracef("coord %d <- %v tx %d+%d from %d senders %#x e%d r=%v", ev.proc, s.m.Type, s.m.Tx, s.m.Run, s.m.From, s.m.Senders, s.m.Epoch, s.m.Reason)
			s.count(&s.m)
			crashed = s.guard(func() error { return sc.c.Step(s.now, &s.m) })
		}
		if crashed || s.midCrash() { // in the log, or after the CAS before anything is sent
			s.tracef("coordinator %d crashes mid-step", ev.proc)
			s.killCoord(ev.proc)
			return
		}
		if !sc.held && s.chance(s.prof.pHold) {
			sc.held = true
			s.push(s.now+s.between(200, s.prof.maxHold), evFlushCoord, ev.proc, 0, nil)
		}
		if !sc.held {
			s.flushCoord(ev.proc)
		}
	case evPropose:
		s.propose()
	case evCrashNode:
		s.tracef("node %d crashes", ev.proc)
		s.crashNode(ev.proc)
	case evRestartNode:
		s.startNode(ev.proc, true)
	case evStallNode:
		s.tracef("node %d stalls until %d", ev.proc, ev.arg)
		s.nodes[ev.proc].stallUntil = ev.arg
	case evStallCoord:
		a := s.active()
		a.stallUntil = ev.arg
		s.tracef("coordinator %d stalls until %d", len(s.coords)-1, ev.arg)
		s.push(s.now+s.between(10_000, 100_000), evSetAlive, 0, 0, nil)
		s.push(ev.arg, evSetAlive, 1, 0, nil)
		if s.chance(0.5) { // false suspicion: a backup takes over
			s.push(s.now+s.between(20_000, 300_000), evTakeover, 0, 0, nil)
		}
	case evKillCoord:
		s.tracef("coordinator %d killed", len(s.coords)-1)
		s.killCoord(len(s.coords) - 1)
	case evTakeover:
		s.takeover()
	case evSetAlive:
		a := s.active()
		alive := ev.proc == 1 && !a.dead && a.stallUntil <= s.now
		s.tracef("participants see the coordinator alive=%v", alive)
		for _, nd := range s.nodes {
			nd.n.SetCoordinatorAlive(alive)
		}
	case evBreaker:
		s.breaker()
	case evFlushMerge:
		if _, err := s.m.Decode(ev.data); err != nil {
			s.failf("merge decode: %v", err)
			return
		}
		k := mergeKeyOf(ev.proc, &s.m)
		senders := s.merging[k]
		delete(s.merging, k)
		if bits.OnesCount16(senders) > 1 {
			s.m.From, s.m.Senders = NodeID(bits.TrailingZeros16(senders)), senders
		}
		s.tracef("merged %v tx %d+%d senders %#x to coord %d", s.m.Type, s.m.Tx, s.m.Run, senders, ev.proc)
		s.transmit(int(s.m.From), &s.m, true, ev.proc)
	}
}

func (s *sim) count(m *Msg) {
	if m.Run != 0 {
		s.runs++
	}
	if m.Senders != 0 {
		s.merged++
	}
}

// mergeKey is what replies must share to be merged.
type mergeKey struct {
	to     int
	typ    MsgType
	epoch  Epoch
	tx     TxID
	run    uint16
	reason Reason
}

func mergeKeyOf(to int, m *Msg) mergeKey {
	return mergeKey{to: to, typ: m.Type, epoch: m.Epoch, tx: m.Tx, run: m.Run, reason: m.Reason}
}

func (s *sim) crashNode(i int) {
	s.nodes[i].dead = true
	s.push(s.now+s.between(1_000, 2_000_000), evRestartNode, i, 0, nil)
}

// killCoord kills coordinator incarnation i; if it is the active one, the
// participants notice and a backup takes over.
func (s *sim) killCoord(i int) {
	sc := s.coords[i]
	sc.dead, sc.killed = true, true
	if i == len(s.coords)-1 {
		s.push(s.now+s.between(10_000, 100_000), evSetAlive, 0, 0, nil)
		s.push(s.now+s.between(20_000, 300_000), evTakeover, 0, 0, nil)
	}
}

// midCrash decides whether the process that just stepped dies before its
// output leaves: a crash between any two steps of any phase.
func (s *sim) midCrash() bool {
	if s.faults >= s.prof.maxFaults || !s.chance(s.prof.pFault/2) {
		return false
	}
	s.faults++
	return true
}

// simCrash is the panic value of a process killed inside a call.
type simCrash struct{}

// guard runs a coordinator call, reports its error, and turns a simCrash
// panic (the log killed the process mid-call) into crashed.
func (s *sim) guard(f func() error) (crashed bool) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(simCrash); !ok {
				panic(r)
			}
			crashed = true
		}
	}()
	if err := f(); err != nil {
		s.failf("coordinator: %v", err)
	}
	return false
}

// simLog is the journal: shared by every coordinator incarnation, and able
// to kill the appending process just before or just after a record lands.
type simLog struct {
	memLog
	s *sim
}

func (l *simLog) Append(r *Record) error {
	s := l.s
	crash := s.midCrash()
	before := crash && s.chance(0.5)
	if !before {
		l.memLog.Append(r)
	}
	if crash {
		s.tracef("log append of %v tx %d: the coordinator dies %s it", r.Kind, r.Tx, map[bool]string{true: "before", false: "after"}[before])
		panic(simCrash{})
	}
	return nil
}

func (s *sim) propose() {
	a := s.active()
	if a.dead || a.stallUntil > s.now {
		s.push(s.now+50_000, evPropose, 0, 0, nil) // the client retries
		return
	}
	cmd := &Command{Kind: NewOrder, Side: Buy, Type: Limit, Symbol: 1, Account: 1, Price: 100, Qty: 1 + s.rng.Int64N(100), Time: s.now}
	tx, err := a.c.Propose(s.now, cmd)
	switch {
	case errors.Is(err, ErrBusy):
		s.push(s.now+20_000, evPropose, 0, 0, nil)
		return
	case err != nil:
		s.failf("propose: %v", err)
		return
	}
	c := *cmd
	c.OrderID = uint64(tx)
	s.proposed[tx] = &c
	s.proposer[tx] = len(s.coords) - 1
	s.tracef("propose tx %d qty %d", tx, cmd.Qty)
	s.flushCoord(len(s.coords) - 1)
}

func (s *sim) breaker() {
	var aborted, completed int
	for sl := range s.tab.InFlight() {
		if sl.Err != nil {
			s.failf("breaker: %v", sl.Err)
			return
		}
		if sl.Decision != Undecided {
			completed++
			continue
		}
		d, _, err := s.tab.Abort(sl.Tx, ReasonCircuitBreaker)
		if err != nil {
			s.failf("breaker abort: %v", err)
			return
		}
		if d == Abort {
			aborted++
		}
	}
	s.tracef("breaker trips: %d aborted, %d left to complete", aborted, completed)
}

func (s *sim) injectFault() {
	s.faults++
	at := s.now
	switch k := s.rng.IntN(10); k {
	case 0, 1:
		i := s.rng.IntN(simParts)
		if !s.nodes[i].dead {
			s.push(at, evCrashNode, i, 0, nil)
		}
	case 2, 3:
		s.push(at, evStallNode, s.rng.IntN(simParts), at+s.between(50_000, 3_000_000), nil)
	case 4, 5:
		if a := s.active(); !a.dead && a.stallUntil <= at {
			s.push(at, evStallCoord, 0, at+s.between(50_000, 3_000_000), nil)
		}
	case 6:
		if a := s.active(); !a.dead {
			s.push(at, evKillCoord, 0, 0, nil)
		}
	case 7:
		s.push(at, evBreaker, 0, 0, nil)
	case 8: // a takeover with the old coordinator still running
		s.push(at, evTakeover, 0, 0, nil)
	case 9: // the liveness check wrongly reports a running coordinator dead
		s.push(at, evSetAlive, 0, 0, nil)
		s.push(at+s.between(50_000, 1_000_000), evSetAlive, 1, 0, nil)
	}
}

// send puts one encoded message on the simulated network, or holds an
// outcome-less reply to be merged with other nodes' identical ones.
func (s *sim) send(from int, m *Msg, toCoord bool, to int) {
	if toCoord && mergeable(m) && s.chance(s.prof.pMerge) {
		k := mergeKeyOf(to, m)
		if _, ok := s.merging[k]; !ok {
			n, err := m.Encode(s.buf)
			if err != nil {
				s.failf("encode: %v", err)
				return
			}
			s.push(s.now+s.between(200, s.prof.maxHold), evFlushMerge, to, 0, append([]byte(nil), s.buf[:n]...))
		}
		s.merging[k] |= 1 << m.From
		return
	}
	s.transmit(from, m, toCoord, to)
}

// transmit puts one encoded message on the simulated network.
func (s *sim) transmit(from int, m *Msg, toCoord bool, to int) {
	n, err := m.Encode(s.buf)
	if err != nil {
		s.failf("encode: %v", err)
		return
	}
	if s.chance(s.prof.pDrop) {
		s.tracef("drop %v tx %d+%d", m.Type, m.Tx, m.Run)
		return
	}
	copies := 1
	if s.chance(s.prof.pDup) {
		copies = 2
	}
	for range copies {
		d := s.between(500, 20_000)
		if s.chance(s.prof.pSlow) {
			d = s.between(50_000, 400_000)
		}
		at := s.now + d
		kind := evDeliverNode
		if toCoord {
			kind = evDeliverCoord
		}
		if s.prof.clean { // FIFO per link
			a, b := min(from, simParts), min(to, simParts)
			if toCoord {
				b = simParts
			}
			at = max(at, s.lastSend[a][b]+1)
			s.lastSend[a][b] = at
		}
		s.push(at, kind, to, 0, append([]byte(nil), s.buf[:n]...))
	}
}

func (s *sim) flushCoord(i int) {
	sc := s.coords[i]
	rd := sc.c.Ready()
	for j := range rd.Msgs {
		m := &rd.Msgs[j]
		for p := 0; p < simParts; p++ {
			if m.To == Broadcast || m.To == NodeID(p) {
				s.send(simParts, m, false, p)
			}
		}
	}
	for j := range rd.Results {
		r := rd.Results[j]
		s.tracef("coord %d result tx %d reason %v recovered %v", i, r.Tx, r.Reason, r.Recovered)
		s.results[r.Tx] = append(s.results[r.Tx], r)
		if r.Reason == ReasonNone && !r.Recovered && (r.Prepare < 0 || r.PreCommit < 0 || r.Commit < 0 || r.Total < r.Prepare) {
			s.failf("tx %d: bad latencies %+v", r.Tx, r)
		}
	}
	if at := max(rd.Deadline, s.now); rd.Deadline != 0 && (sc.timerAt == 0 || at < sc.timerAt) {
		sc.timerAt = at
		s.push(at, evTimerCoord, i, 0, nil)
	}
	sc.c.Advance()
}

func (s *sim) flushNode(i int) {
	nd := s.nodes[i]
	rd := nd.n.Ready()
	for j := range rd.Msgs {
		for c := range s.coords {
			if !s.coords[c].dead {
				s.send(i, &rd.Msgs[j], true, c)
			}
		}
	}
	if at := max(rd.Deadline, s.now); rd.Deadline != 0 && (nd.timerAt == 0 || at < nd.timerAt) {
		nd.timerAt = at
		s.push(at, evTimerNode, i, 0, nil)
	}
	nd.n.Advance()
}

// committedInLog is the journal's verdict: a RecCommit and no RecAbort.
func (s *sim) committedInLog() map[TxID]bool {
	out := map[TxID]bool{}
	ab := map[TxID]bool{}
	for _, r := range s.log.recs {
		switch r.Kind {
		case RecCommit:
			out[r.Tx] = true
		case RecAbort:
			ab[r.Tx] = true
		}
	}
	for tx := range ab {
		delete(out, tx)
	}
	return out
}

func (s *sim) check() {
	logc := s.committedInLog()
	for sl := range s.tab.InFlight() {
		s.failf("termination: tx %d still in flight in the table (%v)", sl.Tx, sl.Decision)
		return
	}
	for i, sc := range s.coords {
		if !sc.dead && !sc.c.Fenced() && sc.c.InFlight() != 0 {
			s.failf("termination: coordinator %d has %d in flight", i, sc.c.InFlight())
			return
		}
	}
	var total int64
	for tx := range logc {
		if s.proposed[tx] == nil {
			s.failf("log commits tx %d that was never proposed", tx)
			return
		}
		total += s.proposed[tx].Qty
	}
	for tx, cmd := range s.proposed {
		var c, a []int
		for p := range simParts {
			if s.committed[p][tx] {
				c = append(c, p)
			}
			if s.aborted[p][tx] {
				a = append(a, p)
			}
		}
		if len(c) > 0 && len(a) > 0 {
			s.failf("agreement: tx %d committed at %v and aborted at %v", tx, c, a)
			return
		}
		if len(c) > 0 && !logc[tx] || logc[tx] && len(c) != simParts {
			s.failf("agreement: tx %d committed at %v, journal says %v", tx, c, logc[tx])
			return
		}
		if logc[tx] {
			for p := range simParts {
				if !s.votedYes[p][tx] {
					s.failf("validity: tx %d committed without a YES from participant %d", tx, p)
					return
				}
			}
		}
		if s.prof.clean && !logc[tx] {
			s.failf("non-triviality: tx %d aborted in a clean run (%d results)", tx, len(s.results[tx]))
			return
		}
		for _, r := range s.results[tx] {
			if (r.Reason == ReasonNone) != logc[tx] {
				s.failf("result of tx %d says %v, journal says committed=%v", tx, r.Reason, logc[tx])
				return
			}
		}
		if len(s.results[tx]) == 0 && !s.coords[s.proposer[tx]].killed {
			s.failf("termination: tx %d (qty %d) has no result", tx, cmd.Qty)
			return
		}
	}
	if s.prof.clean && len(logc) != s.toPropose {
		s.failf("non-triviality: %d of %d committed in a clean run", len(logc), s.toPropose)
		return
	}
	for i, sc := range s.coords {
		if c := sc.c.Counters(); s.prof.clean && (c.Retransmits != 0 || c.Timeouts != 0) {
			s.failf("coordinator %d retransmitted %d times and timed out %d in a clean run: a message was lost", i, c.Retransmits, c.Timeouts)
			return
		}
	}
	for i, nd := range s.nodes {
		p := nd.p
		if nd.dead {
			s.failf("node %d dead at the end", i)
			return
		}
		if p.reserved != 0 {
			s.failf("conservation: participant %d still reserves %d", i, p.reserved)
			return
		}
		if p.balance != total {
			s.failf("conservation: participant %d balance %d, journal's committed total %d", i, p.balance, total)
			return
		}
		if k := nd.n.InFlight(); k != 0 {
			s.failf("termination: node %d holds %d transactions in flight", i, k)
			return
		}
		if c := nd.n.Counters().Conflicts; c != 0 {
			s.failf("node %d saw %d conflicting messages", i, c)
			return
		}
	}
}

// testParticipant checks the Participant contract on every call and keeps
// a balance (the sum of committed quantities) and reservations.
type testParticipant struct {
	s        *sim
	id, inc  int
	state    map[TxID]uint8 // this incarnation
	qty      map[TxID]int64
	last     TxID
	reserved int64
	balance  int64
}

const (
	tpPrepared uint8 = iota + 1
	tpNo
	tpPreCommitted
	tpCommitted
	tpAborted
)

// votesNo decides a participant's vote from the seed, the tx and the
// participant alone, so every incarnation would vote the same.
func (p *testParticipant) votesNo(tx TxID) bool {
	if p.s.prof.pNo == 0 {
		return false
	}
	h := (uint64(tx)*0x9e3779b97f4a7c15 ^ p.s.seed*0xbf58476d1ce4e5b9 ^ uint64(p.id+1)*0x94d049bb133111eb) >> 11
	return float64(h)/float64(1<<53) < p.s.prof.pNo
}

func (p *testParticipant) Prepare(tx TxID, cmd *Command, out *Outcome) Reason {
	s := p.s
	if _, ok := p.state[tx]; ok {
		s.failf("idempotence: participant %d Prepare twice for tx %d", p.id, tx)
	}
	if tx <= p.last {
		s.failf("participant %d Prepare tx %d after tx %d", p.id, tx, p.last)
	}
	p.last = tx
	if p.votesNo(tx) {
		p.state[tx] = tpNo
		return ReasonCreditLimit
	}
	p.state[tx], p.qty[tx] = tpPrepared, cmd.Qty
	p.reserved += cmd.Qty
	s.votedYes[p.id][tx] = true
	if p.id == 0 { // the matching role: one fill for the whole quantity
		out.NFills = 1
		out.Fills[0] = Fill{TradeID: TradeIDOf(tx, 0), Symbol: cmd.Symbol, TakerSide: cmd.Side, TakerOrder: cmd.OrderID, Price: cmd.Price, Qty: cmd.Qty}
	}
	return ReasonNone
}

func (p *testParticipant) checkOut(what string, tx TxID, qty int64, out *Outcome) {
	if out.NFills != 1 || out.Fills[0].TradeID != TradeIDOf(tx, 0) || out.Fills[0].Qty != qty {
		p.s.failf("participant %d %s tx %d with a foreign outcome %+v", p.id, what, tx, out.FillSlice())
	}
}

func (p *testParticipant) PreCommit(tx TxID, out *Outcome) {
	if p.state[tx] != tpPrepared {
		p.s.failf("idempotence: participant %d PreCommit tx %d in state %d", p.id, tx, p.state[tx])
		return
	}
	p.checkOut("pre-commits", tx, p.qty[tx], out)
	p.state[tx] = tpPreCommitted
}

func (p *testParticipant) Commit(tx TxID, out *Outcome) {
	st := p.state[tx]
	if st != tpPreCommitted && !(st == tpPrepared && p.s.prof.mode == TwoPhase) {
		p.s.failf("participant %d Commit tx %d in state %d (%v)", p.id, tx, st, p.s.prof.mode)
		return
	}
	p.checkOut("commits", tx, p.qty[tx], out)
	p.state[tx] = tpCommitted
	p.reserved -= p.qty[tx]
	p.balance += p.qty[tx]
	p.s.committed[p.id][tx] = true
}

func (p *testParticipant) Abort(tx TxID) {
	switch p.state[tx] {
	case tpPrepared:
		p.reserved -= p.qty[tx]
		p.state[tx] = tpAborted
		p.s.aborted[p.id][tx] = true
	case tpPreCommitted, tpCommitted:
		p.s.failf("participant %d Abort tx %d after pre-commit or commit", p.id, tx)
	case tpAborted:
		p.s.failf("idempotence: participant %d Abort twice for tx %d", p.id, tx)
	}
}

func (p *testParticipant) Apply(tx TxID, cmd *Command, out *Outcome) error {
	if _, ok := p.state[tx]; ok {
		p.s.failf("participant %d Apply tx %d it already knows", p.id, tx)
	}
	if !p.s.votedYes[p.id][tx] {
		p.s.failf("validity: participant %d Apply tx %d it never voted YES on", p.id, tx)
	}
	p.checkOut("applies", tx, cmd.Qty, out)
	p.state[tx] = tpCommitted
	p.balance += cmd.Qty
	p.s.committed[p.id][tx] = true
	return nil
}

func (p *testParticipant) Snapshot(io.Writer) error { return errors.New("not supported") }
func (p *testParticipant) Restore(io.Reader) error  { return errors.New("not supported") }

// simStats sums what the seeds exercised, to show the faults really happen.
type simStats struct {
	seeds, committed, aborted, takeovers, fencedResults, restarts, terminations, timeouts, retransmits, stale atomic.Uint64
	runs, merged                                                                                              atomic.Uint64
}

func (st *simStats) add(s *sim) {
	st.seeds.Add(1)
	for tx := range s.proposed {
		if s.committed[0][tx] {
			st.committed.Add(1)
		} else {
			st.aborted.Add(1)
		}
	}
	st.takeovers.Add(uint64(len(s.coords) - 1))
	st.runs.Add(s.runs)
	st.merged.Add(s.merged)
	for _, sc := range s.coords {
		c := sc.c.Counters()
		st.timeouts.Add(c.Timeouts)
		st.retransmits.Add(c.Retransmits)
		if sc.c.Fenced() && !sc.dead {
			st.fencedResults.Add(1)
		}
	}
	for _, nd := range s.nodes {
		st.restarts.Add(uint64(nd.inc))
		c := nd.n.Counters()
		st.terminations.Add(c.Terminations)
		st.stale.Add(c.Stale)
	}
}

func (st *simStats) String() string {
	return fmt.Sprintf("%d seeds: %d committed, %d aborted; %d takeovers, %d stale coordinators fenced, %d participant restarts, "+
		"%d termination CASes, %d prepare timeouts, %d retransmits, %d stale messages ignored by nodes; "+
		"%d messages delivered as runs, %d merged",
		st.seeds.Load(), st.committed.Load(), st.aborted.Load(), st.takeovers.Load(), st.fencedResults.Load(), st.restarts.Load(),
		st.terminations.Load(), st.timeouts.Load(), st.retransmits.Load(), st.stale.Load(), st.runs.Load(), st.merged.Load())
}

func runSeed(seed uint64, trace bool, st *simStats) (*sim, error) {
	s := newSim(seed, trace)
	err := s.run()
	if err == nil && st != nil {
		st.add(s)
	}
	return s, err
}

func TestSim(t *testing.T) {
	if *simSeed >= 0 {
		s, err := runSeed(uint64(*simSeed), true, nil)
		if *simTrace {
			fmt.Fprint(os.Stderr, s.trace.String())
		}
		if err != nil {
			t.Fatalf("seed %d (%s): %v", *simSeed, s.prof.name, err)
		}
		return
	}
	seeds := uint64(*simSeeds)
	if testing.Short() {
		seeds = min(seeds, 1000)
	}
	start := time.Now()
	var next atomic.Uint64
	var mu sync.Mutex
	var failed []uint64
	var wg sync.WaitGroup
	var st simStats
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= seeds {
					return
				}
				seed := *simFirst + i
				if _, err := runSeed(seed, *simTrace, &st); err != nil {
					mu.Lock()
					failed = append(failed, seed)
					mu.Unlock()
					t.Errorf("seed %d: %v\n\treplay: go test ./engine -run 'TestSim$' -sim.seed=%d -sim.trace", seed, err, seed)
				}
				mu.Lock()
				stop := len(failed) >= 5
				mu.Unlock()
				if stop {
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d seeds from %d in %v", seeds, *simFirst, time.Since(start).Round(time.Millisecond))
	t.Logf("passing runs: %v", &st)
	if seeds >= 1000 && (st.runs.Load() == 0 || st.merged.Load() == 0) {
		t.Errorf("no message was delivered as a run (%d) or merged (%d): the simulator misses those paths", st.runs.Load(), st.merged.Load())
	}
}
