package engine

import (
	"errors"
	"testing"
)

// TestRingMessageChecksum flips every bit of a ring message in turn, as a
// process scribbling over shared memory would: each flip must be refused,
// never decoded into a message that differs from the one sent.
func TestRingMessageChecksum(t *testing.T) {
	pipe, _, err := NewPipe(1 << 12)
	if err != nil {
		t.Fatal(err)
	}
	ring := &Conn{Tx: pipe.Tx, Rx: pipe.Rx} // as over a link: checked
	m := Msg{Type: MsgVote, From: 0, To: CoordinatorID, Epoch: 3, Tx: MakeTxID(3, 9), HasOutcome: true}
	m.Out.NFills = 2
	m.Out.Fills[0] = Fill{TradeID: 1, Symbol: 2, TakerSide: Buy, MakerOrder: 8, TakerOrder: 9, Maker: 3, Taker: 4, Price: 10050, Qty: 7}
	m.Out.Fills[1] = Fill{TradeID: 2, Symbol: 2, TakerSide: Buy, MakerOrder: 10, TakerOrder: 9, Maker: 5, Taker: 4, Price: 10051, Qty: 3}
	m.Out.Resting = 90
	if ok, err := ring.send(&m); !ok || err != nil {
		t.Fatalf("send: %v %v", ok, err)
	}
	ring.Tx.Commit()
	var rec []byte
	var typ uint16
	if _, err := ring.Tx.Read(1, func(ty uint16, p []byte) { typ, rec = ty, append([]byte(nil), p...) }); err != nil {
		t.Fatal(err)
	}
	var got Msg
	var buf msgBuf
	if err := ring.decode(&got, &buf, typ, rec); err != nil {
		t.Fatalf("intact record: %v", err)
	}
	if got.Out.Fills[1] != m.Out.Fills[1] || got.Out.Resting != 90 {
		t.Fatalf("intact record decoded to %+v", got.Out)
	}
	for i := range len(rec) * 8 {
		rec[i/8] ^= 1 << (i % 8)
		err := ring.decode(&got, &buf, typ, rec)
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("bit %d flipped: %v, want ErrMalformed", i, err)
		}
		rec[i/8] ^= 1 << (i % 8)
	}
	if err := ring.decode(&got, &buf, typ+1, rec); !errors.Is(err, ErrMalformed) {
		t.Errorf("foreign record type: %v", err)
	}
	if err := ring.decode(&got, &buf, typ, rec[:len(rec)-8]); !errors.Is(err, ErrMalformed) {
		t.Errorf("record without its checksum: %v", err)
	}
}

// TestPipeMessages: a pipe's messages carry no checksum word and decode in
// place; the same bytes read as a link's record are refused, so a Conn
// that is not a pipe never takes an unchecked message.
func TestPipeMessages(t *testing.T) {
	a, b, err := NewPipe(1 << 12)
	if err != nil {
		t.Fatal(err)
	}
	m := sampleMsgs()[4]
	if ok, err := a.send(&m); !ok || err != nil {
		t.Fatalf("send: %v %v", ok, err)
	}
	a.Tx.Commit()
	var got Msg
	var buf msgBuf
	n, err := b.Rx.Read(1, func(typ uint16, p []byte) {
		if len(p) != m.Size() {
			t.Errorf("pipe record of %d bytes, want the message's %d", len(p), m.Size())
		}
		if err := b.decode(&got, &buf, typ, p); err != nil {
			t.Errorf("pipe decode: %v", err)
		}
		if err := (&Conn{}).decode(&got, &buf, typ, p); !errors.Is(err, ErrMalformed) {
			t.Errorf("a pipe's record read as a link's: %v, want ErrMalformed", err)
		}
	})
	if n != 1 || err != nil {
		t.Fatalf("read %d records: %v", n, err)
	}
	if got.Type != m.Type || got.Tx != m.Tx || got.Out.Fills[0] != m.Out.Fills[0] {
		t.Fatalf("decoded %+v, sent %+v", got, m)
	}
}

// BenchmarkConnMessage sends one PRE-COMMIT with a fill and reads it back
// over a pipe (in-process rings: no checksum, decoded in place) and over
// the same rings checked as a shared-memory link's are (CRC-32C on both
// ends, decoded from a private copy).
func BenchmarkConnMessage(b *testing.B) {
	m := sampleMsgs()[4]
	for _, name := range []string{"pipe", "link"} {
		b.Run(name, func(b *testing.B) {
			a, z, err := NewPipe(1 << 16)
			if err != nil {
				b.Fatal(err)
			}
			if name == "link" {
				a, z = &Conn{Tx: a.Tx, Rx: a.Rx}, &Conn{Tx: z.Tx, Rx: z.Rx}
			}
			var got Msg
			var buf msgBuf
			var derr error
			read := func(typ uint16, p []byte) { derr = z.decode(&got, &buf, typ, p) }
			b.ReportAllocs()
			for b.Loop() {
				if ok, err := a.send(&m); !ok || err != nil {
					b.Fatalf("send: %v %v", ok, err)
				}
				a.Tx.Commit()
				if n, err := z.Rx.Read(1, read); n != 1 || err != nil || derr != nil {
					b.Fatalf("read %d: %v %v", n, err, derr)
				}
			}
		})
	}
}
