package engine

import (
	"errors"
	"testing"
)

// TestRingMessageChecksum flips every bit of a ring message in turn, as a
// process scribbling over shared memory would: each flip must be refused,
// never decoded into a message that differs from the one sent.
func TestRingMessageChecksum(t *testing.T) {
	ring, _, err := NewPipe(1 << 12)
	if err != nil {
		t.Fatal(err)
	}
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
	if err := decodeRecord(&got, &buf, typ, rec); err != nil {
		t.Fatalf("intact record: %v", err)
	}
	if got.Out.Fills[1] != m.Out.Fills[1] || got.Out.Resting != 90 {
		t.Fatalf("intact record decoded to %+v", got.Out)
	}
	for i := range len(rec) * 8 {
		rec[i/8] ^= 1 << (i % 8)
		err := decodeRecord(&got, &buf, typ, rec)
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("bit %d flipped: %v, want ErrMalformed", i, err)
		}
		rec[i/8] ^= 1 << (i % 8)
	}
	if err := decodeRecord(&got, &buf, typ+1, rec); !errors.Is(err, ErrMalformed) {
		t.Errorf("foreign record type: %v", err)
	}
	if err := decodeRecord(&got, &buf, typ, rec[:len(rec)-8]); !errors.Is(err, ErrMalformed) {
		t.Errorf("record without its checksum: %v", err)
	}
}
