package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// MsgType says which protocol step a Msg is.
type MsgType uint8

// Message types. The coordinator sends Prepare, PreCommit, Commit and Abort;
// participants answer with Vote and the three acks.
const (
	MsgPrepare      MsgType = 1 // carries the Command
	MsgVote         MsgType = 2 // Reason: ReasonNone is YES; the matching participant's YES carries the Outcome
	MsgPreCommit    MsgType = 3 // carries the Outcome (3PC only)
	MsgPreCommitAck MsgType = 4
	MsgCommit       MsgType = 5 // carries the Outcome in 2PC mode and during takeover in 2PC
	MsgCommitAck    MsgType = 6
	MsgAbort        MsgType = 7 // Reason says why
	MsgAbortAck     MsgType = 8
)

var msgTypeNames = [...]string{
	MsgPrepare:      "PREPARE",
	MsgVote:         "VOTE",
	MsgPreCommit:    "PRECOMMIT",
	MsgPreCommitAck: "PRECOMMIT-ACK",
	MsgCommit:       "COMMIT",
	MsgCommitAck:    "COMMIT-ACK",
	MsgAbort:        "ABORT",
	MsgAbortAck:     "ABORT-ACK",
}

// String returns the message type's protocol name.
func (t MsgType) String() string {
	if t >= MsgPrepare && int(t) < len(msgTypeNames) {
		return msgTypeNames[t]
	}
	return fmt.Sprintf("msgtype(%d)", uint8(t))
}

func (t MsgType) valid() bool { return t >= MsgPrepare && t <= MsgAbortAck }

// fromCoordinator reports whether messages of type t flow from the
// coordinator to participants.
func (t MsgType) fromCoordinator() bool {
	return t == MsgPrepare || t == MsgPreCommit || t == MsgCommit || t == MsgAbort
}

// NodeID names a sender or receiver: participants are 0 … MaxParticipants-1,
// in the order of the coordinator's configuration.
type NodeID uint8

// Special node ids.
const (
	// CoordinatorID is the sender of coordinator messages and the receiver
	// of participant messages, whichever coordinator (primary or backup) it
	// is: epochs, not ids, tell coordinators apart.
	CoordinatorID NodeID = 0xFF
	// Broadcast as a destination means every participant. The runtime
	// encodes such a message once and copies it to every participant.
	Broadcast NodeID = 0xFE
)

// MaxParticipants bounds the participants of one coordinator.
const MaxParticipants = 16

// Msg is one protocol message. It is a plain value without pointers; the
// state machines write messages in place into their Ready and read them by
// pointer, so the large Outcome is copied only as far as NFills and NRemoved
// reach.
type Msg struct {
	Type MsgType
	From NodeID
	To   NodeID
	// HasOutcome says Out is meaningful: a matching YES vote, a PreCommit,
	// a 2PC Commit.
	HasOutcome bool
	// Senders, when not zero, is the set of participants (bit i for node
	// i) that each sent this same message, From being the lowest: a Host
	// merges the identical acks and outcome-less votes of the nodes it
	// serves into one, so that a phase costs one message per host rather
	// than per participant. Zero means From alone.
	Senders uint16
	// Reason is the vote (ReasonNone is YES) or why an Abort aborts.
	Reason Reason
	Epoch  Epoch // the sending coordinator's epoch (participants echo it)
	// Run, when not zero, makes this one message stand for Run+1: the same
	// message for transactions Tx, Tx+1, …, Tx+Run, in that order. A
	// runtime sends a batch's consecutive COMMITs, ABORTs, acks and
	// outcome-less votes as one, so those phases cost one message per batch
	// rather than per transaction.
	Run uint16
	Tx  TxID
	Out Outcome
	Cmd Command // MsgPrepare only
	// The fields up to Out's arrays fill one cache line and a Msg is a
	// whole number of lines, so an ack or a vote in a Ready touches one.
	_ [8]byte
}

// Wire format. Every message and journal record starts with this 24-byte
// header, all integers little-endian:
//
//	off size field
//	  0    1 type (MsgType, or RecordKind for journal records)
//	  1    1 from (NodeID; 0 in records)
//	  2    1 to   (NodeID; 0 in records)
//	  3    1 flags: bit 0 outcome follows, bit 1 command follows, bit 2
//	         senders follow, bit 3 run follows; others zero
//	  4    4 epoch
//	  8    8 tx
//	 16    2 reason
//	 18    1 nfills   (≤ MaxFills; zero without an outcome)
//	 19    1 nremoved (≤ MaxRemoved; zero without an outcome)
//	 20    4 length of the whole message in bytes, header included
//
// then the senders (8 bytes: the set of participants, bit i for node i, at
// least two of them, the lowest being from; the upper 48 bits zero) if flag
// bit 2, then the run (8 bytes: the number of transactions after tx, at
// least 1; the upper 48 bits zero) if flag bit 3, then the command (56
// bytes) if flag bit 1, then the outcome if flag bit 0:
// resting, resting price, canceled (8 bytes each), nfills fills of 56 bytes
// and nremoved removals of 32 bytes. The length is a multiple of 8, so
// messages packed back to back stay 8-byte aligned and a batch is simply
// their concatenation: each says how long it is.
const (
	headerSize  = 24
	commandSize = 56
	fillSize    = 56
	removalSize = 32
	outcomeBase = 24

	sendersSize = 8
	runSize     = 8

	flagOutcome = 1 << 0
	flagCommand = 1 << 1
	flagSenders = 1 << 2
	flagRun     = 1 << 3

	// MaxMsgSize is the largest encoded message or record.
	MaxMsgSize = headerSize + commandSize + outcomeBase + MaxFills*fillSize + MaxRemoved*removalSize

	// PrepareMsgSize is the encoded size of a PREPARE: two cache lines.
	PrepareMsgSize = headerSize + commandSize
)

// Codec errors. Every error from Encode and Decode wraps one of these, so
// callers can branch with errors.Is.
var (
	// ErrShortBuffer means the destination or source is smaller than the
	// message: give a buffer of at least MaxMsgSize bytes.
	ErrShortBuffer = errors.New("engine: buffer too short for message")
	// ErrMalformed means a field holds a value the protocol never sends:
	// the bytes are corrupt or from an incompatible version.
	ErrMalformed = errors.New("engine: malformed message")
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Size returns the encoded size of m in bytes.
func (m *Msg) Size() int {
	n := headerSize
	if m.Senders != 0 {
		n += sendersSize
	}
	if m.Run != 0 {
		n += runSize
	}
	if m.Type == MsgPrepare {
		n += commandSize
	}
	if m.HasOutcome {
		n += outcomeSize(&m.Out)
	}
	return n
}

func outcomeSize(o *Outcome) int {
	return outcomeBase + o.NFills*fillSize + o.NRemoved*removalSize
}

// Encode writes m into dst and returns the number of bytes written. It
// checks m as Decode would, so a message that encodes also decodes.
func (m *Msg) Encode(dst []byte) (int, error) {
	if err := m.check(); err != nil {
		return 0, fmt.Errorf("encode %v: %w", m.Type, err)
	}
	var cmd *Command
	if m.Type == MsgPrepare {
		cmd = &m.Cmd
	}
	var out *Outcome
	if m.HasOutcome {
		out = &m.Out
	}
	n, err := encodeFrame(dst, uint8(m.Type), m.From, m.To, m.Senders, m.Run, m.Epoch, m.Tx, m.Reason, cmd, out)
	if err != nil {
		return 0, fmt.Errorf("encode %v: %w", m.Type, err)
	}
	return n, nil
}

// Decode reads one message from the front of src into m and returns its
// length; src may hold more bytes after it (the next message of a batch).
// Every field is validated; on error m is left in an unspecified state and
// nothing was read beyond src.
func (m *Msg) Decode(src []byte) (int, error) {
	var f frame
	f.cmd, f.out = &m.Cmd, &m.Out
	n, err := decodeFrame(src, &f)
	if err != nil {
		return 0, fmt.Errorf("decode message: %w", err)
	}
	m.Type, m.From, m.To, m.Senders, m.Run = MsgType(f.kind), f.from, f.to, f.senders, f.run
	m.Epoch, m.Tx, m.Reason = f.epoch, f.tx, f.reason
	m.HasOutcome = f.flags&flagOutcome != 0
	if !m.HasOutcome {
		m.Out.Reset()
	}
	if err := m.check(); err != nil {
		return 0, fmt.Errorf("decode %v: %w", m.Type, err)
	}
	if (f.flags&flagCommand != 0) != (m.Type == MsgPrepare) {
		return 0, fmt.Errorf("decode %v: %w", m.Type, malformed("command present only in PREPARE"))
	}
	return n, nil
}

// checkRun validates m's run: only a message that is the same for every
// transaction, and no transaction id past the last.
func (m *Msg) checkRun() error {
	switch {
	case m.Run == 0:
		return nil
	case m.Type == MsgPrepare || m.Type == MsgPreCommit || m.HasOutcome:
		return malformed("%v in a run of %d: it carries a command or an outcome", m.Type, m.Run)
	case m.Tx > math.MaxUint64-TxID(m.Run):
		return malformed("run of %d after tx %d overflows", m.Run, m.Tx)
	}
	return nil
}

// check validates the message-level rules shared by Encode and Decode.
func (m *Msg) check() error {
	if !m.Type.valid() {
		return malformed("type %d", m.Type)
	}
	if m.Epoch == 0 || m.Epoch > MaxEpoch {
		return malformed("epoch %d outside [1,%d]", m.Epoch, MaxEpoch)
	}
	if m.Tx == 0 {
		return malformed("tx 0")
	}
	if m.Type.fromCoordinator() {
		if m.From != CoordinatorID {
			return malformed("%v from node %d", m.Type, m.From)
		}
		if m.To >= MaxParticipants && m.To != Broadcast {
			return malformed("%v to node %d", m.Type, m.To)
		}
	} else {
		if m.From >= MaxParticipants {
			return malformed("%v from node %d", m.Type, m.From)
		}
		if m.To != CoordinatorID {
			return malformed("%v to node %d", m.Type, m.To)
		}
	}
	if m.Senders != 0 {
		switch {
		case m.Type.fromCoordinator():
			return malformed("%v with senders %#x", m.Type, m.Senders)
		case m.HasOutcome:
			return malformed("%v with an outcome from senders %#x", m.Type, m.Senders)
		case bits.OnesCount16(m.Senders) < 2 || NodeID(bits.TrailingZeros16(m.Senders)) != m.From:
			return malformed("%v from %d with senders %#x: want two or more, the lowest being from", m.Type, m.From, m.Senders)
		}
	}
	if err := m.checkRun(); err != nil {
		return err
	}
	if !m.Reason.Valid() {
		return malformed("reason %d", m.Reason)
	}
	switch m.Type {
	case MsgVote:
		if m.HasOutcome && m.Reason != ReasonNone {
			return malformed("NO vote with an outcome")
		}
	case MsgAbort:
		if m.Reason == ReasonNone {
			return malformed("ABORT without a reason")
		}
		if m.HasOutcome {
			return malformed("ABORT with an outcome")
		}
	default:
		if m.Reason != ReasonNone {
			return malformed("%v with reason %v", m.Type, m.Reason)
		}
		switch m.Type {
		case MsgPreCommit:
			if !m.HasOutcome {
				return malformed("PRECOMMIT without an outcome")
			}
		case MsgCommit:
		default:
			if m.HasOutcome {
				return malformed("%v with an outcome", m.Type)
			}
		}
	}
	if m.Type == MsgPrepare {
		if err := checkCommand(&m.Cmd); err != nil {
			return err
		}
	}
	if m.HasOutcome {
		return checkOutcome(&m.Out)
	}
	return nil
}

// RecordKind says what a journal Record holds.
type RecordKind uint8

// Record kinds. Their values do not overlap MsgType, so a record can never
// be mistaken for a message.
const (
	// RecCommit is written by the coordinator before its commit CAS: the
	// command and the Outcome every participant will apply. The transaction
	// committed unless the log also holds a RecAbort for it, or the decision
	// table still holds it as UNDECIDED or ABORT.
	RecCommit RecordKind = 0x81
	// RecAbort is written once a transaction that may have a RecCommit is
	// known to have aborted (a lost commit CAS, a takeover), before its
	// decision slot is released. It overrides any RecCommit, before or after.
	RecAbort RecordKind = 0x82
)

// String returns the record kind's name.
func (k RecordKind) String() string {
	switch k {
	case RecCommit:
		return "commit"
	case RecAbort:
		return "abort"
	}
	return fmt.Sprintf("recordkind(%#x)", uint8(k))
}

// Record is one entry of the coordinator's write-ahead log: the journal
// stores its encoding (same header as a Msg).
type Record struct {
	Kind   RecordKind
	Epoch  Epoch // the writer's epoch
	Tx     TxID
	Reason Reason  // RecAbort: why
	Cmd    Command // RecCommit
	Out    Outcome // RecCommit
}

// Log is the write-ahead log the coordinator appends to: the runtime backs
// it with the journal, tests with memory. Append must copy what it keeps;
// r is reused. A record is durable enough for the protocol once Append
// returns: readers in other processes (a backup, a restarted participant)
// see it.
type Log interface {
	Append(r *Record) error
}

// Size returns the encoded size of r in bytes.
func (r *Record) Size() int {
	if r.Kind == RecCommit {
		return headerSize + commandSize + outcomeSize(&r.Out)
	}
	return headerSize
}

// Encode writes r into dst and returns the number of bytes written.
func (r *Record) Encode(dst []byte) (int, error) {
	if err := r.check(); err != nil {
		return 0, fmt.Errorf("encode %v record: %w", r.Kind, err)
	}
	var cmd *Command
	var out *Outcome
	if r.Kind == RecCommit {
		cmd, out = &r.Cmd, &r.Out
	}
	n, err := encodeFrame(dst, uint8(r.Kind), 0, 0, 0, 0, r.Epoch, r.Tx, r.Reason, cmd, out)
	if err != nil {
		return 0, fmt.Errorf("encode %v record: %w", r.Kind, err)
	}
	return n, nil
}

// Decode reads one record from the front of src into r, validating every
// field, and returns its length.
func (r *Record) Decode(src []byte) (int, error) {
	var f frame
	f.cmd, f.out = &r.Cmd, &r.Out
	n, err := decodeFrame(src, &f)
	if err != nil {
		return 0, fmt.Errorf("decode record: %w", err)
	}
	r.Kind, r.Epoch, r.Tx, r.Reason = RecordKind(f.kind), f.epoch, f.tx, f.reason
	if f.from != 0 || f.to != 0 {
		return 0, fmt.Errorf("decode record: %w", malformed("record with from/to %d/%d", f.from, f.to))
	}
	want := uint8(0)
	if r.Kind == RecCommit {
		want = flagCommand | flagOutcome
	}
	if f.flags != want {
		return 0, fmt.Errorf("decode %v record: %w", r.Kind, malformed("flags %#x, want %#x", f.flags, want))
	}
	if r.Kind != RecCommit {
		r.Out.Reset()
	}
	if err := r.check(); err != nil {
		return 0, fmt.Errorf("decode %v record: %w", r.Kind, err)
	}
	return n, nil
}

func (r *Record) check() error {
	if r.Epoch == 0 || r.Epoch > MaxEpoch {
		return malformed("epoch %d outside [1,%d]", r.Epoch, MaxEpoch)
	}
	if r.Tx == 0 {
		return malformed("tx 0")
	}
	switch r.Kind {
	case RecCommit:
		if r.Reason != ReasonNone {
			return malformed("commit record with reason %v", r.Reason)
		}
		if err := checkCommand(&r.Cmd); err != nil {
			return err
		}
		return checkOutcome(&r.Out)
	case RecAbort:
		if r.Reason == ReasonNone || !r.Reason.Valid() {
			return malformed("abort record with reason %d", r.Reason)
		}
		return nil
	}
	return malformed("record kind %#x", uint8(r.Kind))
}

func checkCommand(c *Command) error {
	switch c.Kind {
	case NewOrder:
		if c.Side != Buy && c.Side != Sell {
			return malformed("new order side %d", c.Side)
		}
		if c.Type < Limit || c.Type > Market {
			return malformed("new order type %d", c.Type)
		}
	case Cancel, Replace:
		if c.Side > Sell {
			return malformed("%v side %d", c.Kind, c.Side)
		}
		if c.Type > Market {
			return malformed("%v order type %d", c.Kind, c.Type)
		}
	default:
		return malformed("command kind %d", c.Kind)
	}
	return nil
}

func checkOutcome(o *Outcome) error {
	if o.NFills < 0 || o.NFills > MaxFills {
		return malformed("%d fills outside [0,%d]", o.NFills, MaxFills)
	}
	if o.NRemoved < 0 || o.NRemoved > MaxRemoved {
		return malformed("%d removals outside [0,%d]", o.NRemoved, MaxRemoved)
	}
	for i := range o.FillSlice() {
		if s := o.Fills[i].TakerSide; s != Buy && s != Sell {
			return malformed("fill %d taker side %d", i, s)
		}
	}
	for i := range o.RemovedSlice() {
		if s := o.Removed[i].Side; s != Buy && s != Sell {
			return malformed("removal %d side %d", i, s)
		}
	}
	return nil
}

// frame is the decoded header plus where to put the body.
type frame struct {
	kind     uint8
	from, to NodeID
	senders  uint16
	run      uint16
	flags    uint8
	epoch    Epoch
	tx       TxID
	reason   Reason
	cmd      *Command
	out      *Outcome
}

var le = binary.LittleEndian

func encodeFrame(dst []byte, kind uint8, from, to NodeID, senders, run uint16, epoch Epoch, tx TxID, reason Reason, cmd *Command, out *Outcome) (int, error) {
	n := headerSize
	var flags uint8
	if senders != 0 {
		n += sendersSize
		flags |= flagSenders
	}
	if run != 0 {
		n += runSize
		flags |= flagRun
	}
	if cmd != nil {
		n += commandSize
		flags |= flagCommand
	}
	var nf, nr int
	if out != nil {
		nf, nr = out.NFills, out.NRemoved
		n += outcomeSize(out)
		flags |= flagOutcome
	}
	if len(dst) < n {
		return 0, fmt.Errorf("%w: need %d bytes, have %d", ErrShortBuffer, n, len(dst))
	}
	b := dst[:n]
	b[0], b[1], b[2], b[3] = kind, byte(from), byte(to), flags
	le.PutUint32(b[4:], uint32(epoch))
	le.PutUint64(b[8:], uint64(tx))
	le.PutUint16(b[16:], uint16(reason))
	b[18], b[19] = byte(nf), byte(nr)
	le.PutUint32(b[20:], uint32(n))
	p := b[headerSize:]
	if senders != 0 {
		le.PutUint64(p, uint64(senders))
		p = p[sendersSize:]
	}
	if run != 0 {
		le.PutUint64(p, uint64(run))
		p = p[runSize:]
	}
	if cmd != nil {
		putCommand(p, cmd)
		p = p[commandSize:]
	}
	if out != nil {
		le.PutUint64(p[0:], uint64(out.Resting))
		le.PutUint64(p[8:], uint64(out.RestingPrice))
		le.PutUint64(p[16:], uint64(out.Canceled))
		p = p[outcomeBase:]
		for i := range out.FillSlice() {
			putFill(p, &out.Fills[i])
			p = p[fillSize:]
		}
		for i := range out.RemovedSlice() {
			putRemoval(p, &out.Removed[i])
			p = p[removalSize:]
		}
	}
	return n, nil
}

func decodeFrame(src []byte, f *frame) (int, error) {
	if len(src) < headerSize {
		return 0, fmt.Errorf("%w: %d bytes, header needs %d", ErrShortBuffer, len(src), headerSize)
	}
	f.kind, f.from, f.to, f.flags = src[0], NodeID(src[1]), NodeID(src[2]), src[3]
	f.epoch = Epoch(le.Uint32(src[4:]))
	f.tx = TxID(le.Uint64(src[8:]))
	f.reason = Reason(le.Uint16(src[16:]))
	nf, nr := int(src[18]), int(src[19])
	length := le.Uint32(src[20:])
	if f.flags&^(flagOutcome|flagCommand|flagSenders|flagRun) != 0 {
		return 0, malformed("flags %#x", f.flags)
	}
	if nf > MaxFills || nr > MaxRemoved {
		return 0, malformed("%d fills, %d removals exceed %d, %d", nf, nr, MaxFills, MaxRemoved)
	}
	want := headerSize
	if f.flags&flagSenders != 0 {
		want += sendersSize
	}
	if f.flags&flagRun != 0 {
		want += runSize
	}
	if f.flags&flagCommand != 0 {
		want += commandSize
	}
	if f.flags&flagOutcome != 0 {
		want += outcomeBase + nf*fillSize + nr*removalSize
	} else if nf != 0 || nr != 0 {
		return 0, malformed("%d fills, %d removals without an outcome", nf, nr)
	}
	if length != uint32(want) {
		return 0, malformed("length %d, contents need %d", length, want)
	}
	if len(src) < want {
		return 0, fmt.Errorf("%w: %d bytes, message needs %d", ErrShortBuffer, len(src), want)
	}
	p := src[headerSize:want]
	f.senders = 0
	if f.flags&flagSenders != 0 {
		w := le.Uint64(p)
		if w == 0 || w>>MaxParticipants != 0 {
			return 0, malformed("senders %#x: want a nonzero set of participants below %d", w, MaxParticipants)
		}
		f.senders = uint16(w)
		p = p[sendersSize:]
	}
	f.run = 0
	if f.flags&flagRun != 0 {
		w := le.Uint64(p)
		if w == 0 || w > math.MaxUint16 {
			return 0, malformed("run %d: want 1 to %d transactions after tx", w, math.MaxUint16)
		}
		f.run = uint16(w)
		p = p[runSize:]
	}
	if f.flags&flagCommand != 0 {
		if err := getCommand(p, f.cmd); err != nil {
			return 0, err
		}
		p = p[commandSize:]
	}
	if f.flags&flagOutcome != 0 {
		o := f.out
		o.Resting = int64(le.Uint64(p[0:]))
		o.RestingPrice = int64(le.Uint64(p[8:]))
		o.Canceled = int64(le.Uint64(p[16:]))
		o.NFills, o.NRemoved = nf, nr
		p = p[outcomeBase:]
		for i := 0; i < nf; i++ {
			if err := getFill(p, &o.Fills[i]); err != nil {
				return 0, fmt.Errorf("fill %d: %w", i, err)
			}
			p = p[fillSize:]
		}
		for i := 0; i < nr; i++ {
			if err := getRemoval(p, &o.Removed[i]); err != nil {
				return 0, fmt.Errorf("removal %d: %w", i, err)
			}
			p = p[removalSize:]
		}
	}
	return want, nil
}

func putCommand(b []byte, c *Command) {
	b[0], b[1], b[2], b[3] = byte(c.Kind), byte(c.Side), byte(c.Type), 0
	le.PutUint32(b[4:], c.Symbol)
	le.PutUint32(b[8:], c.Account)
	le.PutUint32(b[12:], 0)
	le.PutUint64(b[16:], c.OrderID)
	le.PutUint64(b[24:], c.ClientOrderID)
	le.PutUint64(b[32:], uint64(c.Price))
	le.PutUint64(b[40:], uint64(c.Qty))
	le.PutUint64(b[48:], uint64(c.Time))
}

func getCommand(b []byte, c *Command) error {
	if b[3] != 0 || le.Uint32(b[12:]) != 0 {
		return malformed("command padding not zero")
	}
	c.Kind, c.Side, c.Type = CommandKind(b[0]), Side(b[1]), OrderType(b[2])
	c.Symbol = le.Uint32(b[4:])
	c.Account = le.Uint32(b[8:])
	c.OrderID = le.Uint64(b[16:])
	c.ClientOrderID = le.Uint64(b[24:])
	c.Price = int64(le.Uint64(b[32:]))
	c.Qty = int64(le.Uint64(b[40:]))
	c.Time = int64(le.Uint64(b[48:]))
	return nil
}

func putFill(b []byte, f *Fill) {
	le.PutUint64(b[0:], f.TradeID)
	le.PutUint32(b[8:], f.Symbol)
	b[12], b[13], b[14], b[15] = byte(f.TakerSide), 0, 0, 0
	le.PutUint64(b[16:], f.MakerOrder)
	le.PutUint64(b[24:], f.TakerOrder)
	le.PutUint32(b[32:], f.Maker)
	le.PutUint32(b[36:], f.Taker)
	le.PutUint64(b[40:], uint64(f.Price))
	le.PutUint64(b[48:], uint64(f.Qty))
}

func getFill(b []byte, f *Fill) error {
	if b[13] != 0 || b[14] != 0 || b[15] != 0 {
		return malformed("fill padding not zero")
	}
	f.TradeID = le.Uint64(b[0:])
	f.Symbol = le.Uint32(b[8:])
	f.TakerSide = Side(b[12])
	f.MakerOrder = le.Uint64(b[16:])
	f.TakerOrder = le.Uint64(b[24:])
	f.Maker = le.Uint32(b[32:])
	f.Taker = le.Uint32(b[36:])
	f.Price = int64(le.Uint64(b[40:]))
	f.Qty = int64(le.Uint64(b[48:]))
	return nil
}

func putRemoval(b []byte, r *Removal) {
	le.PutUint64(b[0:], r.OrderID)
	le.PutUint32(b[8:], r.Account)
	b[12], b[13], b[14], b[15] = byte(r.Side), 0, 0, 0
	le.PutUint64(b[16:], uint64(r.Price))
	le.PutUint64(b[24:], uint64(r.Qty))
}

func getRemoval(b []byte, r *Removal) error {
	if b[13] != 0 || b[14] != 0 || b[15] != 0 {
		return malformed("removal padding not zero")
	}
	r.OrderID = le.Uint64(b[0:])
	r.Account = le.Uint32(b[8:])
	r.Side = Side(b[12])
	r.Price = int64(le.Uint64(b[16:]))
	r.Qty = int64(le.Uint64(b[24:]))
	return nil
}

// copyOutcome copies the valid part of src into dst: the fills and removals
// beyond the counts are not touched, so copying a small outcome is cheap.
func copyOutcome(dst, src *Outcome) {
	dst.NFills, dst.NRemoved = src.NFills, src.NRemoved
	copy(dst.Fills[:src.NFills], src.FillSlice())
	copy(dst.Removed[:src.NRemoved], src.RemovedSlice())
	dst.Resting, dst.RestingPrice, dst.Canceled = src.Resting, src.RestingPrice, src.Canceled
}

// Ready is what a state machine asks its runtime to do after Propose, Step
// or Tick: send Msgs, deliver Results, and call Tick again at Deadline. It
// is owned by the state machine and reused: its contents are valid until
// the next call to Advance, which the runtime makes once it has acted.
type Ready struct {
	// Msgs are the messages to send, in order. To is a participant,
	// CoordinatorID, or Broadcast (every participant). The runtime may pack
	// several into one ring record or ring one doorbell for all of them:
	// that is how a batch shares each phase's round trip.
	Msgs []Msg
	// Results are the coordinator's finished transactions.
	Results []Result
	// Deadline is the earliest timer, in the caller's nanosecond clock;
	// 0 means none is armed.
	Deadline int64
}

// msg returns a fresh message slot at the end of r.Msgs, growing the slice
// only while it has not yet reached its working size. The message before
// it is complete by now: it joins the run before it if it continues it.
func (r *Ready) msg(t MsgType, from, to NodeID, e Epoch, tx TxID) *Msg {
	r.fold()
	if len(r.Msgs) < cap(r.Msgs) {
		r.Msgs = r.Msgs[:len(r.Msgs)+1]
	} else {
		r.Msgs = append(r.Msgs, Msg{})
	}
	m := &r.Msgs[len(r.Msgs)-1]
	m.Type, m.From, m.To, m.Senders, m.Run, m.Epoch, m.Tx = t, from, to, 0, 0, e, tx
	m.Reason, m.HasOutcome = ReasonNone, false
	m.Out.NFills, m.Out.NRemoved = 0, 0
	return m
}

// fold makes the last message part of the one before it if it is that
// message's for the transaction after its run: a batch's consecutive
// COMMITs, ABORTs, acks and outcome-less votes become one message, and a
// Ready holds no more messages for a run received than for one
// transaction. Both come from one state machine and nothing is between
// them, so every receiver gets its messages in the same order.
func (r *Ready) fold() {
	n := len(r.Msgs)
	if n < 2 {
		return
	}
	if g, m := &r.Msgs[n-2], &r.Msgs[n-1]; m.Run == 0 && continues(g, m) {
		g.Run++
		r.Msgs = r.Msgs[:n-1]
	}
}

// continues reports whether m is g's message for the transaction after g's
// run, so that g can stand for it too.
func continues(g, m *Msg) bool {
	return g.Type == m.Type && g.Type != MsgPrepare && g.Type != MsgPreCommit && !g.HasOutcome && !m.HasOutcome &&
		g.From == m.From && g.To == m.To && g.Senders == m.Senders &&
		g.Epoch == m.Epoch && g.Reason == m.Reason &&
		g.Run < math.MaxUint16 && g.Tx+TxID(g.Run)+1 == m.Tx
}

func (r *Ready) result() *Result {
	if len(r.Results) < cap(r.Results) {
		r.Results = r.Results[:len(r.Results)+1]
	} else {
		r.Results = append(r.Results, Result{})
	}
	return &r.Results[len(r.Results)-1]
}

func (r *Ready) reset() {
	r.Msgs, r.Results = r.Msgs[:0], r.Results[:0]
}
