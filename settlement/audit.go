package settlement

import (
	"errors"
	"fmt"
	"math/bits"
	"strings"

	"github.com/commitcore/commitcore/engine"
)

// Check is one audit check and its verdict.
type Check struct {
	Name string
	OK   bool
	// Detail says what failed first, or what was verified when OK.
	Detail string
}

// AuditResult lists every check Audit ran.
type AuditResult struct {
	Checks []Check
}

// ErrAudit is wrapped by the error AuditResult.Err returns.
var ErrAudit = errors.New("settlement: audit failed")

// OK reports whether every check passed.
func (r AuditResult) OK() bool {
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}

// Err returns nil if every check passed, or an error wrapping ErrAudit that
// names each failed check.
func (r AuditResult) Err() error {
	var b strings.Builder
	for _, c := range r.Checks {
		if !c.OK {
			fmt.Fprintf(&b, "; %s: %s", c.Name, c.Detail)
		}
	}
	if b.Len() == 0 {
		return nil
	}
	return fmt.Errorf("%w%s", ErrAudit, b.String())
}

// Names of the audit checks, in the order Audit runs them.
const (
	CheckCashConserved        = "cash_conserved"
	CheckSecuritiesConserved  = "securities_conserved"
	CheckNoNegativeBalance    = "no_negative_balance"
	CheckReservationsCovered  = "reservations_within_balances"
	CheckCashReservations     = "cash_reservations_match"
	CheckSecurityReservations = "security_reservations_match"
	CheckOrdersCovered        = "orders_covered"
	CheckInFlightCounts       = "in_flight_counts"
)

// int128 is a signed 128-bit sum, so that audit totals cannot overflow
// whatever the balances hold.
type int128 struct{ hi, lo uint64 }

func (s *int128) add(v int64) {
	var c uint64
	s.lo, c = bits.Add64(s.lo, uint64(v), 0)
	s.hi += c
	if v < 0 {
		s.hi--
	}
}

func (s int128) equals(v int64) bool {
	var t int128
	t.add(v)
	return s == t
}

// Audit proves conservation and the consistency of reservations:
//   - total cash, and the total of each security, equal those at genesis;
//   - no balance or reservation is negative, and no reservation exceeds its
//     balance;
//   - each account's cash and security reservations equal exactly what its
//     resting orders and its in-flight transactions hold;
//   - each resting order holds at least what its open quantity needs;
//   - the in-flight bookkeeping matches the in-flight transactions.
//
// It allocates and walks every account and order: call it at checkpoints,
// not on the hot path.
func (l *Ledger) Audit() AuditResult {
	var r AuditResult
	check := func(name string, fail string, okDetail string) {
		c := Check{Name: name, OK: fail == "", Detail: fail}
		if c.OK {
			c.Detail = okDetail
		}
		r.Checks = append(r.Checks, c)
	}

	var total int128
	for _, c := range l.cash {
		total.add(c)
	}
	fail := ""
	if !total.equals(l.genesisCash) {
		fail = fmt.Sprintf("total cash differs from genesis %d", l.genesisCash)
	}
	check(CheckCashConserved, fail, fmt.Sprintf("total %d", l.genesisCash))

	fail = ""
	for s := range l.symbols {
		var t int128
		for a := range l.accounts {
			t.add(l.hold[a*l.symbols+s])
		}
		if !t.equals(l.genesisHold[s]) {
			fail = fmt.Sprintf("total of symbol %d differs from genesis %d", s, l.genesisHold[s])
			break
		}
	}
	check(CheckSecuritiesConserved, fail, fmt.Sprintf("%d symbols", l.symbols))

	fail = ""
	for a := range l.accounts {
		if l.cash[a] < 0 || l.cashRes[a] < 0 {
			fail = fmt.Sprintf("account %d has cash %d, reserved %d", a, l.cash[a], l.cashRes[a])
			break
		}
	}
	for i := range l.hold {
		if fail == "" && (l.hold[i] < 0 || l.holdRes[i] < 0) {
			fail = fmt.Sprintf("account %d has %d of symbol %d, reserved %d", i/l.symbols, l.hold[i], i%l.symbols, l.holdRes[i])
		}
	}
	check(CheckNoNegativeBalance, fail, fmt.Sprintf("%d accounts", l.accounts))

	fail = ""
	for a := range l.accounts {
		if l.cashRes[a] > l.cash[a] {
			fail = fmt.Sprintf("account %d reserves %d cash of %d", a, l.cashRes[a], l.cash[a])
			break
		}
	}
	for i := range l.hold {
		if fail == "" && l.holdRes[i] > l.hold[i] {
			fail = fmt.Sprintf("account %d reserves %d of symbol %d, holding %d", i/l.symbols, l.holdRes[i], i%l.symbols, l.hold[i])
		}
	}
	check(CheckReservationsCovered, fail, "")

	// Recompute every reservation from the orders and in-flight transactions.
	cashRes := make([]int128, l.accounts)
	holdRes := make([]int128, len(l.hold))
	at := func(side engine.Side, a, s uint32, amt int64) string {
		if int(a) >= l.accounts || int(s) >= l.symbols {
			return fmt.Sprintf("account %d or symbol %d out of range", a, s)
		}
		switch side {
		case engine.Buy:
			cashRes[a].add(amt)
		case engine.Sell:
			holdRes[l.idx(a, s)].add(amt)
		default:
			return fmt.Sprintf("invalid side %d", side)
		}
		return ""
	}
	orderFail, replacing := "", make(map[uint64]int32)
	for id, o := range l.orders {
		if f := at(o.side, o.account, o.symbol, o.res); f != "" && orderFail == "" {
			orderFail = fmt.Sprintf("order %d: %s", id, f)
			continue
		}
		k, ok := l.need(o.side, o.price, o.open)
		if orderFail == "" && (!ok || o.res < k || o.open < 0 || (o.open == 0 && o.replacing == 0)) {
			orderFail = fmt.Sprintf("order %d holds %d for %d open at %d", id, o.res, o.open, o.price)
		}
	}
	flightFail, slots := "", 0
	for tx, p := range l.inflight {
		if f := at(p.side, p.account, p.symbol, p.res); f != "" && flightFail == "" {
			flightFail = fmt.Sprintf("tx %d: %s", tx, f)
		}
		if p.res < 0 && flightFail == "" {
			flightFail = fmt.Sprintf("tx %d holds %d", tx, p.res)
		}
		switch {
		case p.kind == engine.NewOrder && p.typ == engine.Limit:
			slots++
		case p.kind == engine.Replace:
			replacing[p.order]++
		}
	}
	fail = ""
	for a := range l.accounts {
		if !cashRes[a].equals(l.cashRes[a]) {
			fail = fmt.Sprintf("account %d reserves %d cash, its orders and transactions hold otherwise", a, l.cashRes[a])
			break
		}
	}
	check(CheckCashReservations, fail, "")
	fail = ""
	for i := range l.hold {
		if !holdRes[i].equals(l.holdRes[i]) {
			fail = fmt.Sprintf("account %d reserves %d of symbol %d, its orders and transactions hold otherwise", i/l.symbols, l.holdRes[i], i%l.symbols)
			break
		}
	}
	check(CheckSecurityReservations, fail, "")
	check(CheckOrdersCovered, orderFail, fmt.Sprintf("%d orders", len(l.orders)))

	if flightFail == "" && slots != l.restingSlots {
		flightFail = fmt.Sprintf("%d in-flight limit orders counted, %d in flight", l.restingSlots, slots)
	}
	for id, o := range l.orders {
		if flightFail == "" && o.replacing != replacing[id] {
			flightFail = fmt.Sprintf("order %d counts %d in-flight replaces, %d in flight", id, o.replacing, replacing[id])
		}
	}
	check(CheckInFlightCounts, flightFail, fmt.Sprintf("%d in flight", len(l.inflight)))
	return r
}
