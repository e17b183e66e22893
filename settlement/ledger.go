package settlement

import (
	"errors"
	"fmt"

	"github.com/commitcore/commitcore/engine"
)

// Config describes a ledger at genesis.
type Config struct {
	// Accounts and Symbols are the numbers of accounts and symbols; ids are
	// dense, 0..Accounts-1 and 0..Symbols-1.
	Accounts int
	Symbols  int
	// Cash is each account's cash at genesis, in minor currency units
	// (len Accounts); nil means none.
	Cash []int64
	// Holdings is each account's quantity of each symbol at genesis, in lots,
	// indexed account*Symbols+symbol (len Accounts*Symbols); nil means none.
	Holdings []int64
	// MakerFeeBps and TakerFeeBps are the fees charged on each fill's
	// notional to the maker and the taker, in basis points (0..10000); zero
	// turns a fee off. Fees are paid in cash to FeeAccount.
	MakerFeeBps int64
	TakerFeeBps int64
	FeeAccount  uint32
	// MaxOrders bounds the resting orders the ledger tracks, and MaxInFlight
	// the transactions prepared but not yet committed or aborted. Both tables
	// are sized once so that the hot path never allocates; a Prepare that
	// would exceed either votes NO with engine.ReasonBackpressure.
	MaxOrders   int
	MaxInFlight int
}

// Defaults for the table sizes when Config leaves them zero.
const (
	DefaultMaxOrders   = 1 << 16
	DefaultMaxInFlight = 1 << 10
)

// ErrConfig is wrapped by every error New returns for a bad Config.
var ErrConfig = errors.New("settlement: invalid config")

// ApplyError is returned by Apply when the journaled command or outcome
// disagrees with the ledger's state.
type ApplyError struct {
	Tx     engine.TxID
	Reason engine.Reason // why Prepare would have voted NO, or ReasonNone
	Err    error         // what is wrong with the outcome, when Reason is ReasonNone
}

func (e *ApplyError) Error() string {
	if e.Reason != engine.ReasonNone {
		return fmt.Sprintf("settlement: apply tx %d: command rejected: %s", e.Tx, e.Reason)
	}
	return fmt.Sprintf("settlement: apply tx %d: %v", e.Tx, e.Err)
}

func (e *ApplyError) Unwrap() error { return e.Err }

// order is a resting order and what it holds reserved: cash for a buy,
// securities for a sell.
type order struct {
	account uint32
	symbol  uint32
	side    engine.Side
	// replacing counts in-flight Replaces of this order.
	replacing int32
	price     int64
	open      int64
	res       int64
}

// pending is a transaction this participant voted YES on.
type pending struct {
	kind    engine.CommandKind
	side    engine.Side
	typ     engine.OrderType
	account uint32
	symbol  uint32
	order   uint64
	price   int64
	qty     int64
	res     int64 // cash (buy) or securities (sell) reserved by this transaction
}

// Ledger is the settlement participant. It is not safe for concurrent use:
// the engine calls a participant from one goroutine at a time.
type Ledger struct {
	accounts   int
	symbols    int
	makerBps   int64
	takerBps   int64
	maxBps     int64
	feeAccount uint32
	maxOrders  int
	maxFlight  int

	cash    []int64 // per account
	cashRes []int64
	hold    []int64 // per account*symbols+symbol
	holdRes []int64

	genesisCash int64
	genesisHold []int64 // per symbol

	orders   map[uint64]order
	inflight map[engine.TxID]pending
	// restingSlots counts in-flight Limit NewOrders, which may each add a
	// resting order.
	restingSlots int
}

var _ engine.Participant = (*Ledger)(nil)

// New returns a ledger at genesis as cfg describes it.
func New(cfg Config) (*Ledger, error) {
	if cfg.Accounts <= 0 || cfg.Symbols <= 0 {
		return nil, fmt.Errorf("%w: need at least one account and one symbol, got %d and %d", ErrConfig, cfg.Accounts, cfg.Symbols)
	}
	if uint64(cfg.Accounts) > 1<<32 || uint64(cfg.Symbols) > 1<<32 || uint64(cfg.Accounts)*uint64(cfg.Symbols) > 1<<31 {
		return nil, fmt.Errorf("%w: %d accounts × %d symbols is too many", ErrConfig, cfg.Accounts, cfg.Symbols)
	}
	if cfg.Cash != nil && len(cfg.Cash) != cfg.Accounts {
		return nil, fmt.Errorf("%w: Cash has %d entries, want one per account (%d)", ErrConfig, len(cfg.Cash), cfg.Accounts)
	}
	n := cfg.Accounts * cfg.Symbols
	if cfg.Holdings != nil && len(cfg.Holdings) != n {
		return nil, fmt.Errorf("%w: Holdings has %d entries, want Accounts×Symbols (%d)", ErrConfig, len(cfg.Holdings), n)
	}
	for _, bps := range []int64{cfg.MakerFeeBps, cfg.TakerFeeBps} {
		if bps < 0 || bps > bpsDenom {
			return nil, fmt.Errorf("%w: fee %d bps outside [0,%d]", ErrConfig, bps, bpsDenom)
		}
	}
	if int(cfg.FeeAccount) >= cfg.Accounts {
		return nil, fmt.Errorf("%w: fee account %d is not one of the %d accounts", ErrConfig, cfg.FeeAccount, cfg.Accounts)
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
	l := &Ledger{
		accounts:    cfg.Accounts,
		symbols:     cfg.Symbols,
		makerBps:    cfg.MakerFeeBps,
		takerBps:    cfg.TakerFeeBps,
		maxBps:      max(cfg.MakerFeeBps, cfg.TakerFeeBps),
		feeAccount:  cfg.FeeAccount,
		maxOrders:   cfg.MaxOrders,
		maxFlight:   cfg.MaxInFlight,
		cash:        make([]int64, cfg.Accounts),
		cashRes:     make([]int64, cfg.Accounts),
		hold:        make([]int64, n),
		holdRes:     make([]int64, n),
		genesisHold: make([]int64, cfg.Symbols),
	}
	if cfg.Cash != nil {
		copy(l.cash, cfg.Cash)
	}
	if cfg.Holdings != nil {
		copy(l.hold, cfg.Holdings)
	}
	var ok bool
	for a, c := range l.cash {
		if c < 0 {
			return nil, fmt.Errorf("%w: account %d starts with negative cash %d", ErrConfig, a, c)
		}
		if l.genesisCash, ok = add(l.genesisCash, c); !ok {
			return nil, fmt.Errorf("%w: total cash overflows int64", ErrConfig)
		}
	}
	for i, h := range l.hold {
		s := i % l.symbols
		if h < 0 {
			return nil, fmt.Errorf("%w: account %d starts with negative holding %d of symbol %d", ErrConfig, i/l.symbols, h, s)
		}
		if l.genesisHold[s], ok = add(l.genesisHold[s], h); !ok {
			return nil, fmt.Errorf("%w: total holdings of symbol %d overflow int64", ErrConfig, s)
		}
	}
	l.orders = make(map[uint64]order, l.maxOrders)
	l.inflight = make(map[engine.TxID]pending, l.maxFlight)
	return l, nil
}

// Cash returns account a's cash and the part of it reserved. It panics if a
// is not an account.
func (l *Ledger) Cash(a uint32) (total, reserved int64) {
	return l.cash[a], l.cashRes[a]
}

// Holding returns account a's quantity of symbol s and the part of it
// reserved. It panics if a or s is out of range.
func (l *Ledger) Holding(a, s uint32) (total, reserved int64) {
	if int(s) >= l.symbols {
		panic(fmt.Sprintf("settlement: symbol %d out of range [0,%d)", s, l.symbols))
	}
	i := l.idx(a, s)
	return l.hold[i], l.holdRes[i]
}

// OpenOrders returns the number of resting orders the ledger holds
// reservations for.
func (l *Ledger) OpenOrders() int { return len(l.orders) }

// InFlight returns the number of prepared transactions not yet committed or
// aborted.
func (l *Ledger) InFlight() int { return len(l.inflight) }

func (l *Ledger) idx(a, s uint32) int { return int(a)*l.symbols + int(s) }

// reserve takes amt of account a's cash (buy) or of its holding of symbol s
// (sell) into reservation.
func (l *Ledger) reserve(side engine.Side, a, s uint32, amt int64) {
	if side == engine.Buy {
		l.cashRes[a] += amt
		return
	}
	l.holdRes[l.idx(a, s)] += amt
}

// release returns amt of a reservation to the account's free balance.
func (l *Ledger) release(side engine.Side, a, s uint32, amt int64) {
	if amt < 0 {
		panic(fmt.Sprintf("settlement: release of negative amount %d", amt))
	}
	if side == engine.Buy {
		l.cashRes[a] -= amt
		if l.cashRes[a] < 0 {
			panic(fmt.Sprintf("settlement: account %d cash reservation went negative", a))
		}
		return
	}
	i := l.idx(a, s)
	l.holdRes[i] -= amt
	if l.holdRes[i] < 0 {
		panic(fmt.Sprintf("settlement: account %d reservation of symbol %d went negative", a, s))
	}
}

// free returns what account a can still reserve on side: free cash for a
// buy, the free holding of symbol s for a sell.
func (l *Ledger) free(side engine.Side, a, s uint32) int64 {
	if side == engine.Buy {
		return l.cash[a] - l.cashRes[a]
	}
	i := l.idx(a, s)
	return l.hold[i] - l.holdRes[i]
}

// need is what a resting order of qty at price holds reserved: its cost
// with the maker fee for a buy, the quantity for a sell.
func (l *Ledger) need(side engine.Side, price, qty int64) (int64, bool) {
	if side == engine.Sell {
		return qty, true
	}
	return cost(price, qty, l.makerBps)
}

// insufficient is the NO reason for a side whose free balance is short.
func insufficient(side engine.Side) engine.Reason {
	if side == engine.Buy {
		return engine.ReasonInsufficientCash
	}
	return engine.ReasonInsufficientSecurities
}

// Prepare validates cmd and reserves the worst case it could cost. See the
// package documentation for what each command reserves.
func (l *Ledger) Prepare(tx engine.TxID, cmd *engine.Command, _ *engine.Outcome) engine.Reason {
	if len(l.inflight) >= l.maxFlight {
		return engine.ReasonBackpressure
	}
	if _, dup := l.inflight[tx]; dup {
		return engine.ReasonMalformed
	}
	if cmd.Kind == engine.NewOrder && cmd.Type == engine.Limit && len(l.orders)+l.restingSlots >= l.maxOrders {
		return engine.ReasonBackpressure
	}
	return l.prepare(tx, cmd)
}

func (l *Ledger) prepare(tx engine.TxID, cmd *engine.Command) engine.Reason {
	if int(cmd.Account) >= l.accounts {
		return engine.ReasonUnknownAccount
	}
	p := pending{kind: cmd.Kind, account: cmd.Account, order: cmd.OrderID, price: cmd.Price, qty: cmd.Qty}
	switch cmd.Kind {
	case engine.NewOrder:
		if int(cmd.Symbol) >= l.symbols {
			return engine.ReasonUnknownSymbol
		}
		if (cmd.Side != engine.Buy && cmd.Side != engine.Sell) || cmd.Type < engine.Limit || cmd.Type > engine.Market {
			return engine.ReasonMalformed
		}
		if cmd.Qty <= 0 {
			return engine.ReasonBadQuantity
		}
		if cmd.Price <= 0 {
			return engine.ReasonBadPrice
		}
		if _, dup := l.orders[cmd.OrderID]; dup {
			return engine.ReasonMalformed
		}
		p.side, p.typ, p.symbol = cmd.Side, cmd.Type, cmd.Symbol
		p.res = cmd.Qty
		if cmd.Side == engine.Buy {
			var ok bool
			if p.res, ok = cost(cmd.Price, cmd.Qty, l.maxBps); !ok {
				return engine.ReasonOverflow
			}
		}
		if l.free(p.side, p.account, p.symbol) < p.res {
			return insufficient(p.side)
		}
		if p.typ == engine.Limit {
			l.restingSlots++
		}
	case engine.Cancel, engine.Replace:
		o, ok := l.orders[cmd.OrderID]
		if !ok {
			return engine.ReasonUnknownOrder
		}
		if o.account != cmd.Account {
			return engine.ReasonNotOwner
		}
		p.side, p.symbol = o.side, o.symbol
		if cmd.Kind == engine.Cancel {
			break
		}
		if cmd.Qty <= 0 {
			return engine.ReasonBadQuantity
		}
		if cmd.Price <= 0 {
			return engine.ReasonBadPrice
		}
		want := cmd.Qty
		if o.side == engine.Buy {
			if want, ok = cost(cmd.Price, cmd.Qty, l.maxBps); !ok {
				return engine.ReasonOverflow
			}
		}
		// The order's own reservation counts towards the new size, unless
		// another in-flight Replace may re-size it first.
		if o.replacing == 0 {
			want = max(0, want-o.res)
		}
		if l.free(p.side, p.account, p.symbol) < want {
			return insufficient(p.side)
		}
		p.res = want
		o.replacing++
		l.orders[cmd.OrderID] = o
	default:
		return engine.ReasonMalformed
	}
	l.reserve(p.side, p.account, p.symbol, p.res)
	l.inflight[tx] = p
	return engine.ReasonNone
}

// PreCommit pins tx's reservations. Reservations are only ever released by
// Commit or Abort, so there is nothing more to do.
func (l *Ledger) PreCommit(engine.TxID, *engine.Outcome) {}

// Abort releases what Prepare reserved for tx. It does nothing for a
// transaction that is not in flight.
func (l *Ledger) Abort(tx engine.TxID) {
	p, ok := l.inflight[tx]
	if !ok {
		return
	}
	delete(l.inflight, tx)
	l.release(p.side, p.account, p.symbol, p.res)
	l.unpend(&p)
}

// unpend drops the bookkeeping of an in-flight transaction that is leaving.
func (l *Ledger) unpend(p *pending) {
	switch {
	case p.kind == engine.NewOrder && p.typ == engine.Limit:
		l.restingSlots--
	case p.kind == engine.Replace:
		if o, ok := l.orders[p.order]; ok {
			o.replacing--
			if o.replacing == 0 && o.open == 0 {
				delete(l.orders, p.order)
				break
			}
			l.orders[p.order] = o
		}
	}
}

// Commit settles tx from matching's outcome. It panics if tx was not
// prepared here with a YES vote, or if out breaks the contract in the
// package documentation: either would corrupt the ledger.
func (l *Ledger) Commit(tx engine.TxID, out *engine.Outcome) {
	p, ok := l.inflight[tx]
	if !ok {
		panic(fmt.Sprintf("settlement: commit of tx %d, which is not in flight", tx))
	}
	if err := l.check(&p, out); err != nil {
		panic(fmt.Sprintf("settlement: commit of tx %d: %v", tx, err))
	}
	delete(l.inflight, tx)
	l.unpend(&p)
	l.settle(&p, out)
}

// Apply replays a committed transaction: Prepare and Commit in one step,
// without the table-size limits. It changes nothing and returns an
// *ApplyError if the command or outcome disagrees with the ledger.
func (l *Ledger) Apply(tx engine.TxID, cmd *engine.Command, out *engine.Outcome) error {
	if _, dup := l.inflight[tx]; dup {
		return &ApplyError{Tx: tx, Err: errors.New("transaction is in flight")}
	}
	if cmd.Kind == engine.Cancel || cmd.Kind == engine.Replace {
		// Live, the order rested when the command was prepared; fills of it
		// may have committed first and ended it. Replayed in commit order,
		// such a command finds no order and, having changed nothing, has
		// nothing to replay.
		o, ok := l.orders[cmd.OrderID]
		if (!ok || o.open == 0) && out.NFills == 0 && out.NRemoved == 0 && out.Resting == 0 && out.Canceled == 0 {
			return nil
		}
	}
	if r := l.prepare(tx, cmd); r != engine.ReasonNone {
		return &ApplyError{Tx: tx, Reason: r}
	}
	p := l.inflight[tx]
	if err := l.check(&p, out); err != nil {
		l.Abort(tx)
		return &ApplyError{Tx: tx, Err: err}
	}
	delete(l.inflight, tx)
	l.unpend(&p)
	l.settle(&p, out)
	return nil
}

// use tracks what an outcome takes from one order while it is checked.
type use struct {
	id  uint64
	qty int64 // open quantity taken
	res int64 // reservation consumed
}

// uses is a fixed-size set of per-order uses, so that check never allocates.
type uses struct {
	n int
	u [engine.MaxFills + engine.MaxRemoved + 1]use
}

func (us *uses) get(id uint64) *use {
	for i := range us.n {
		if us.u[i].id == id {
			return &us.u[i]
		}
	}
	us.u[us.n] = use{id: id}
	us.n++
	return &us.u[us.n-1]
}

// check verifies that out is a consistent outcome of p that the ledger can
// settle, without changing anything.
func (l *Ledger) check(p *pending, out *engine.Outcome) error {
	if out.NFills < 0 || out.NFills > engine.MaxFills || out.NRemoved < 0 || out.NRemoved > engine.MaxRemoved {
		return fmt.Errorf("outcome has %d fills and %d removals", out.NFills, out.NRemoved)
	}
	if out.Resting < 0 || out.Canceled < 0 {
		return fmt.Errorf("negative resting (%d) or canceled (%d) quantity", out.Resting, out.Canceled)
	}
	var us uses
	var filled, taken int64 // taker quantity filled; taker reservation consumed
	for i := range out.NFills {
		f := &out.Fills[i]
		if f.Qty <= 0 || f.Price <= 0 {
			return fmt.Errorf("fill %d has quantity %d at price %d", i, f.Qty, f.Price)
		}
		if f.TakerOrder != p.order || f.Taker != p.account || f.TakerSide != p.side || f.Symbol != p.symbol {
			return fmt.Errorf("fill %d is not of order %d (account %d, %s, symbol %d)", i, p.order, p.account, p.side, p.symbol)
		}
		if p.side == engine.Buy && f.Price > p.price {
			return fmt.Errorf("fill %d buys at %d above the limit %d", i, f.Price, p.price)
		}
		o, ok := l.orders[f.MakerOrder]
		if !ok || f.MakerOrder == p.order {
			return fmt.Errorf("fill %d: maker order %d is not resting", i, f.MakerOrder)
		}
		if o.account != f.Maker || o.side == p.side || o.symbol != f.Symbol {
			return fmt.Errorf("fill %d: maker order %d is account %d's %s of symbol %d", i, f.MakerOrder, o.account, o.side, o.symbol)
		}
		if o.side == engine.Buy && f.Price > o.price {
			return fmt.Errorf("fill %d buys at %d above maker order %d's price %d", i, f.Price, f.MakerOrder, o.price)
		}
		n, ok := mul(f.Price, f.Qty)
		if !ok {
			return fmt.Errorf("fill %d: notional overflows", i)
		}
		u := us.get(f.MakerOrder)
		u.qty += f.Qty
		if p.side == engine.Buy {
			taken += n + fee(n, l.takerBps)
			u.res += f.Qty
		} else {
			taken += f.Qty
			u.res += n + fee(n, l.makerBps)
		}
		filled += f.Qty
		if u.qty > o.open || u.res > o.res || taken < 0 || filled < 0 {
			return fmt.Errorf("fill %d takes more than maker order %d or the command holds", i, f.MakerOrder)
		}
	}
	for i := range out.NRemoved {
		r := &out.Removed[i]
		o, ok := l.orders[r.OrderID]
		if !ok || o.account != r.Account || o.side != r.Side || r.Qty <= 0 {
			return fmt.Errorf("removal %d: order %d is not account %d's resting %s", i, r.OrderID, r.Account, r.Side)
		}
		u := us.get(r.OrderID)
		if u.qty += r.Qty; u.qty > o.open {
			return fmt.Errorf("removal %d takes %d from order %d, more than its open quantity", i, r.Qty, r.OrderID)
		}
	}
	budget := p.res
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
		if o, ok := l.orders[p.order]; ok {
			if u := us.get(p.order); u.qty+out.Canceled > o.open {
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
		o, ok := l.orders[p.order]
		if !ok || o.open == 0 {
			if out.Resting > 0 || out.NFills > 0 {
				return fmt.Errorf("replace of order %d, which no longer rests, fills or rests", p.order)
			}
			break
		}
		budget += o.res - us.get(p.order).res
	}
	keep, ok := l.need(p.side, out.RestingPrice, out.Resting)
	if !ok {
		return errors.New("resting remainder's reservation overflows")
	}
	if spent := taken + keep; spent > budget && (spent < 0 || spent-budget > l.free(p.side, p.account, p.symbol)) {
		return fmt.Errorf("outcome needs %d, more than the %d reserved and the account's free balance", spent, budget)
	}
	return nil
}

// settle posts a checked outcome.
func (l *Ledger) settle(p *pending, out *engine.Outcome) {
	if p.kind == engine.Replace {
		// The replaced order's reservation joins the command's: its taker
		// fills and its new size are paid from both.
		if o, ok := l.orders[p.order]; ok {
			p.res += o.res
			o.res = 0
			l.orders[p.order] = o
		}
	}
	for i := range out.NFills {
		l.fill(p, &out.Fills[i])
	}
	for i := range out.NRemoved {
		r := &out.Removed[i]
		l.takeOpen(r.OrderID, r.Qty)
	}
	switch p.kind {
	case engine.NewOrder:
		if out.Resting > 0 {
			l.orders[p.order] = order{account: p.account, symbol: p.symbol, side: p.side, price: out.RestingPrice, open: out.Resting, res: l.keep(p, out)}
		}
	case engine.Cancel:
		if out.Canceled > 0 {
			l.takeOpen(p.order, out.Canceled)
		}
	case engine.Replace:
		o, ok := l.orders[p.order]
		if !ok {
			break
		}
		if out.Resting == 0 {
			delete(l.orders, p.order)
			break
		}
		o.price, o.open, o.res = out.RestingPrice, out.Resting, l.keep(p, out)
		l.orders[p.order] = o
	}
	l.release(p.side, p.account, p.symbol, p.res)
	p.res = 0
}

// keep moves what the resting remainder needs out of p's reservation, taking
// any shortfall from the account's free balance, and returns it.
func (l *Ledger) keep(p *pending, out *engine.Outcome) int64 {
	k, _ := l.need(p.side, out.RestingPrice, out.Resting)
	if short := k - p.res; short > 0 {
		l.reserve(p.side, p.account, p.symbol, short)
		p.res += short
	}
	p.res -= k
	return k
}

// fill posts one trade: the buyer's cash to the seller, the seller's
// securities to the buyer, the fees to the fee account. The taker pays from
// p's reservation, the maker from its resting order's.
func (l *Ledger) fill(p *pending, f *engine.Fill) {
	o := l.orders[f.MakerOrder]
	n, _ := mul(f.Price, f.Qty)
	buyer, seller := f.Taker, f.Maker
	buyFee, sellFee := fee(n, l.takerBps), fee(n, l.makerBps)
	if f.TakerSide == engine.Sell {
		buyer, seller = seller, buyer
		buyFee, sellFee = sellFee, buyFee
	}
	paid := n + buyFee
	if f.TakerSide == engine.Buy {
		p.res -= paid
		o.res -= f.Qty
	} else {
		p.res -= f.Qty
		o.res -= paid
	}
	if p.res < 0 || o.res < 0 {
		panic(fmt.Sprintf("settlement: fill of trade %d overdraws a reservation", f.TradeID))
	}
	bi, si := l.idx(buyer, f.Symbol), l.idx(seller, f.Symbol)
	l.cash[buyer] -= paid
	l.cashRes[buyer] -= paid
	l.holdRes[si] -= f.Qty
	l.hold[si] -= f.Qty
	l.hold[bi] += f.Qty
	l.cash[seller] += n - sellFee
	l.cash[l.feeAccount] += buyFee + sellFee
	o.open -= f.Qty
	l.orders[f.MakerOrder] = o
	if o.open == 0 {
		l.closeOrder(f.MakerOrder, o)
	}
}

// takeOpen takes qty off a resting order's open quantity without a trade and
// releases what the rest of the order no longer needs.
func (l *Ledger) takeOpen(id uint64, qty int64) {
	o := l.orders[id]
	o.open -= qty
	if o.open == 0 {
		l.closeOrder(id, o)
		return
	}
	k, _ := l.need(o.side, o.price, o.open)
	if o.res > k {
		l.release(o.side, o.account, o.symbol, o.res-k)
		o.res = k
	}
	l.orders[id] = o
}

// closeOrder forgets an order with nothing left open and releases what it
// still holds (fee rounding leaves a buy a few units).
func (l *Ledger) closeOrder(id uint64, o order) {
	l.release(o.side, o.account, o.symbol, o.res)
	if o.replacing > 0 {
		// An in-flight Replace still names it: keep the entry, empty, so the
		// Replace can settle against it.
		o.res = 0
		l.orders[id] = o
		return
	}
	delete(l.orders, id)
}
