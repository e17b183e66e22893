package risk

import (
	"errors"
	"fmt"
	"math"

	"github.com/commitcore/commitcore/engine"
)

// Limits are one account's risk limits. A zero field is no limit.
type Limits struct {
	// MaxOrderQty bounds one order's quantity, in lots.
	MaxOrderQty int64
	// MaxOrderNotional bounds one order's Price × Qty.
	MaxOrderNotional int64
	// PriceBandBps rejects a price more than this many basis points away
	// from the symbol's reference price. It does nothing while the symbol
	// has no reference.
	PriceBandBps int64
	// MaxPosition bounds the absolute worst-case position in any symbol.
	MaxPosition int64
	// CreditLimit bounds the notional of open buy orders, resting and in
	// flight.
	CreditLimit int64
	// OrdersPerSecond is the token bucket's refill rate and Burst its size:
	// each NewOrder or Replace takes a token. Burst must be at least 1 when
	// OrdersPerSecond is set.
	OrdersPerSecond int64
	Burst           int64
}

// validate reports what is wrong with l.
func (l Limits) validate() error {
	for _, v := range []int64{l.MaxOrderQty, l.MaxOrderNotional, l.PriceBandBps, l.MaxPosition, l.CreditLimit, l.OrdersPerSecond, l.Burst} {
		if v < 0 {
			return fmt.Errorf("negative limit %d in %+v", v, l)
		}
	}
	if l.OrdersPerSecond > 0 && (l.Burst < 1 || l.Burst > math.MaxInt64/nanosPerSecond) {
		return fmt.Errorf("burst %d outside [1,%d] for a rate of %d orders/s", l.Burst, math.MaxInt64/nanosPerSecond, l.OrdersPerSecond)
	}
	if l.OrdersPerSecond > nanosPerSecond {
		return fmt.Errorf("rate %d orders/s is above one per nanosecond", l.OrdersPerSecond)
	}
	return nil
}

// Config describes a risk manager at genesis.
type Config struct {
	// Accounts and Symbols are the numbers of accounts and symbols; ids are
	// dense, 0..Accounts-1 and 0..Symbols-1.
	Accounts int
	Symbols  int
	// Defaults are every account's limits unless Overrides has its own.
	Defaults  Limits
	Overrides map[uint32]Limits
	// References are the symbols' reference prices (len Symbols, or nil);
	// zero means none yet.
	References []int64
	// FollowLastTrade moves a symbol's reference to the price of its last
	// committed trade.
	FollowLastTrade bool
	// MaxOrders bounds the resting orders tracked, and MaxInFlight the
	// prepared transactions; both tables are sized once so that the hot path
	// never allocates. A Prepare beyond either votes NO with
	// engine.ReasonBackpressure.
	MaxOrders   int
	MaxInFlight int
}

// Defaults for the table sizes when Config leaves them zero.
const (
	DefaultMaxOrders   = 1 << 16
	DefaultMaxInFlight = 1 << 10
)

// ErrConfig is wrapped by every error for a bad Config or limit.
var ErrConfig = errors.New("risk: invalid config")

// ApplyError is returned by Apply when the journaled command or outcome
// disagrees with the manager's state.
type ApplyError struct {
	Tx     engine.TxID
	Reason engine.Reason // why the command is invalid, or ReasonNone
	Err    error         // what is wrong with the outcome, when Reason is ReasonNone
}

func (e *ApplyError) Error() string {
	if e.Reason != engine.ReasonNone {
		return fmt.Sprintf("risk: apply tx %d: command rejected: %s", e.Tx, e.Reason)
	}
	return fmt.Sprintf("risk: apply tx %d: %v", e.Tx, e.Err)
}

func (e *ApplyError) Unwrap() error { return e.Err }

// order is a resting order's exposure.
type order struct {
	account   uint32
	symbol    uint32
	side      engine.Side
	replacing int32 // in-flight Replaces of this order
	price     int64
	open      int64
	notional  int64 // price × open
}

// pending is a transaction this participant voted YES on.
type pending struct {
	kind     engine.CommandKind
	side     engine.Side
	typ      engine.OrderType
	account  uint32
	symbol   uint32
	order    uint64
	price    int64
	qty      int64 // reserved on side
	notional int64 // reserved buy exposure
	time     int64
	token    bool   // takes a rate token
	seq      uint64 // the token's place in Manager.tokq
}

// bucket is an order-rate token bucket, in billionths of a token.
type bucket struct {
	level int64
	last  int64 // Command.Time of the last refill
}

// States of a token-taking transaction in the token queue.
const (
	tokPending uint8 = iota
	tokCommitted
	tokAborted
)

// tokenTx is a transaction that takes a rate token, in the token queue.
type tokenTx struct {
	account uint32
	state   uint8
	time    int64
}

// tokenQueue holds the token-taking transactions in prepare order, which
// is TxID order. A committed one reaches its account's bucket only once
// every earlier one has committed or aborted, so that the buckets are
// those of committing in TxID order — what replaying the journal computes
// — whatever order the commits arrive in. It grows, doubling, only when
// more transactions wait than ever before.
type tokenQueue struct {
	q    []tokenTx
	head uint64 // sequence number of the first entry
	n    int
}

func newTokenQueue(capacity int) tokenQueue { return tokenQueue{q: make([]tokenTx, capacity)} }

// push appends t and returns its sequence number.
func (tq *tokenQueue) push(t tokenTx) uint64 {
	if tq.n == len(tq.q) {
		q := make([]tokenTx, 2*len(tq.q)+16)
		for seq := tq.head; seq < tq.head+uint64(tq.n); seq++ {
			q[seq%uint64(len(q))] = *tq.at(seq)
		}
		tq.q = q
	}
	seq := tq.head + uint64(tq.n)
	*tq.at(seq) = t
	tq.n++
	return seq
}

func (tq *tokenQueue) at(seq uint64) *tokenTx { return &tq.q[seq%uint64(len(tq.q))] }

// Manager is the risk participant. It is not safe for concurrent use: the
// engine calls a participant from one goroutine at a time.
type Manager struct {
	accounts  int
	symbols   int
	follow    bool
	maxOrders int
	maxFlight int

	limits  []Limits // per account
	refs    []int64  // per symbol
	pos     []int64  // per account*symbols+symbol, signed
	openBuy []int64  // open and in-flight buy quantity, per account*symbols+symbol
	openSel []int64  // the same for sells
	credit  []int64  // open and in-flight buy notional, per account
	buckets []bucket // committed token buckets, per account
	tokens  []int64  // tokens taken by in-flight transactions, per account
	tokq    tokenQueue
	// refTx is the transaction whose trade set each symbol's reference
	// (FollowLastTrade), so that the latest transaction's trade wins
	// whatever order commits arrive in.
	refTx []engine.TxID

	orders       map[uint64]order
	inflight     map[engine.TxID]pending
	restingSlots int // in-flight Limit NewOrders
}

var _ engine.Participant = (*Manager)(nil)

// New returns a manager at genesis: no positions, no orders.
func New(cfg Config) (*Manager, error) {
	if cfg.Accounts <= 0 || cfg.Symbols <= 0 {
		return nil, fmt.Errorf("%w: need at least one account and one symbol, got %d and %d", ErrConfig, cfg.Accounts, cfg.Symbols)
	}
	if uint64(cfg.Accounts) > 1<<32 || uint64(cfg.Symbols) > 1<<32 || uint64(cfg.Accounts)*uint64(cfg.Symbols) > 1<<31 {
		return nil, fmt.Errorf("%w: %d accounts × %d symbols is too many", ErrConfig, cfg.Accounts, cfg.Symbols)
	}
	if err := cfg.Defaults.validate(); err != nil {
		return nil, fmt.Errorf("%w: defaults: %w", ErrConfig, err)
	}
	if cfg.References != nil && len(cfg.References) != cfg.Symbols {
		return nil, fmt.Errorf("%w: References has %d entries, want one per symbol (%d)", ErrConfig, len(cfg.References), cfg.Symbols)
	}
	if cfg.MaxOrders < 0 || cfg.MaxInFlight < 0 {
		return nil, fmt.Errorf("%w: negative table size", ErrConfig)
	}
	if cfg.MaxOrders == 0 {
		cfg.MaxOrders = DefaultMaxOrders
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	n := cfg.Accounts * cfg.Symbols
	m := &Manager{
		accounts: cfg.Accounts, symbols: cfg.Symbols, follow: cfg.FollowLastTrade,
		maxOrders: cfg.MaxOrders, maxFlight: cfg.MaxInFlight,
		limits:  make([]Limits, cfg.Accounts),
		refs:    make([]int64, cfg.Symbols),
		pos:     make([]int64, n),
		openBuy: make([]int64, n),
		openSel: make([]int64, n),
		credit:  make([]int64, cfg.Accounts),
		buckets: make([]bucket, cfg.Accounts),
		tokens:  make([]int64, cfg.Accounts),
		tokq:    newTokenQueue(cfg.MaxInFlight),
		refTx:   make([]engine.TxID, cfg.Symbols),
	}
	for a := range m.limits {
		m.limits[a] = cfg.Defaults
	}
	for a, l := range cfg.Overrides {
		if int(a) >= cfg.Accounts {
			return nil, fmt.Errorf("%w: override for account %d, which does not exist", ErrConfig, a)
		}
		if err := l.validate(); err != nil {
			return nil, fmt.Errorf("%w: account %d: %w", ErrConfig, a, err)
		}
		m.limits[a] = l
	}
	for s, r := range cfg.References {
		if r < 0 {
			return nil, fmt.Errorf("%w: negative reference price %d for symbol %d", ErrConfig, r, s)
		}
		m.refs[s] = r
	}
	for a := range m.buckets {
		m.buckets[a] = bucket{level: m.limits[a].Burst * nanosPerSecond, last: math.MinInt64}
	}
	m.orders = make(map[uint64]order, m.maxOrders)
	m.inflight = make(map[engine.TxID]pending, m.maxFlight)
	return m, nil
}

// SetLimits replaces account a's limits. They apply from the next Prepare;
// reservations already made stand.
func (m *Manager) SetLimits(a uint32, l Limits) error {
	if int(a) >= m.accounts {
		return fmt.Errorf("%w: account %d does not exist", ErrConfig, a)
	}
	if err := l.validate(); err != nil {
		return fmt.Errorf("%w: account %d: %w", ErrConfig, a, err)
	}
	m.limits[a] = l
	return nil
}

// Limits returns account a's limits. It panics if a is not an account.
func (m *Manager) Limits(a uint32) Limits { return m.limits[a] }

// SetReference sets symbol s's reference price for the price band; zero
// removes it.
func (m *Manager) SetReference(s uint32, price int64) error {
	if int(s) >= m.symbols || price < 0 {
		return fmt.Errorf("%w: reference price %d for symbol %d", ErrConfig, price, s)
	}
	m.refs[s] = price
	return nil
}

// Reference returns symbol s's reference price, zero if none. It panics if
// s is not a symbol.
func (m *Manager) Reference(s uint32) int64 { return m.refs[s] }

// Position returns account a's committed position in symbol s: positive
// long, negative short.
func (m *Manager) Position(a, s uint32) int64 { return m.pos[m.idx(a, s)] }

// Open returns the quantity account a has open and in flight in symbol s on
// each side.
func (m *Manager) Open(a, s uint32) (buy, sell int64) {
	i := m.idx(a, s)
	return m.openBuy[i], m.openSel[i]
}

// Credit returns the notional of account a's open and in-flight buys.
func (m *Manager) Credit(a uint32) int64 { return m.credit[a] }

// OpenOrders returns the number of resting orders tracked.
func (m *Manager) OpenOrders() int { return len(m.orders) }

// InFlight returns the number of prepared transactions not yet committed or
// aborted.
func (m *Manager) InFlight() int { return len(m.inflight) }

func (m *Manager) idx(a, s uint32) int {
	if int(a) >= m.accounts || int(s) >= m.symbols {
		panic(fmt.Sprintf("risk: account %d or symbol %d out of range", a, s))
	}
	return int(a)*m.symbols + int(s)
}

// refill returns account a's committed bucket level at time t.
func (m *Manager) refill(a uint32, t int64) int64 {
	l, b := &m.limits[a], m.buckets[a]
	capacity := l.Burst * nanosPerSecond
	if l.OrdersPerSecond == 0 {
		return capacity
	}
	if t <= b.last {
		return min(b.level, capacity)
	}
	dt := uint64(t) - uint64(b.last)
	if room := capacity - b.level; room <= 0 || dt >= uint64(room)/uint64(l.OrdersPerSecond) {
		return capacity
	}
	return b.level + int64(dt)*l.OrdersPerSecond
}

// Prepare runs every check on cmd and reserves its exposure. It votes NO
// with the reason of the first check that fails.
func (m *Manager) Prepare(tx engine.TxID, cmd *engine.Command, _ *engine.Outcome) engine.Reason {
	if len(m.inflight) >= m.maxFlight {
		return engine.ReasonBackpressure
	}
	if _, dup := m.inflight[tx]; dup {
		return engine.ReasonMalformed
	}
	if cmd.Kind == engine.NewOrder && cmd.Type == engine.Limit && len(m.orders)+m.restingSlots >= m.maxOrders {
		return engine.ReasonBackpressure
	}
	return m.prepare(tx, cmd, true)
}

// prepare validates cmd, runs the limit checks when enforce is set, and
// reserves.
func (m *Manager) prepare(tx engine.TxID, cmd *engine.Command, enforce bool) engine.Reason {
	if int(cmd.Account) >= m.accounts {
		return engine.ReasonUnknownAccount
	}
	p := pending{kind: cmd.Kind, account: cmd.Account, order: cmd.OrderID, price: cmd.Price, qty: cmd.Qty, time: cmd.Time}
	var o order // the order a Replace re-sizes
	switch cmd.Kind {
	case engine.NewOrder:
		if int(cmd.Symbol) >= m.symbols {
			return engine.ReasonUnknownSymbol
		}
		if (cmd.Side != engine.Buy && cmd.Side != engine.Sell) || cmd.Type < engine.Limit || cmd.Type > engine.Market {
			return engine.ReasonMalformed
		}
		if _, dup := m.orders[cmd.OrderID]; dup {
			return engine.ReasonMalformed
		}
		p.side, p.typ, p.symbol = cmd.Side, cmd.Type, cmd.Symbol
	case engine.Cancel, engine.Replace:
		var ok bool
		if o, ok = m.orders[cmd.OrderID]; !ok {
			return engine.ReasonUnknownOrder
		}
		if o.account != cmd.Account {
			return engine.ReasonNotOwner
		}
		p.side, p.symbol = o.side, o.symbol
		if cmd.Kind == engine.Cancel {
			p.qty, p.price = 0, 0
			m.inflight[tx] = p
			return engine.ReasonNone
		}
		if o.replacing > 0 {
			// Another Replace may re-size the order first: count none of
			// its exposure as freed.
			o.open, o.notional = 0, 0
		}
	default:
		return engine.ReasonMalformed
	}
	if cmd.Qty <= 0 {
		return engine.ReasonBadQuantity
	}
	if cmd.Price <= 0 {
		return engine.ReasonBadPrice
	}
	notional, ok := mul(cmd.Price, cmd.Qty)
	if !ok {
		return engine.ReasonOverflow
	}
	if p.side == engine.Buy {
		p.notional = notional
	}
	if r := m.check(&p, &o, enforce); r != engine.ReasonNone {
		return r
	}
	i := m.idx(p.account, p.symbol)
	if p.side == engine.Buy {
		m.openBuy[i] += p.qty
		m.credit[p.account] += p.notional
	} else {
		m.openSel[i] += p.qty
	}
	p.token = m.limits[p.account].OrdersPerSecond > 0
	if p.token {
		m.tokens[p.account]++
		p.seq = m.tokq.push(tokenTx{account: p.account, time: p.time})
	}
	switch {
	case p.kind == engine.Replace:
		o = m.orders[p.order]
		o.replacing++
		m.orders[p.order] = o
	case p.typ == engine.Limit:
		m.restingSlots++
	}
	m.inflight[tx] = p
	return engine.ReasonNone
}

// check runs the limit checks on p, a new order or a Replace of o (whose
// exposure the Replace frees). Overflow is checked whether or not limits are
// enforced, so that reserving cannot overflow.
func (m *Manager) check(p *pending, o *order, enforce bool) engine.Reason {
	l := &m.limits[p.account]
	if enforce && l.MaxOrderQty > 0 && p.qty > l.MaxOrderQty {
		return engine.ReasonMaxQty
	}
	notional, _ := mul(p.price, p.qty)
	if enforce && l.MaxOrderNotional > 0 && notional > l.MaxOrderNotional {
		return engine.ReasonMaxNotional
	}
	if ref := m.refs[p.symbol]; enforce && l.PriceBandBps > 0 && ref > 0 && outsideBand(p.price, ref, l.PriceBandBps) {
		return engine.ReasonPriceBand
	}
	i := m.idx(p.account, p.symbol)
	// Reserving adds p.qty to the side's open quantity; the worst case
	// counts the replaced order's quantity as freed.
	open, pos := m.openBuy[i], m.pos[i]
	if p.side == engine.Sell {
		open, pos = m.openSel[i], -pos
	}
	reserved, ok := add(open, p.qty)
	if !ok {
		return engine.ReasonOverflow
	}
	worst, ok := add(pos, reserved-o.open)
	if !ok {
		return engine.ReasonOverflow
	}
	if enforce && l.MaxPosition > 0 && worst > l.MaxPosition {
		return engine.ReasonPositionLimit
	}
	if p.side == engine.Buy {
		credit, ok := add(m.credit[p.account], p.notional)
		if !ok {
			return engine.ReasonOverflow
		}
		if enforce && l.CreditLimit > 0 && credit-o.notional > l.CreditLimit {
			return engine.ReasonCreditLimit
		}
	}
	if enforce && l.OrdersPerSecond > 0 && m.refill(p.account, p.time)-m.tokens[p.account]*nanosPerSecond < nanosPerSecond {
		return engine.ReasonRateLimit
	}
	return engine.ReasonNone
}

// PreCommit pins tx's reservations. Reservations are only ever released by
// Commit or Abort, so there is nothing more to do.
func (m *Manager) PreCommit(engine.TxID, *engine.Outcome) {}

// Abort releases what Prepare reserved for tx. It does nothing for a
// transaction that is not in flight.
func (m *Manager) Abort(tx engine.TxID) {
	p, ok := m.inflight[tx]
	if !ok {
		return
	}
	delete(m.inflight, tx)
	m.unreserve(&p)
	if p.token {
		m.tokens[p.account]--
		m.tokq.at(p.seq).state = tokAborted
		m.flushTokens()
	}
}

// flushTokens retires the resolved transactions at the head of the token
// queue in order; each committed one spends its token from its account's
// bucket (an aborted one returned its token when it aborted). Until then a
// committed token counts as in flight.
func (m *Manager) flushTokens() {
	for m.tokq.n > 0 {
		t := m.tokq.at(m.tokq.head)
		if t.state == tokPending {
			return
		}
		if t.state == tokCommitted {
			b := &m.buckets[t.account]
			*b = bucket{level: max(0, m.refill(t.account, t.time)-nanosPerSecond), last: max(t.time, b.last)}
			m.tokens[t.account]--
		}
		m.tokq.head++
		m.tokq.n--
	}
}

// unreserve releases p's exposure and bookkeeping.
func (m *Manager) unreserve(p *pending) {
	if p.kind == engine.Cancel {
		return
	}
	i := m.idx(p.account, p.symbol)
	if p.side == engine.Buy {
		m.openBuy[i] -= p.qty
		m.credit[p.account] -= p.notional
	} else {
		m.openSel[i] -= p.qty
	}
	switch {
	case p.kind == engine.Replace:
		if o, ok := m.orders[p.order]; ok {
			o.replacing--
			if o.replacing == 0 && o.open == 0 {
				delete(m.orders, p.order)
				break
			}
			m.orders[p.order] = o
		}
	case p.typ == engine.Limit:
		m.restingSlots--
	}
	if m.openBuy[i] < 0 || m.openSel[i] < 0 || m.credit[p.account] < 0 {
		panic(fmt.Sprintf("risk: account %d's exposure went negative", p.account))
	}
}

// Commit turns tx's fills into positions, keeps the resting remainder's
// exposure and releases the rest. It panics if tx was not prepared here
// with a YES vote, or if out breaks the contract in the package
// documentation.
func (m *Manager) Commit(tx engine.TxID, out *engine.Outcome) {
	p, ok := m.inflight[tx]
	if !ok {
		panic(fmt.Sprintf("risk: commit of tx %d, which is not in flight", tx))
	}
	if err := m.validate(&p, out); err != nil {
		panic(fmt.Sprintf("risk: commit of tx %d: %v", tx, err))
	}
	delete(m.inflight, tx)
	m.settle(tx, &p, out)
}

// Apply replays a committed transaction: Prepare without the limit checks,
// then Commit. It changes nothing and returns an *ApplyError if the command
// or outcome disagrees with the manager's state.
func (m *Manager) Apply(tx engine.TxID, cmd *engine.Command, out *engine.Outcome) error {
	if _, dup := m.inflight[tx]; dup {
		return &ApplyError{Tx: tx, Err: errors.New("transaction is in flight")}
	}
	if cmd.Kind == engine.Cancel || cmd.Kind == engine.Replace {
		// Fills committed first may have ended the order (see settlement).
		o, ok := m.orders[cmd.OrderID]
		if (!ok || o.open == 0) && out.NFills == 0 && out.NRemoved == 0 && out.Resting == 0 && out.Canceled == 0 {
			return nil
		}
	}
	if r := m.prepare(tx, cmd, false); r != engine.ReasonNone {
		return &ApplyError{Tx: tx, Reason: r}
	}
	p := m.inflight[tx]
	if err := m.validate(&p, out); err != nil {
		m.Abort(tx)
		return &ApplyError{Tx: tx, Err: err}
	}
	delete(m.inflight, tx)
	m.settle(tx, &p, out)
	return nil
}

// validate verifies that out is a consistent outcome of p that the manager
// can commit, without changing anything.
func (m *Manager) validate(p *pending, out *engine.Outcome) error {
	if out.NFills < 0 || out.NFills > engine.MaxFills || out.NRemoved < 0 || out.NRemoved > engine.MaxRemoved {
		return fmt.Errorf("outcome has %d fills and %d removals", out.NFills, out.NRemoved)
	}
	if out.Resting < 0 || out.Canceled < 0 {
		return fmt.Errorf("negative resting (%d) or canceled (%d) quantity", out.Resting, out.Canceled)
	}
	// Per-order quantity taken, in a fixed array so that nothing allocates.
	var ids [engine.MaxFills + engine.MaxRemoved + 1]uint64
	var qty [len(ids)]int64
	n := 0
	take := func(id uint64, q int64) (int64, int64) {
		for j := range n {
			if ids[j] == id {
				qty[j] += q
				return qty[j], m.orders[id].open
			}
		}
		ids[n], qty[n] = id, q
		n++
		return q, m.orders[id].open
	}
	var filled int64
	for i := range out.NFills {
		f := &out.Fills[i]
		if f.Qty <= 0 || f.Price <= 0 {
			return fmt.Errorf("fill %d has quantity %d at price %d", i, f.Qty, f.Price)
		}
		if f.TakerOrder != p.order || f.Taker != p.account || f.TakerSide != p.side || f.Symbol != p.symbol {
			return fmt.Errorf("fill %d is not of order %d (account %d, %s, symbol %d)", i, p.order, p.account, p.side, p.symbol)
		}
		o, ok := m.orders[f.MakerOrder]
		if !ok || f.MakerOrder == p.order || o.account != f.Maker || o.side == p.side || o.symbol != f.Symbol {
			return fmt.Errorf("fill %d: maker order %d is not account %d's resting order of symbol %d", i, f.MakerOrder, f.Maker, f.Symbol)
		}
		if took, open := take(f.MakerOrder, f.Qty); took > open {
			return fmt.Errorf("fill %d takes more than maker order %d's open %d", i, f.MakerOrder, open)
		}
		filled += f.Qty
		if filled > p.qty && p.kind == engine.NewOrder {
			return fmt.Errorf("fills exceed the order's quantity %d", p.qty)
		}
	}
	for i := range out.NRemoved {
		r := &out.Removed[i]
		o, ok := m.orders[r.OrderID]
		if !ok || o.account != r.Account || o.side != r.Side || r.Qty <= 0 {
			return fmt.Errorf("removal %d: order %d is not account %d's resting %s", i, r.OrderID, r.Account, r.Side)
		}
		if took, open := take(r.OrderID, r.Qty); took > open {
			return fmt.Errorf("removal %d takes more than order %d's open %d", i, r.OrderID, open)
		}
	}
	switch p.kind {
	case engine.NewOrder:
		if out.Resting > 0 && (p.typ != engine.Limit || out.RestingPrice != p.price) {
			return fmt.Errorf("%s order rests %d at %d", p.typ, out.Resting, out.RestingPrice)
		}
		if filled+out.Resting+out.Canceled != p.qty {
			return fmt.Errorf("filled %d + resting %d + canceled %d is not the order's quantity %d", filled, out.Resting, out.Canceled, p.qty)
		}
	case engine.Cancel:
		if out.NFills != 0 || out.Resting != 0 {
			return errors.New("cancel has fills or a resting quantity")
		}
		if _, ok := m.orders[p.order]; ok {
			if took, open := take(p.order, out.Canceled); took > open {
				return fmt.Errorf("cancel takes %d from order %d, more than its open quantity", out.Canceled, p.order)
			}
		} else if out.Canceled > 0 {
			return fmt.Errorf("cancel of order %d, which no longer rests", p.order)
		}
	case engine.Replace:
		if out.Resting > 0 && out.RestingPrice != p.price {
			return fmt.Errorf("replace rests at %d, not the new price %d", out.RestingPrice, p.price)
		}
		if filled+out.Resting > p.qty {
			return fmt.Errorf("replace fills %d and rests %d, more than the new quantity %d", filled, out.Resting, p.qty)
		}
		if o, ok := m.orders[p.order]; (!ok || o.open == 0) && (out.Resting > 0 || out.NFills > 0) {
			return fmt.Errorf("replace of order %d, which no longer rests, fills or rests", p.order)
		}
	}
	// Positions move by at most the quantity filled.
	if !fits(m.pos[m.idx(p.account, p.symbol)], filled) {
		return errors.New("the taker's position would overflow")
	}
	for i := range out.NFills {
		if f := &out.Fills[i]; !fits(m.pos[m.idx(f.Maker, f.Symbol)], filled) {
			return fmt.Errorf("fill %d: the maker's position would overflow", i)
		}
	}
	return nil
}

// settle commits tx's validated outcome. Its effects do not depend on the
// order transactions commit in: the token reaches the bucket in TxID order
// (flushTokens) and a reference moves only for a later transaction's trade.
func (m *Manager) settle(tx engine.TxID, p *pending, out *engine.Outcome) {
	if p.token {
		m.tokq.at(p.seq).state = tokCommitted
		m.flushTokens()
	}
	m.unreserve(p)
	for i := range out.NFills {
		f := &out.Fills[i]
		ti, mi := m.idx(f.Taker, f.Symbol), m.idx(f.Maker, f.Symbol)
		if f.TakerSide == engine.Buy {
			m.pos[ti] += f.Qty
			m.pos[mi] -= f.Qty
		} else {
			m.pos[ti] -= f.Qty
			m.pos[mi] += f.Qty
		}
		m.takeOpen(f.MakerOrder, f.Qty)
		if m.follow && tx >= m.refTx[f.Symbol] {
			m.refs[f.Symbol], m.refTx[f.Symbol] = f.Price, tx
		}
	}
	for i := range out.NRemoved {
		m.takeOpen(out.Removed[i].OrderID, out.Removed[i].Qty)
	}
	switch p.kind {
	case engine.NewOrder:
		if out.Resting > 0 {
			m.rest(p.order, order{account: p.account, symbol: p.symbol, side: p.side}, out)
		}
	case engine.Cancel:
		if out.Canceled > 0 {
			m.takeOpen(p.order, out.Canceled)
		}
	case engine.Replace:
		o, ok := m.orders[p.order]
		if !ok {
			break
		}
		m.takeOpen(p.order, o.open)
		if out.Resting > 0 {
			cur := m.orders[p.order] // gone, unless another Replace names it
			m.rest(p.order, order{account: o.account, symbol: o.symbol, side: o.side, replacing: cur.replacing}, out)
		}
	}
}

// rest records o resting with out's remainder and adds its exposure.
func (m *Manager) rest(id uint64, o order, out *engine.Outcome) {
	o.price, o.open = out.RestingPrice, out.Resting
	i := m.idx(o.account, o.symbol)
	if o.side == engine.Buy {
		o.notional, _ = mul(o.price, o.open) // within what Prepare reserved
		m.openBuy[i] += o.open
		m.credit[o.account] += o.notional
	} else {
		m.openSel[i] += o.open
	}
	m.orders[id] = o
}

// takeOpen takes qty off a resting order's open quantity and its exposure.
func (m *Manager) takeOpen(id uint64, qty int64) {
	o := m.orders[id]
	i := m.idx(o.account, o.symbol)
	o.open -= qty
	if o.side == engine.Buy {
		n := o.price * qty // at most the order's notional
		o.notional -= n
		m.openBuy[i] -= qty
		m.credit[o.account] -= n
	} else {
		m.openSel[i] -= qty
	}
	if o.open < 0 || m.openBuy[i] < 0 || m.openSel[i] < 0 || m.credit[o.account] < 0 {
		panic(fmt.Sprintf("risk: order %d's exposure went negative", id))
	}
	if o.open == 0 && o.replacing == 0 {
		delete(m.orders, id)
		return
	}
	m.orders[id] = o
}
