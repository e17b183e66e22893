package matching

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/commitcore/commitcore/engine"
)

// snapshotMagic opens every snapshot; its last byte is the format version.
const snapshotMagic = "CCMATCH\x01"

// ErrSnapshot is wrapped by Restore for every malformed or foreign snapshot.
var ErrSnapshot = errors.New("matching: bad snapshot")

const orderRecord = 8 + 4 + 8 + 8 // id, account, price, open

// Snapshot writes the committed books: for each symbol in configuration
// order its id, tick and price range, then bids and asks, each side's
// orders in priority order (best price first, then time) as id, account,
// price and open quantity, little endian. The encoding is a function of
// the books alone, so equal books give equal bytes.
func (m *Matcher) Snapshot(w io.Writer) error {
	if n := m.InFlight(); n > 0 {
		return fmt.Errorf("snapshot: %w: %d prepared and not yet committed or aborted", ErrInFlight, n)
	}
	buf := []byte(snapshotMagic)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(m.books)))
	for i := range m.books {
		b := &m.books[i]
		buf = binary.LittleEndian.AppendUint32(buf, b.cfg.ID)
		buf = binary.LittleEndian.AppendUint64(buf, uint64(b.cfg.Tick))
		buf = binary.LittleEndian.AppendUint64(buf, uint64(b.cfg.MinPrice))
		buf = binary.LittleEndian.AppendUint64(buf, uint64(b.cfg.MaxPrice))
		for _, side := range [2]engine.Side{engine.Buy, engine.Sell} {
			at := len(buf)
			buf = binary.LittleEndian.AppendUint32(buf, 0)
			n := uint32(0)
			m.eachOrder(b, side, func(o *order) {
				buf = binary.LittleEndian.AppendUint64(buf, o.id)
				buf = binary.LittleEndian.AppendUint32(buf, o.account)
				buf = binary.LittleEndian.AppendUint64(buf, uint64(o.price))
				buf = binary.LittleEndian.AppendUint64(buf, uint64(o.open))
				n++
			})
			binary.LittleEndian.PutUint32(buf[at:], n)
		}
	}
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("snapshot: write: %w", err)
	}
	return nil
}

// eachOrder calls f for every order on one side of b in priority order.
func (m *Matcher) eachOrder(b *book, side engine.Side, f func(*order)) {
	l := b.side(side)
	next := func(lv int32) int32 { return l.up(lv + 1) }
	lv := l.up(0)
	if side == engine.Buy {
		next = func(lv int32) int32 { return l.down(lv - 1) }
		lv = l.down(int32(len(l.levels) - 1))
	}
	for ; lv >= 0; lv = next(lv) {
		for s := l.levels[lv].head; s >= 0; s = m.orders[s].next {
			f(&m.orders[s])
		}
	}
}

// Restore replaces the books with those of a snapshot written by Snapshot
// for the same symbols. The input is untrusted: it is validated in full
// (symbols, grid, ranges, priority order, unique ids, an uncrossed book)
// and on any error the Matcher is left unchanged.
func (m *Matcher) Restore(r io.Reader) error {
	if n := m.InFlight(); n > 0 {
		return fmt.Errorf("restore: %w: %d prepared and not yet committed or aborted", ErrInFlight, n)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("restore: read: %w", err)
	}
	fresh := &Matcher{cfg: m.cfg, books: make([]book, len(m.books)), bookIdx: m.bookIdx, lastBook: -1}
	fresh.reset()
	if err := fresh.decode(data); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	*m = *fresh
	return nil
}

// decoder reads little-endian fields and remembers the first short read.
type decoder struct {
	data []byte
	off  int
	bad  bool
}

func (d *decoder) u32() uint32 {
	if d.bad || len(d.data)-d.off < 4 {
		d.bad = true
		return 0
	}
	v := binary.LittleEndian.Uint32(d.data[d.off:])
	d.off += 4
	return v
}

func (d *decoder) u64() uint64 {
	if d.bad || len(d.data)-d.off < 8 {
		d.bad = true
		return 0
	}
	v := binary.LittleEndian.Uint64(d.data[d.off:])
	d.off += 8
	return v
}

func (m *Matcher) decode(data []byte) error {
	if len(data) < len(snapshotMagic) || string(data[:len(snapshotMagic)]) != snapshotMagic {
		return fmt.Errorf("%w: not a matching snapshot of this version", ErrSnapshot)
	}
	d := &decoder{data: data, off: len(snapshotMagic)}
	if n := d.u32(); int(n) != len(m.books) {
		return fmt.Errorf("%w: %d books, configuration has %d", ErrSnapshot, n, len(m.books))
	}
	for i := range m.books {
		b := &m.books[i]
		id, tick, lo, hi := d.u32(), int64(d.u64()), int64(d.u64()), int64(d.u64())
		if d.bad {
			return fmt.Errorf("%w: truncated in book %d", ErrSnapshot, i)
		}
		if id != b.cfg.ID || tick != b.cfg.Tick || lo != b.cfg.MinPrice || hi != b.cfg.MaxPrice {
			return fmt.Errorf("%w: book %d is symbol %d tick %d range [%d, %d], configuration has symbol %d tick %d range [%d, %d]",
				ErrSnapshot, i, id, tick, lo, hi, b.cfg.ID, b.cfg.Tick, b.cfg.MinPrice, b.cfg.MaxPrice)
		}
		for _, side := range [2]engine.Side{engine.Buy, engine.Sell} {
			if err := m.decodeSide(d, b, int32(i), side); err != nil {
				return fmt.Errorf("symbol %d %v side: %w", id, side, err)
			}
		}
		if b.bestBid >= 0 && b.bestAsk >= 0 && b.bestBid >= b.bestAsk {
			return fmt.Errorf("%w: symbol %d is crossed: bid %d, ask %d", ErrSnapshot, id, b.priceOf(b.bestBid), b.priceOf(b.bestAsk))
		}
	}
	if d.off != len(data) {
		return fmt.Errorf("%w: %d trailing bytes", ErrSnapshot, len(data)-d.off)
	}
	return nil
}

func (m *Matcher) decodeSide(d *decoder, b *book, bi int32, side engine.Side) error {
	n := d.u32()
	if d.bad || uint64(n)*orderRecord > uint64(len(d.data)-d.off) {
		return fmt.Errorf("%w: truncated order list", ErrSnapshot)
	}
	last := int64(-1)
	for k := uint32(0); k < n; k++ {
		id, account, price, open := d.u64(), d.u32(), int64(d.u64()), int64(d.u64())
		if reason := b.check(price, open); reason != engine.ReasonNone {
			return fmt.Errorf("%w: order %d: price %d quantity %d: %v", ErrSnapshot, id, price, open, reason)
		}
		if last >= 0 && ((side == engine.Buy && price > last) || (side == engine.Sell && price < last)) {
			return fmt.Errorf("%w: order %d at %d is out of priority order", ErrSnapshot, id, price)
		}
		last = price
		if _, dup := m.ids.get(id); dup || id == 0 {
			return fmt.Errorf("%w: order id %d is zero or repeated", ErrSnapshot, id)
		}
		s := m.alloc()
		m.orders[s] = order{id: id, open: open, price: price, account: account, book: bi, level: b.levelOf(price), side: side}
		m.link(b, s)
		m.ids.put(id, s)
	}
	return nil
}
