package venue

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/commitcore/commitcore/engine"
	"github.com/commitcore/commitcore/matching"
	"github.com/commitcore/commitcore/risk"
	"github.com/commitcore/commitcore/settlement"
)

// Check is one named audit verdict. Names are "<role>/<check>" for one
// participant's checks and "cross/<check>" for checks between them.
type Check struct {
	Name string
	OK   bool
	// Detail says what failed first, or what was verified.
	Detail string
}

// Failed returns the checks of cs that did not pass.
func Failed(cs []Check) []Check {
	var bad []Check
	for _, c := range cs {
		if !c.OK {
			bad = append(bad, c)
		}
	}
	return bad
}

// Err returns nil if every check of cs passed, or an error naming each
// failed check and what failed.
func Err(cs []Check) error {
	var errs []error
	for _, c := range Failed(cs) {
		errs = append(errs, fmt.Errorf("%s: %s", c.Name, c.Detail))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("venue: audit failed: %w", errors.Join(errs...))
}

// Audit checks one participant's final state, taken with nothing in
// flight:
//   - matching: no transaction in flight (so no quantity held), the
//     committed books decode and no book is crossed;
//   - risk: no transaction in flight, and risk.Manager.Audit (positions
//     net to zero; open quantity and credit equal what resting orders
//     hold);
//   - settlement: no transaction in flight, and settlement.Ledger.Audit
//     (cash and every security conserved since genesis, no negative
//     balance, reservations equal what resting orders hold).
//
// It accepts a *Recorder too. It allocates and walks the whole state:
// call it at the end of a run or at checkpoints.
func Audit(p engine.Participant) []Check {
	switch x := unwrap(p).(type) {
	case *matching.Matcher:
		return auditMatching(x)
	case *risk.Manager:
		cs := []Check{inFlight(Risk, x.InFlight())}
		for _, c := range x.Audit().Checks {
			cs = append(cs, Check{Name: Risk.String() + "/" + c.Name, OK: c.OK, Detail: c.Detail})
		}
		return cs
	case *settlement.Ledger:
		cs := []Check{inFlight(Settlement, x.InFlight())}
		for _, c := range x.Audit().Checks {
			cs = append(cs, Check{Name: Settlement.String() + "/" + c.Name, OK: c.OK, Detail: c.Detail})
		}
		return cs
	default:
		return []Check{{Name: "audit", Detail: fmt.Sprintf("no audit for a participant of type %T", p)}}
	}
}

func inFlight(r Role, n int) Check {
	c := Check{Name: r.String() + "/no_transactions_in_flight", OK: n == 0, Detail: "nothing held for a transaction in flight"}
	if n != 0 {
		c.Detail = fmt.Sprintf("%d transactions still prepared", n)
	}
	return c
}

func auditMatching(m *matching.Matcher) []Check {
	cs := []Check{inFlight(Matching, m.InFlight())}
	books, err := decodeBooks(m)
	dec := Check{Name: "matching/books_decode", OK: err == nil}
	if err != nil {
		dec.Detail = err.Error()
		return append(cs, dec)
	}
	orders := 0
	for _, b := range books {
		orders += len(b.bids) + len(b.asks)
	}
	dec.Detail = fmt.Sprintf("%d books, %d resting orders", len(books), orders)
	cs = append(cs, dec)
	cross := Check{Name: "matching/books_uncrossed", OK: true, Detail: fmt.Sprintf("%d books", len(books))}
	for _, b := range books {
		if len(b.bids) > 0 && len(b.asks) > 0 && b.bids[0].price >= b.asks[0].price {
			cross = Check{Name: cross.Name, Detail: fmt.Sprintf("symbol %d: best bid %d at or above best ask %d", b.id, b.bids[0].price, b.asks[0].price)}
			break
		}
	}
	return append(cs, cross)
}

// bookOrder is one resting order read from a matching snapshot.
type bookOrder struct {
	id      uint64
	account uint32
	side    engine.Side
	price   int64
	open    int64
}

// bookState is one symbol's committed book read from a matching snapshot,
// each side in priority order.
type bookState struct {
	id         uint32
	bids, asks []bookOrder
}

// matchingMagic is the first bytes of a matching snapshot (format 1, as
// matching.Matcher.Snapshot documents it).
const matchingMagic = "CCMATCH\x01"

// decodeBooks reads m's committed books from its snapshot, whose layout
// matching.Matcher.Snapshot documents.
func decodeBooks(m *matching.Matcher) ([]bookState, error) {
	var buf bytes.Buffer
	if err := m.Snapshot(&buf); err != nil {
		return nil, fmt.Errorf("matching snapshot: %w", err)
	}
	d := buf.Bytes()
	short := errors.New("matching snapshot: truncated")
	if !bytes.HasPrefix(d, []byte(matchingMagic)) {
		return nil, fmt.Errorf("matching snapshot: magic %q, want %q", d[:min(len(d), len(matchingMagic))], matchingMagic)
	}
	d = d[len(matchingMagic):]
	u32 := func() (uint32, bool) {
		if len(d) < 4 {
			return 0, false
		}
		v := binary.LittleEndian.Uint32(d)
		d = d[4:]
		return v, true
	}
	u64 := func() (uint64, bool) {
		if len(d) < 8 {
			return 0, false
		}
		v := binary.LittleEndian.Uint64(d)
		d = d[8:]
		return v, true
	}
	n, ok := u32()
	if !ok {
		return nil, short
	}
	books := make([]bookState, 0, n)
	for range n {
		var b bookState
		if b.id, ok = u32(); !ok {
			return nil, short
		}
		for range 3 { // tick, min and max price
			if _, ok = u64(); !ok {
				return nil, short
			}
		}
		for _, side := range [2]engine.Side{engine.Buy, engine.Sell} {
			k, ok := u32()
			if !ok || uint64(k)*28 > uint64(len(d)) {
				return nil, short
			}
			orders := make([]bookOrder, k)
			for i := range orders {
				id, _ := u64()
				acct, _ := u32()
				price, _ := u64()
				open, _ := u64()
				orders[i] = bookOrder{id: id, account: acct, side: side, price: int64(price), open: int64(open)}
			}
			if side == engine.Buy {
				b.bids = orders
			} else {
				b.asks = orders
			}
		}
		books = append(books, b)
	}
	if len(d) != 0 {
		return nil, fmt.Errorf("matching snapshot: %d bytes after the last book", len(d))
	}
	return books, nil
}

// CrossAudit checks that the three participants of one venue agree, with
// nothing in flight: ps must hold one participant of each role, in any
// order (Recorders are unwrapped), built from c.
//   - the resting orders: matching's books hold as many as risk and
//     settlement track;
//   - open quantity: each account's open buy and sell quantity per symbol
//     at risk equals what its orders rest on matching's books;
//   - credit: each account's buy notional at risk equals price × open of
//     its resting buys;
//   - reservations: settlement reserves exactly the resting sells'
//     quantity, and at least the resting buys' cost with the maker fee;
//   - positions: each account's position at risk equals its holding at
//     settlement less its holding at genesis.
func CrossAudit(c Config, ps ...engine.Participant) []Check {
	var (
		m *matching.Matcher
		r *risk.Manager
		s *settlement.Ledger
	)
	for _, p := range ps {
		switch x := unwrap(p).(type) {
		case *matching.Matcher:
			m = x
		case *risk.Manager:
			r = x
		case *settlement.Ledger:
			s = x
		}
	}
	if m == nil || r == nil || s == nil {
		return []Check{{Name: "cross/participants", Detail: "want one matching, one risk and one settlement participant"}}
	}
	books, err := decodeBooks(m)
	if err != nil {
		return []Check{{Name: "cross/books", Detail: err.Error()}}
	}
	accounts, symbols := c.Accounts+1, c.Symbols
	buy := make([]int64, accounts*symbols)
	sell := make([]int64, accounts*symbols)
	credit := make([]int64, accounts)
	cost := make([]int64, accounts)
	orders, fail := 0, ""
	for _, b := range books {
		for _, side := range [][]bookOrder{b.bids, b.asks} {
			for _, o := range side {
				orders++
				if int(o.account) >= accounts || int(b.id) >= symbols {
					fail = fmt.Sprintf("order %d: account %d or symbol %d outside the config", o.id, o.account, b.id)
					continue
				}
				i := int(o.account)*symbols + int(b.id)
				if o.side == engine.Sell {
					sell[i] += o.open
					continue
				}
				buy[i] += o.open
				n := o.price * o.open
				credit[o.account] += n
				cost[o.account] += n + n*c.MakerFeeBps/10_000
			}
		}
	}
	var cs []Check
	add := func(name, fail, ok string) {
		c := Check{Name: "cross/" + name, OK: fail == "", Detail: fail}
		if c.OK {
			c.Detail = ok
		}
		cs = append(cs, c)
	}
	if fail == "" && (orders != r.OpenOrders() || orders != s.OpenOrders()) {
		fail = fmt.Sprintf("matching rests %d orders, risk tracks %d, settlement %d", orders, r.OpenOrders(), s.OpenOrders())
	}
	add("resting_orders", fail, fmt.Sprintf("%d orders", orders))

	open, res, pos := "", "", ""
	for a := range accounts {
		for sym := range symbols {
			i := a*symbols + sym
			rb, rs := r.Open(uint32(a), uint32(sym))
			if open == "" && (rb != buy[i] || rs != sell[i]) {
				open = fmt.Sprintf("account %d symbol %d: risk has %d/%d open, matching's books %d/%d", a, sym, rb, rs, buy[i], sell[i])
			}
			h, hr := s.Holding(uint32(a), uint32(sym))
			if res == "" && hr != sell[i] {
				res = fmt.Sprintf("account %d symbol %d: settlement reserves %d lots, resting sells hold %d", a, sym, hr, sell[i])
			}
			genesis := c.Holding
			if a == c.Accounts {
				genesis = 0
			}
			if p := r.Position(uint32(a), uint32(sym)); pos == "" && p != h-genesis {
				pos = fmt.Sprintf("account %d symbol %d: risk position %d, settlement holds %d (genesis %d)", a, sym, p, h, genesis)
			}
		}
		if _, cr := s.Cash(uint32(a)); res == "" && cr < cost[a] {
			res = fmt.Sprintf("account %d: settlement reserves %d cash, resting buys cost %d", a, cr, cost[a])
		}
	}
	add("open_quantity", open, fmt.Sprintf("%d accounts × %d symbols", accounts, symbols))
	fail = ""
	for a := range accounts {
		if got := r.Credit(uint32(a)); got != credit[a] {
			fail = fmt.Sprintf("account %d: risk has %d buy notional open, resting buys %d", a, got, credit[a])
			break
		}
	}
	add("credit", fail, "")
	add("reservations", res, "")
	add("positions", pos, "")
	return cs
}

// Digest returns the SHA-256 of p's Snapshot (a *Recorder is unwrapped):
// participants of the same kind with equal digests have equal committed
// state, byte for byte.
func Digest(p engine.Participant) ([32]byte, error) {
	h := sha256.New()
	if err := unwrap(p).Snapshot(h); err != nil {
		return [32]byte{}, fmt.Errorf("venue: digest: %w", err)
	}
	var d [32]byte
	h.Sum(d[:0])
	return d, nil
}
