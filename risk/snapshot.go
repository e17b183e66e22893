package risk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/commitcore/commitcore/engine"
)

// snapshotMagic opens every snapshot; its last byte is the format version.
const snapshotMagic = "CCRISK\x00\x01"

// Snapshot layout, all integers little-endian:
//
//	magic [8]byte; accounts, symbols uint32; follow uint8
//	refs [symbols]int64
//	per account: limits (7 int64), credit int64, bucket level and last int64
//	pos, openBuy, openSel [accounts*symbols]int64
//	orders uint64, then per order in increasing id:
//	    id uint64; account, symbol uint32; side uint8; price, open int64
const (
	headerSize  = 8 + 4 + 4 + 1
	accountSize = 10 * 8
	orderSize   = 8 + 4 + 4 + 1 + 8 + 8
)

// ErrInFlight is returned by Snapshot while transactions are in flight.
var ErrInFlight = errors.New("risk: transactions in flight")

// ErrSnapshot is wrapped by every error Restore returns for a snapshot it
// cannot use.
var ErrSnapshot = errors.New("risk: bad snapshot")

// Snapshot writes the manager's committed state, limits and reference
// prices included. Equal states give equal bytes. It refuses while
// transactions are in flight.
func (m *Manager) Snapshot(w io.Writer) error {
	if len(m.inflight) != 0 {
		return fmt.Errorf("snapshot: %w (%d)", ErrInFlight, len(m.inflight))
	}
	le := binary.LittleEndian
	b := make([]byte, 0, headerSize+8*m.symbols+accountSize*m.accounts+24*len(m.pos)+8+orderSize*len(m.orders))
	b = append(b, snapshotMagic...)
	b = le.AppendUint32(b, uint32(m.accounts))
	b = le.AppendUint32(b, uint32(m.symbols))
	follow := byte(0)
	if m.follow {
		follow = 1
	}
	b = append(b, follow)
	for _, v := range m.refs {
		b = le.AppendUint64(b, uint64(v))
	}
	for a := range m.accounts {
		l := m.limits[a]
		for _, v := range []int64{l.MaxOrderQty, l.MaxOrderNotional, l.PriceBandBps, l.MaxPosition, l.CreditLimit, l.OrdersPerSecond, l.Burst,
			m.credit[a], m.buckets[a].level, m.buckets[a].last} {
			b = le.AppendUint64(b, uint64(v))
		}
	}
	for _, vs := range [][]int64{m.pos, m.openBuy, m.openSel} {
		for _, v := range vs {
			b = le.AppendUint64(b, uint64(v))
		}
	}
	ids := make([]uint64, 0, len(m.orders))
	for id := range m.orders {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	b = le.AppendUint64(b, uint64(len(ids)))
	for _, id := range ids {
		o := m.orders[id]
		b = le.AppendUint64(b, id)
		b = le.AppendUint32(b, o.account)
		b = le.AppendUint32(b, o.symbol)
		b = append(b, byte(o.side))
		b = le.AppendUint64(b, uint64(o.price))
		b = le.AppendUint64(b, uint64(o.open))
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("snapshot: write: %w", err)
	}
	return nil
}

// Restore replaces the manager's state with a snapshot written by a manager
// with as many accounts and symbols. It reads exactly the snapshot's bytes,
// trusts none of them, and leaves the manager unchanged if the snapshot is
// malformed or fails Audit.
func (m *Manager) Restore(r io.Reader) error {
	le := binary.LittleEndian
	h := make([]byte, headerSize)
	if _, err := io.ReadFull(r, h); err != nil {
		return fmt.Errorf("restore: read header: %w", err)
	}
	if string(h[:8]) != snapshotMagic {
		return fmt.Errorf("restore: %w: not a risk snapshot of this version", ErrSnapshot)
	}
	accounts, symbols := int(le.Uint32(h[8:])), int(le.Uint32(h[12:]))
	if accounts != m.accounts || symbols != m.symbols || h[16] > 1 {
		return fmt.Errorf("restore: %w: taken with %d accounts and %d symbols, this manager has %d and %d", ErrSnapshot, accounts, symbols, m.accounts, m.symbols)
	}
	n := m.accounts * m.symbols
	x := &Manager{
		accounts: m.accounts, symbols: m.symbols, follow: h[16] == 1, maxOrders: m.maxOrders, maxFlight: m.maxFlight,
		limits: make([]Limits, m.accounts), refs: make([]int64, m.symbols),
		pos: make([]int64, n), openBuy: make([]int64, n), openSel: make([]int64, n),
		credit: make([]int64, m.accounts), buckets: make([]bucket, m.accounts), tokens: make([]int64, m.accounts),
		tokq: newTokenQueue(m.maxFlight), refTx: make([]engine.TxID, m.symbols),
	}
	body := make([]byte, 8*m.symbols+accountSize*m.accounts+24*n+8)
	if _, err := io.ReadFull(r, body); err != nil {
		return fmt.Errorf("restore: read state: %w", err)
	}
	off := 0
	next := func() int64 {
		v := int64(le.Uint64(body[off:]))
		off += 8
		return v
	}
	for s := range x.refs {
		x.refs[s] = next()
	}
	for a := range x.limits {
		l := &x.limits[a]
		for _, p := range []*int64{&l.MaxOrderQty, &l.MaxOrderNotional, &l.PriceBandBps, &l.MaxPosition, &l.CreditLimit, &l.OrdersPerSecond, &l.Burst,
			&x.credit[a], &x.buckets[a].level, &x.buckets[a].last} {
			*p = next()
		}
		if err := l.validate(); err != nil {
			return fmt.Errorf("restore: %w: account %d: %w", ErrSnapshot, a, err)
		}
	}
	for _, vs := range [][]int64{x.pos, x.openBuy, x.openSel} {
		for i := range vs {
			vs[i] = next()
		}
	}
	count := uint64(next())
	if count > uint64(m.maxOrders) {
		return fmt.Errorf("restore: %w: %d orders, more than MaxOrders (%d)", ErrSnapshot, count, m.maxOrders)
	}
	x.orders = make(map[uint64]order, m.maxOrders)
	x.inflight = make(map[engine.TxID]pending, m.maxFlight)
	rec := make([]byte, orderSize)
	var last uint64
	for i := range count {
		if _, err := io.ReadFull(r, rec); err != nil {
			return fmt.Errorf("restore: read order %d of %d: %w", i, count, err)
		}
		id := le.Uint64(rec)
		o := order{account: le.Uint32(rec[8:]), symbol: le.Uint32(rec[12:]), side: engine.Side(rec[16]),
			price: int64(le.Uint64(rec[17:])), open: int64(le.Uint64(rec[25:]))}
		if (i > 0 && id <= last) || int(o.account) >= m.accounts || int(o.symbol) >= m.symbols ||
			(o.side != engine.Buy && o.side != engine.Sell) || o.price <= 0 || o.open <= 0 {
			return fmt.Errorf("restore: %w: order %d is invalid or out of order", ErrSnapshot, id)
		}
		if o.side == engine.Buy {
			var ok bool
			if o.notional, ok = mul(o.price, o.open); !ok {
				return fmt.Errorf("restore: %w: order %d's notional overflows", ErrSnapshot, id)
			}
		}
		last = id
		x.orders[id] = o
	}
	if a := x.Audit(); !a.OK() {
		return fmt.Errorf("restore: %w: %w", ErrSnapshot, a.Err())
	}
	*m = *x
	return nil
}
