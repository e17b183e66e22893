package matching

import (
	"bytes"
	"testing"

	"github.com/commitcore/commitcore/engine"
)

// FuzzCommands decodes the input into a sequence of prepares, commits and
// aborts (eight bytes a step) with several transactions in flight, and
// checks after every step that the book's structure holds, the committed
// book never crosses, and once every transaction has ended no quantity is
// held and a snapshot restores to identical bytes.
func FuzzCommands(f *testing.F) {
	f.Add([]byte("\x00\x01\x11\x01\x05\x09\x00\x00\x00\x01\x21\x02\x05\x03\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00"))
	f.Add(bytes.Repeat([]byte{0, 1, 0x12, 1, 3, 40, 0, 0, 0, 1, 0x21, 2, 3, 7, 0, 0, 0, 3, 0, 1, 5, 2, 1, 0}, 6))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, stp := range []STPMode{CancelResting, CancelIncoming} {
			m, err := New(Config{STP: stp, Orders: 8, Symbols: []SymbolConfig{{ID: sym, Tick: 5, MinPrice: 100, MaxPrice: 175}}})
			if err != nil {
				t.Fatal(err)
			}
			type flight struct {
				tx  engine.TxID
				out engine.Outcome
			}
			var inflight []*flight
			var ids []uint64
			tx := engine.TxID(0)
			for ; len(data) >= 8; data = data[8:] {
				b := data[:8]
				switch {
				case b[0]%4 != 0 && len(inflight) > 0:
					i := int(b[6]) % len(inflight)
					fl := inflight[i]
					inflight = append(inflight[:i], inflight[i+1:]...)
					if b[0]%4 == 1 {
						m.Abort(fl.tx)
					} else {
						m.Commit(fl.tx, &fl.out)
					}
				default:
					tx++
					c := engine.Command{
						Kind: engine.CommandKind(1 + b[1]%3), Side: engine.Side(1 + b[2]&1), Type: engine.OrderType(1 + (b[2]>>4)%4),
						Symbol: sym, Account: uint32(b[3] % 4), OrderID: uint64(tx),
						Price: 100 + 5*int64(b[4]%16), Qty: int64(b[5]%64) - 2, Time: int64(tx),
					}
					if b[7]&1 != 0 {
						c.Price++ // off tick
					}
					if c.Kind != engine.NewOrder && len(ids) > 0 {
						c.OrderID = ids[int(b[6])%len(ids)]
						if o, ok := m.Order(c.OrderID); ok && b[7]&2 == 0 {
							c.Account = o.Account
						}
					}
					fl := &flight{tx: tx}
					if m.Prepare(tx, &c, &fl.out) == engine.ReasonNone {
						inflight = append(inflight, fl)
						if c.Kind == engine.NewOrder {
							ids = append(ids, c.OrderID)
						}
						for _, x := range fl.out.FillSlice() {
							if x.Qty <= 0 || x.Price < 100 || x.Price > 175 {
								t.Fatalf("bad fill %+v", x)
							}
						}
					} else if fl.out.NFills != 0 || fl.out.NRemoved != 0 {
						t.Fatalf("a NO vote carries an outcome: %+v", fl.out)
					}
				}
				checkInvariants(t, m)
			}
			for i, fl := range inflight {
				if i%2 == 0 {
					m.Abort(fl.tx)
				} else {
					m.Commit(fl.tx, &fl.out)
				}
			}
			checkInvariants(t, m) // nothing in flight: nothing held or pending, no crossing
			var a, b bytes.Buffer
			if err := m.Snapshot(&a); err != nil {
				t.Fatal(err)
			}
			r, _ := New(m.cfg)
			if err := r.Restore(bytes.NewReader(a.Bytes())); err != nil {
				t.Fatal(err)
			}
			if err := r.Snapshot(&b); err != nil || !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Fatalf("restored snapshot differs (%v)", err)
			}
		}
	})
}

// FuzzRestore feeds arbitrary bytes to Restore: it must fail cleanly or
// load a book whose snapshot is exactly the input.
func FuzzRestore(f *testing.F) {
	cfg := Config{Orders: 8, Symbols: []SymbolConfig{{ID: sym, Tick: 5, MinPrice: 100, MaxPrice: 175}}}
	m, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	var out engine.Outcome
	for i, c := range []engine.Command{
		newOrder(1, 1, engine.Buy, engine.Limit, 120, 5), newOrder(2, 2, engine.Buy, engine.Limit, 120, 3),
		newOrder(3, 1, engine.Sell, engine.Limit, 150, 4), newOrder(4, 3, engine.Buy, engine.Limit, 100, 9),
	} {
		m.Execute(engine.TxID(i+1), &c, &out)
	}
	var seed bytes.Buffer
	if err := m.Snapshot(&seed); err != nil {
		f.Fatal(err)
	}
	f.Add(seed.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		r, _ := New(cfg)
		if r.Restore(bytes.NewReader(data)) != nil {
			return
		}
		checkInvariants(t, r)
		var b bytes.Buffer
		if err := r.Snapshot(&b); err != nil || !bytes.Equal(b.Bytes(), data) {
			t.Fatalf("restore then snapshot changed the bytes (%v)", err)
		}
	})
}
