package risk

import (
	"errors"
	"fmt"
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
var ErrAudit = errors.New("risk: audit failed")

// OK reports whether every check passed.
func (r AuditResult) OK() bool { return r.Err() == nil }

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
	CheckPositionsNet    = "positions_net_to_zero"
	CheckOrders          = "orders_valid"
	CheckOpenQuantity    = "open_quantity_matches"
	CheckCredit          = "credit_matches"
	CheckInFlightCounts  = "in_flight_counts"
	CheckReferencePrices = "reference_prices_valid"
)

// Audit checks the manager's consistency:
//   - every symbol's positions net to zero (each trade has a buyer and a
//     seller);
//   - every resting order is in range with a positive price and its
//     notional equal to price × open;
//   - each account's open buy and sell quantity per symbol, and its buy
//     notional, equal exactly what its resting orders and in-flight
//     transactions hold;
//   - the in-flight token, slot and replace counts match the in-flight
//     transactions.
//
// It allocates and walks every account and order: call it at checkpoints,
// not on the hot path.
func (m *Manager) Audit() AuditResult {
	var r AuditResult
	check := func(name, fail, okDetail string) {
		c := Check{Name: name, OK: fail == "", Detail: fail}
		if c.OK {
			c.Detail = okDetail
		}
		r.Checks = append(r.Checks, c)
	}

	fail := ""
	for s := range m.symbols {
		var net int64
		for a := range m.accounts {
			v, ok := add(net, m.pos[a*m.symbols+s])
			if !ok {
				fail = fmt.Sprintf("positions in symbol %d overflow", s)
				break
			}
			net = v
		}
		if fail == "" && net != 0 {
			fail = fmt.Sprintf("positions in symbol %d net to %d", s, net)
		}
		if fail != "" {
			break
		}
	}
	check(CheckPositionsNet, fail, fmt.Sprintf("%d symbols", m.symbols))

	buy := make([]int64, len(m.pos))
	sell := make([]int64, len(m.pos))
	credit := make([]int64, m.accounts)
	bad := false
	put := func(side engine.Side, a, s uint32, qty, notional int64) bool {
		if int(a) >= m.accounts || int(s) >= m.symbols || qty < 0 || notional < 0 {
			return false
		}
		i := int(a)*m.symbols + int(s)
		var ok1, ok2 bool
		switch side {
		case engine.Buy:
			buy[i], ok1 = add(buy[i], qty)
			credit[a], ok2 = add(credit[a], notional)
		case engine.Sell:
			sell[i], ok1 = add(sell[i], qty)
			ok2 = notional == 0
		}
		return ok1 && ok2
	}
	fail = ""
	replacing := make(map[uint64]int32)
	for id, o := range m.orders {
		n, ok := mul(o.price, o.open)
		notional := int64(0)
		if o.side == engine.Buy {
			notional = n
		}
		placed := put(o.side, o.account, o.symbol, o.open, o.notional)
		if !ok || !placed || o.price <= 0 || o.notional != notional || (o.open == 0 && o.replacing == 0) {
			if fail == "" {
				fail = fmt.Sprintf("order %d: %d open at %d, notional %d", id, o.open, o.price, o.notional)
			}
			bad = bad || !placed
		}
	}
	check(CheckOrders, fail, fmt.Sprintf("%d orders", len(m.orders)))

	tokens := make([]int64, m.accounts)
	slots, flightTokens, flightFail := 0, 0, ""
	for tx, p := range m.inflight {
		if int(p.account) >= m.accounts {
			flightFail = fmt.Sprintf("tx %d: account %d out of range", tx, p.account)
			continue
		}
		if p.kind != engine.Cancel && !put(p.side, p.account, p.symbol, p.qty, p.notional) {
			bad = true
		}
		if p.token {
			tokens[p.account]++
			flightTokens++
			if t := m.tokq.at(p.seq); p.seq < m.tokq.head || p.seq >= m.tokq.head+uint64(m.tokq.n) || t.account != p.account || t.state != tokPending {
				flightFail = fmt.Sprintf("tx %d: its token is not in the queue as in flight", tx)
			}
		}
		switch {
		case p.kind == engine.Replace:
			replacing[p.order]++
		case p.kind == engine.NewOrder && p.typ == engine.Limit:
			slots++
		}
	}
	fail = ""
	for i := range m.pos {
		if buy[i] != m.openBuy[i] || sell[i] != m.openSel[i] {
			fail = fmt.Sprintf("account %d symbol %d has %d/%d open, its orders and transactions %d/%d",
				i/m.symbols, i%m.symbols, m.openBuy[i], m.openSel[i], buy[i], sell[i])
			break
		}
	}
	if fail == "" && bad {
		fail = "an order or transaction holds an invalid exposure"
	}
	check(CheckOpenQuantity, fail, "")
	fail = ""
	for a := range m.accounts {
		if credit[a] != m.credit[a] {
			fail = fmt.Sprintf("account %d has %d buy notional open, its orders and transactions %d", a, m.credit[a], credit[a])
			break
		}
	}
	check(CheckCredit, fail, "")

	pendingTokens := 0
	for seq := m.tokq.head; seq < m.tokq.head+uint64(m.tokq.n); seq++ {
		t := m.tokq.at(seq)
		switch {
		case int(t.account) >= m.accounts:
			flightFail = fmt.Sprintf("token queue entry %d: account %d out of range", seq, t.account)
		case t.state == tokPending:
			pendingTokens++
		case t.state == tokCommitted:
			tokens[t.account]++ // spent once every earlier transaction is resolved
		}
	}
	if flightFail == "" && m.tokq.n > 0 && m.tokq.at(m.tokq.head).state != tokPending {
		flightFail = "the token queue's first transaction is resolved but not retired"
	}
	if flightFail == "" && pendingTokens != flightTokens {
		flightFail = fmt.Sprintf("the token queue holds %d transactions in flight, %d are", pendingTokens, flightTokens)
	}
	for a := range m.accounts {
		if flightFail == "" && tokens[a] != m.tokens[a] {
			flightFail = fmt.Sprintf("account %d counts %d tokens in flight, its transactions %d", a, m.tokens[a], tokens[a])
		}
	}
	if flightFail == "" && slots != m.restingSlots {
		flightFail = fmt.Sprintf("%d in-flight limit orders counted, %d in flight", m.restingSlots, slots)
	}
	for id, o := range m.orders {
		if flightFail == "" && o.replacing != replacing[id] {
			flightFail = fmt.Sprintf("order %d counts %d in-flight replaces, %d in flight", id, o.replacing, replacing[id])
		}
	}
	check(CheckInFlightCounts, flightFail, fmt.Sprintf("%d in flight", len(m.inflight)))

	fail = ""
	for s, ref := range m.refs {
		if ref < 0 {
			fail = fmt.Sprintf("symbol %d has reference price %d", s, ref)
			break
		}
	}
	check(CheckReferencePrices, fail, "")
	return r
}
