package settlement

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/commitcore/commitcore/engine"
)

// snapshotMagic opens every snapshot; its last byte is the format version.
const snapshotMagic = "CCSETL\x00\x01"

// Snapshot layout, all integers little-endian:
//
//	magic [8]byte
//	accounts, symbols uint32; makerBps, takerBps int64; feeAccount uint32
//	genesisCash int64; genesisHold [symbols]int64
//	cash, cashRes [accounts]int64
//	hold, holdRes [accounts*symbols]int64
//	orders uint64, then per order in increasing id:
//	    id uint64; account, symbol uint32; side uint8; price, open, res int64
const (
	headerSize = 8 + 4 + 4 + 8 + 8 + 4 + 8
	orderSize  = 8 + 4 + 4 + 1 + 8 + 8 + 8
)

// ErrInFlight is returned by Snapshot while transactions are in flight.
var ErrInFlight = errors.New("settlement: transactions in flight")

// ErrSnapshot is wrapped by every error Restore returns for a snapshot it
// cannot use.
var ErrSnapshot = errors.New("settlement: bad snapshot")

// Snapshot writes the ledger's committed state. Equal states give equal
// bytes: orders are written in order of id. It refuses while transactions
// are in flight, as their reservations are not part of committed state.
func (l *Ledger) Snapshot(w io.Writer) error {
	if len(l.inflight) != 0 {
		return fmt.Errorf("snapshot: %w (%d)", ErrInFlight, len(l.inflight))
	}
	le := binary.LittleEndian
	b := make([]byte, 0, headerSize+8*(l.symbols+2*l.accounts+2*len(l.hold)+1)+orderSize*len(l.orders))
	b = append(b, snapshotMagic...)
	b = le.AppendUint32(b, uint32(l.accounts))
	b = le.AppendUint32(b, uint32(l.symbols))
	b = le.AppendUint64(b, uint64(l.makerBps))
	b = le.AppendUint64(b, uint64(l.takerBps))
	b = le.AppendUint32(b, l.feeAccount)
	b = le.AppendUint64(b, uint64(l.genesisCash))
	for _, vs := range [][]int64{l.genesisHold, l.cash, l.cashRes, l.hold, l.holdRes} {
		for _, v := range vs {
			b = le.AppendUint64(b, uint64(v))
		}
	}
	ids := make([]uint64, 0, len(l.orders))
	for id := range l.orders {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	b = le.AppendUint64(b, uint64(len(ids)))
	for _, id := range ids {
		o := l.orders[id]
		b = le.AppendUint64(b, id)
		b = le.AppendUint32(b, o.account)
		b = le.AppendUint32(b, o.symbol)
		b = append(b, byte(o.side))
		b = le.AppendUint64(b, uint64(o.price))
		b = le.AppendUint64(b, uint64(o.open))
		b = le.AppendUint64(b, uint64(o.res))
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("snapshot: write: %w", err)
	}
	return nil
}

// Restore replaces the ledger's state with a snapshot written by a ledger of
// the same configuration. It reads exactly the snapshot's bytes, trusts
// none of them, and leaves the ledger unchanged if the snapshot is
// malformed, was taken with another configuration, or fails Audit.
func (l *Ledger) Restore(r io.Reader) error {
	le := binary.LittleEndian
	h := make([]byte, headerSize)
	if _, err := io.ReadFull(r, h); err != nil {
		return fmt.Errorf("restore: read header: %w", err)
	}
	if string(h[:8]) != snapshotMagic {
		return fmt.Errorf("restore: %w: not a settlement snapshot of this version", ErrSnapshot)
	}
	accounts, symbols := int(le.Uint32(h[8:])), int(le.Uint32(h[12:]))
	maker, taker, feeAcct := int64(le.Uint64(h[16:])), int64(le.Uint64(h[24:])), le.Uint32(h[32:])
	if accounts != l.accounts || symbols != l.symbols || maker != l.makerBps || taker != l.takerBps || feeAcct != l.feeAccount {
		return fmt.Errorf("restore: %w: taken with %d accounts, %d symbols, fees %d/%d bps to account %d; this ledger has %d, %d, %d/%d to %d",
			ErrSnapshot, accounts, symbols, maker, taker, feeAcct, l.accounts, l.symbols, l.makerBps, l.takerBps, l.feeAccount)
	}
	n := &Ledger{
		accounts: l.accounts, symbols: l.symbols, makerBps: l.makerBps, takerBps: l.takerBps, maxBps: l.maxBps,
		feeAccount: l.feeAccount, maxOrders: l.maxOrders, maxFlight: l.maxFlight,
		genesisCash: int64(le.Uint64(h[36:])),
		genesisHold: make([]int64, l.symbols),
		cash:        make([]int64, l.accounts),
		cashRes:     make([]int64, l.accounts),
		hold:        make([]int64, len(l.hold)),
		holdRes:     make([]int64, len(l.hold)),
	}
	body := make([]byte, 8*(l.symbols+2*l.accounts+2*len(l.hold)+1))
	if _, err := io.ReadFull(r, body); err != nil {
		return fmt.Errorf("restore: read balances: %w", err)
	}
	off := 0
	for _, vs := range [][]int64{n.genesisHold, n.cash, n.cashRes, n.hold, n.holdRes} {
		for i := range vs {
			vs[i] = int64(le.Uint64(body[off:]))
			off += 8
		}
	}
	count := le.Uint64(body[off:])
	if count > uint64(l.maxOrders) {
		return fmt.Errorf("restore: %w: %d orders, more than MaxOrders (%d)", ErrSnapshot, count, l.maxOrders)
	}
	n.orders = make(map[uint64]order, l.maxOrders)
	n.inflight = make(map[engine.TxID]pending, l.maxFlight)
	rec := make([]byte, orderSize)
	last := uint64(0)
	for i := range count {
		if _, err := io.ReadFull(r, rec); err != nil {
			return fmt.Errorf("restore: read order %d of %d: %w", i, count, err)
		}
		id := le.Uint64(rec)
		o := order{
			account: le.Uint32(rec[8:]), symbol: le.Uint32(rec[12:]), side: engine.Side(rec[16]),
			price: int64(le.Uint64(rec[17:])), open: int64(le.Uint64(rec[25:])), res: int64(le.Uint64(rec[33:])),
		}
		if i > 0 && id <= last {
			return fmt.Errorf("restore: %w: order ids out of order at %d", ErrSnapshot, id)
		}
		if int(o.account) >= l.accounts || int(o.symbol) >= l.symbols || (o.side != engine.Buy && o.side != engine.Sell) || o.price <= 0 || o.open <= 0 {
			return fmt.Errorf("restore: %w: order %d is invalid", ErrSnapshot, id)
		}
		last = id
		n.orders[id] = o
	}
	if a := n.Audit(); !a.OK() {
		return fmt.Errorf("restore: %w: %w", ErrSnapshot, a.Err())
	}
	*l = *n
	return nil
}
