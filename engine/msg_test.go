package engine

import (
	"errors"
	"math"
	"reflect"
	"testing"
	"unsafe"
)

func sampleOutcome(nf, nr int) Outcome {
	var o Outcome
	o.NFills, o.NRemoved = nf, nr
	for i := 0; i < nf; i++ {
		o.Fills[i] = Fill{TradeID: TradeIDOf(9, i), Symbol: 3, TakerSide: Sell, MakerOrder: 11, TakerOrder: 9, Maker: 1, Taker: 2, Price: -5 + int64(i), Qty: 1 << 40}
	}
	for i := 0; i < nr; i++ {
		o.Removed[i] = Removal{OrderID: 77, Account: 4, Side: Buy, Price: 10, Qty: 3}
	}
	o.Resting, o.RestingPrice, o.Canceled = 4, 100, 2
	return o
}

func sampleMsgs() []Msg {
	cmd := Command{Kind: NewOrder, Side: Buy, Type: IOC, Symbol: 1, Account: 2, OrderID: 3, ClientOrderID: 4, Price: 5, Qty: 6, Time: 7}
	tx := MakeTxID(3, 42)
	return []Msg{
		{Type: MsgPrepare, From: CoordinatorID, To: Broadcast, Epoch: 3, Tx: tx, Cmd: cmd},
		{Type: MsgVote, From: 2, To: CoordinatorID, Epoch: 3, Tx: tx},
		{Type: MsgVote, From: 1, To: CoordinatorID, Epoch: 3, Tx: tx, Reason: ReasonCreditLimit},
		{Type: MsgVote, From: 0, To: CoordinatorID, Epoch: 3, Tx: tx, HasOutcome: true, Out: sampleOutcome(MaxFills, MaxRemoved)},
		{Type: MsgPreCommit, From: CoordinatorID, To: 1, Epoch: 3, Tx: tx, HasOutcome: true, Out: sampleOutcome(1, 0)},
		{Type: MsgPreCommitAck, From: 1, To: CoordinatorID, Epoch: 3, Tx: tx},
		{Type: MsgCommit, From: CoordinatorID, To: Broadcast, Epoch: 3, Tx: tx},
		{Type: MsgCommit, From: CoordinatorID, To: 0, Epoch: 3, Tx: tx, HasOutcome: true, Out: sampleOutcome(0, 2)},
		{Type: MsgCommitAck, From: 0, To: CoordinatorID, Epoch: 3, Tx: tx},
		{Type: MsgAbort, From: CoordinatorID, To: Broadcast, Epoch: 3, Tx: tx, Reason: ReasonTimeout},
		{Type: MsgAbortAck, From: 15, To: CoordinatorID, Epoch: 3, Tx: tx},
		{Type: MsgCommitAck, From: 1, To: CoordinatorID, Senders: 1<<1 | 1<<2 | 1<<15, Epoch: 3, Tx: tx},
		{Type: MsgPreCommitAck, From: 0, To: CoordinatorID, Senders: 7, Run: 63, Epoch: 3, Tx: tx},
		{Type: MsgAbort, From: CoordinatorID, To: Broadcast, Run: math.MaxUint16, Epoch: 3, Tx: tx, Reason: ReasonTimeout},
	}
}

// validPart returns the part of o that the codec carries.
func validPart(o *Outcome) Outcome {
	var v Outcome
	copyOutcome(&v, o)
	return v
}

func TestMsgRoundTrip(t *testing.T) {
	buf := make([]byte, MaxMsgSize)
	for _, m := range sampleMsgs() {
		n, err := m.Encode(buf)
		must(t, err)
		eq(t, m.Type.String()+" size", m.Size(), n)
		eq(t, m.Type.String()+" alignment", 0, n%8)
		var got Msg
		got.Out = sampleOutcome(MaxFills, MaxRemoved) // stale contents must not leak
		k, err := got.Decode(buf[:n])
		must(t, err)
		eq(t, "decoded length", n, k)
		want := m
		want.Out, got.Out = validPart(&m.Out), validPart(&got.Out)
		eq(t, m.Type.String(), want, got)
		// Every strict prefix is short.
		for i := 0; i < n; i++ {
			if _, err := got.Decode(buf[:i]); !errors.Is(err, ErrShortBuffer) {
				t.Fatalf("%v prefix %d: err %v, want ErrShortBuffer", m.Type, i, err)
			}
		}
	}
	if PrepareMsgSize != 80 {
		t.Fatalf("PREPARE is %d bytes, want 80 (two cache lines)", PrepareMsgSize)
	}
}

func TestMsgBatchConcatenation(t *testing.T) {
	msgs := sampleMsgs()
	var batch []byte
	buf := make([]byte, MaxMsgSize)
	for i := range msgs {
		n, err := msgs[i].Encode(buf)
		must(t, err)
		batch = append(batch, buf[:n]...)
	}
	var m Msg
	for i := 0; len(batch) > 0; i++ {
		n, err := m.Decode(batch)
		must(t, err)
		eq(t, "type", msgs[i].Type, m.Type)
		batch = batch[n:]
	}
}

func TestMsgInvalid(t *testing.T) {
	base := sampleMsgs()
	cases := []struct {
		name string
		i    int
		edit func(*Msg)
	}{
		{"type zero", 1, func(m *Msg) { m.Type = 0 }},
		{"type too big", 1, func(m *Msg) { m.Type = MsgAbortAck + 1 }},
		{"epoch zero", 1, func(m *Msg) { m.Epoch = 0 }},
		{"epoch too big", 1, func(m *Msg) { m.Epoch = MaxEpoch + 1 }},
		{"tx zero", 1, func(m *Msg) { m.Tx = 0 }},
		{"vote from coordinator", 1, func(m *Msg) { m.From = CoordinatorID }},
		{"vote from unknown node", 1, func(m *Msg) { m.From = MaxParticipants }},
		{"vote to a participant", 1, func(m *Msg) { m.To = 1 }},
		{"prepare from a participant", 0, func(m *Msg) { m.From = 0 }},
		{"prepare to coordinator", 0, func(m *Msg) { m.To = CoordinatorID }},
		{"undefined reason", 2, func(m *Msg) { m.Reason = Reason(NumReasons) }},
		{"NO vote with outcome", 2, func(m *Msg) { m.HasOutcome = true }},
		{"abort without reason", 9, func(m *Msg) { m.Reason = ReasonNone }},
		{"abort with outcome", 9, func(m *Msg) { m.HasOutcome = true }},
		{"ack with reason", 5, func(m *Msg) { m.Reason = ReasonTimeout }},
		{"ack with outcome", 5, func(m *Msg) { m.HasOutcome = true }},
		{"precommit without outcome", 4, func(m *Msg) { m.HasOutcome = false }},
		{"too many fills", 4, func(m *Msg) { m.Out.NFills = MaxFills + 1 }},
		{"negative fills", 4, func(m *Msg) { m.Out.NFills = -1 }},
		{"too many removals", 4, func(m *Msg) { m.Out.NRemoved = MaxRemoved + 1 }},
		{"fill side", 4, func(m *Msg) { m.Out.Fills[0].TakerSide = 0 }},
		{"removal side", 7, func(m *Msg) { m.Out.Removed[1].Side = 3 }},
		{"command kind", 0, func(m *Msg) { m.Cmd.Kind = 0 }},
		{"new order side", 0, func(m *Msg) { m.Cmd.Side = 0 }},
		{"new order type", 0, func(m *Msg) { m.Cmd.Type = Market + 1 }},
		{"cancel side", 0, func(m *Msg) { m.Cmd.Kind, m.Cmd.Side = Cancel, 3 }},
		{"senders of a coordinator message", 0, func(m *Msg) { m.Senders = 3 }},
		{"senders of a vote with an outcome", 3, func(m *Msg) { m.Senders = 3 }},
		{"one sender", 11, func(m *Msg) { m.Senders = 1 << m.From }},
		{"from not the lowest sender", 11, func(m *Msg) { m.From = 2 }},
		{"from not a sender", 11, func(m *Msg) { m.From = 0 }},
		{"run of prepares", 0, func(m *Msg) { m.Run = 1 }},
		{"run of pre-commits", 4, func(m *Msg) { m.Run = 1 }},
		{"run of votes with an outcome", 3, func(m *Msg) { m.Run = 1 }},
		{"run past the last tx", 12, func(m *Msg) { m.Tx = ^TxID(0) - 62 }},
	}
	buf := make([]byte, MaxMsgSize)
	for _, c := range cases {
		m := base[c.i]
		c.edit(&m)
		if _, err := m.Encode(buf); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Encode err %v, want ErrMalformed", c.name, err)
		}
	}
}

func TestMsgDecodeCorrupt(t *testing.T) {
	buf := make([]byte, MaxMsgSize)
	prep := sampleMsgs()[0]
	pc := sampleMsgs()[4]
	cases := []struct {
		name string
		m    Msg
		edit func(b []byte)
	}{
		{"unknown flag", prep, func(b []byte) { b[3] |= 16 }},
		{"length too long", prep, func(b []byte) { b[20]++ }},
		{"length too short", prep, func(b []byte) { b[20] -= 8 }},
		{"fills without outcome", prep, func(b []byte) { b[18] = 1 }},
		{"fill count beyond length", pc, func(b []byte) { b[18] = 2 }},
		{"fill count over max", pc, func(b []byte) { b[18] = MaxFills + 1 }},
		{"command padding", prep, func(b []byte) { b[headerSize+3] = 1 }},
		{"fill padding", pc, func(b []byte) { b[headerSize+outcomeBase+13] = 1 }},
		{"command in a vote", sampleMsgs()[1], func(b []byte) { b[3] |= flagCommand; b[20] += commandSize }},
		{"record kind as message", prep, func(b []byte) { b[0] = byte(RecCommit) }},
		{"senders beyond the participants", sampleMsgs()[11], func(b []byte) { b[headerSize+2] = 1 }},
		{"no senders", sampleMsgs()[11], func(b []byte) { clear(b[headerSize : headerSize+sendersSize]) }},
		{"senders without the flag", sampleMsgs()[11], func(b []byte) { b[3] &^= flagSenders }},
		{"senders in a prepare", prep, func(b []byte) { b[3] |= flagSenders; b[20] += sendersSize }},
		{"run zero", sampleMsgs()[13], func(b []byte) { clear(b[headerSize : headerSize+runSize]) }},
		{"run too long", sampleMsgs()[13], func(b []byte) { b[headerSize+2] = 1 }},
		{"run after senders zero", sampleMsgs()[12], func(b []byte) { clear(b[headerSize+sendersSize : headerSize+sendersSize+runSize]) }},
		{"run without the flag", sampleMsgs()[13], func(b []byte) { b[3] &^= flagRun }},
		{"run in a prepare", prep, func(b []byte) { b[3] |= flagRun; b[20] += runSize }},
		{"run past the last tx", sampleMsgs()[12], func(b []byte) { copy(b[8:16], []byte{0xf0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) }},
	}
	for _, c := range cases {
		n, err := c.m.Encode(buf)
		must(t, err)
		b := append([]byte(nil), buf[:n]...)
		b = append(b, make([]byte, 64)...) // room, so only validation can fail
		c.edit(b)
		var m Msg
		if _, err := m.Decode(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Decode err %v, want ErrMalformed", c.name, err)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	buf := make([]byte, MaxMsgSize)
	recs := []Record{
		{Kind: RecCommit, Epoch: 1, Tx: MakeTxID(1, 1), Cmd: Command{Kind: Cancel, OrderID: 5}, Out: sampleOutcome(3, 1)},
		{Kind: RecAbort, Epoch: 2, Tx: MakeTxID(1, 1), Reason: ReasonTerminated},
	}
	for _, r := range recs {
		n, err := r.Encode(buf)
		must(t, err)
		eq(t, "size", r.Size(), n)
		var got Record
		_, err = got.Decode(buf[:n])
		must(t, err)
		want := r
		want.Out, got.Out = validPart(&r.Out), validPart(&got.Out)
		eq(t, r.Kind.String(), want, got)
		var m Msg
		if _, err := m.Decode(buf[:n]); !errors.Is(err, ErrMalformed) {
			t.Errorf("%v record decoded as a message: %v", r.Kind, err)
		}
	}
	bad := Record{Kind: RecAbort, Epoch: 1, Tx: 1}
	if _, err := bad.Encode(buf); !errors.Is(err, ErrMalformed) {
		t.Errorf("abort record without reason: %v", err)
	}
	m := sampleMsgs()[0]
	n, _ := m.Encode(buf)
	var r Record
	if _, err := r.Decode(buf[:n]); !errors.Is(err, ErrMalformed) {
		t.Errorf("message decoded as a record: %v", err)
	}
}

func TestEncodeShortBuffer(t *testing.T) {
	m := sampleMsgs()[3]
	if _, err := m.Encode(make([]byte, m.Size()-1)); !errors.Is(err, ErrShortBuffer) {
		t.Fatalf("err %v, want ErrShortBuffer", err)
	}
}

// FuzzDecodeMsg feeds arbitrary bytes to the decoder: it must never panic
// or read past the message, and whatever it accepts must re-encode to the
// same bytes.
func FuzzDecodeMsg(f *testing.F) {
	buf := make([]byte, MaxMsgSize)
	for _, m := range sampleMsgs() {
		n, _ := m.Encode(buf)
		f.Add(append([]byte(nil), buf[:n]...))
	}
	r := Record{Kind: RecCommit, Epoch: 1, Tx: 7, Cmd: Command{Kind: Cancel}, Out: sampleOutcome(1, 1)}
	n, _ := r.Encode(buf)
	f.Add(append([]byte(nil), buf[:n]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Msg
		n, err := m.Decode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrShortBuffer) {
				t.Fatalf("untyped error %v", err)
			}
		} else {
			if n > len(b) || n != m.Size() {
				t.Fatalf("decoded length %d, size %d, input %d", n, m.Size(), len(b))
			}
			out := make([]byte, MaxMsgSize)
			k, err := m.Encode(out)
			if err != nil {
				t.Fatalf("accepted message does not encode: %v", err)
			}
			if !reflect.DeepEqual(out[:k], b[:n]) {
				t.Fatalf("re-encoding differs:\n%x\n%x", out[:k], b[:n])
			}
		}
		var rec Record
		if n, err := rec.Decode(b); err == nil {
			out := make([]byte, MaxMsgSize)
			k, err := rec.Encode(out)
			if err != nil || !reflect.DeepEqual(out[:k], b[:n]) {
				t.Fatalf("record re-encoding differs (%v)", err)
			}
		}
	})
}

func BenchmarkMsgEncodeDecode(b *testing.B) {
	msgs := sampleMsgs()
	prep, pc := msgs[0], msgs[4]
	buf := make([]byte, MaxMsgSize)
	var m Msg
	b.Run("prepare", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n, _ := prep.Encode(buf)
			if _, err := m.Decode(buf[:n]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("precommit-1fill", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n, _ := pc.Encode(buf)
			if _, err := m.Decode(buf[:n]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestCopyResult checks that copyResult copies every field of a Result, so
// that a field added later cannot be silently dropped between the
// coordinator and the caller.
func TestCopyResult(t *testing.T) {
	src := Result{
		Tx: MakeTxID(2, 7), Cmd: Command{Kind: NewOrder, Qty: 3}, Reason: ReasonCreditLimit,
		Prepare: 1, PreCommit: 2, Commit: 3, Total: 4, Recovered: true, ResumesAt: 5,
		Out: sampleOutcome(2, 1),
	}
	v := reflect.ValueOf(src)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Fatalf("sample Result leaves %s zero: set it so the test covers it", v.Type().Field(i).Name)
		}
	}
	var dst Result
	dst.Out = sampleOutcome(MaxFills, MaxRemoved) // stale fills beyond src's count stay
	copyResult(&dst, &src)
	dst.Out = validPart(&dst.Out)
	if !reflect.DeepEqual(dst, src) {
		t.Fatalf("copyResult:\n got %+v\nwant %+v", dst, src)
	}
}

// TestMsgLayout keeps a Msg's hot fields in its first cache line and every
// Msg of a Ready's slice on line boundaries: a Ready of acks and votes then
// touches one line per message, where the batch's Msgs would otherwise
// thrash the L1 cache.
func TestMsgLayout(t *testing.T) {
	var m Msg
	if s := unsafe.Sizeof(m); s%64 != 0 {
		t.Errorf("a Msg is %d bytes, not a whole number of 64-byte lines", s)
	}
	if end := unsafe.Offsetof(m.Out) + unsafe.Offsetof(m.Out.Fills); end > 64 {
		t.Errorf("a Msg's header and its Outcome's counts end at byte %d, past the first line", end)
	}
}
