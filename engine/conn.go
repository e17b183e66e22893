package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/commitcore/commitcore/ringbuf"
	"github.com/commitcore/commitcore/shm"
)

// ringMsg is the ring record type of one protocol message: the encoded
// message, then its CRC-32C in a little-endian 8-byte word. The codec
// refuses fields the protocol never sends, but bytes scribbled over a ring
// by a foreign process or a stray write can still spell a valid-looking
// vote, and acting on one would commit a trade nobody made; the checksum
// turns that into a refused record.
const ringMsg uint16 = 1

// sumSize is the size of a ring message's checksum word; 8 keeps messages
// 8-byte aligned.
const sumSize = 8

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// msgBuf holds a copy of one ring message: a message is checked and decoded
// from private memory, so a writer scribbling over the ring cannot change
// it between the checksum and the decode.
type msgBuf [MaxMsgSize + sumSize]byte

// decode checks ring record (typ, p), read from c.Rx, and decodes it into
// m: over a shared-memory or remote link, from a copy in buf once its
// checksum holds; over a pipe, whose writer is this process's engine, in
// place.
func (c *Conn) decode(m *Msg, buf *msgBuf, typ uint16, p []byte) error {
	if typ != ringMsg {
		return fmt.Errorf("%w: ring record type %d, want %d", ErrMalformed, typ, ringMsg)
	}
	body := p
	if !c.pipe {
		var err error
		if body, err = checked(buf, p); err != nil {
			return err
		}
	}
	n, err := m.Decode(body)
	if err != nil {
		return err
	}
	if n != len(body) {
		return fmt.Errorf("%w: ring record of %d bytes holds a message of %d", ErrMalformed, len(body), n)
	}
	return nil
}

// checked copies ring record p into buf and returns the message in the
// copy, once the checksum that ends the record holds.
func checked(buf *msgBuf, p []byte) ([]byte, error) {
	if len(p) < headerSize+sumSize || len(p) > len(buf) {
		return nil, fmt.Errorf("%w: ring record of %d bytes, want %d to %d", ErrMalformed, len(p), headerSize+sumSize, len(buf))
	}
	b := buf[:copy(buf[:], p)]
	body, sum := b[:len(b)-sumSize], binary.LittleEndian.Uint64(b[len(b)-sumSize:])
	if got := uint64(crc32.Checksum(body, castagnoli)); got != sum {
		return nil, fmt.Errorf("%w: ring message checksum %#x, computed %#x: something other than the peer wrote the ring", ErrMalformed, sum, got)
	}
	return body, nil
}

// DefaultRingCapacity is the data capacity of each ring of a link, in bytes:
// room for thousands of messages in flight each way.
const DefaultRingCapacity = 1 << 20

// Conn is one end of a duplex link between the coordinator and a host of
// participant nodes: the ring this end writes and the ring it reads. The
// same Conn type runs over heap memory (NewPipe, one process) and over a
// shared-memory link (LinkConn, two processes), so deployment is
// configuration, not code.
type Conn struct {
	Tx *ringbuf.SPSC
	Rx *ringbuf.SPSC
	// Bell is the doorbell this end parks on; the peer's Tx rings it.
	Bell *ringbuf.Doorbell
	// Alive reports whether the peer lives. Nil means it always does (the
	// peer is in this process).
	Alive func() bool
	// Beat, if set, publishes that this end lives; the coordinator calls
	// it every duty cycle so that participants can tell a live coordinator
	// from a dead or stalled one.
	Beat func()
	// pipe is set by NewPipe: both ends are this process's engine, and
	// nothing else can write heap memory the engine alone holds, so its
	// messages go without the checksum and the private copy that guard a
	// ring other processes can write.
	pipe bool
}

// NewPipe returns the two ends of an in-process link over heap memory, each
// ring capacity bytes (a power of two).
func NewPipe(capacity int) (*Conn, *Conn, error) {
	ring := func() (*ringbuf.SPSC, error) {
		return ringbuf.NewSPSC(ringbuf.AlignedBytes(ringbuf.SPSCSize(capacity)))
	}
	ab, err := ring()
	if err != nil {
		return nil, nil, fmt.Errorf("new pipe: %w", err)
	}
	ba, err := ring()
	if err != nil {
		return nil, nil, fmt.Errorf("new pipe: %w", err)
	}
	bells := ringbuf.AlignedBytes(2 * ringbuf.DoorbellSize)
	bellA, err := ringbuf.NewDoorbell(bells[:ringbuf.DoorbellSize])
	if err != nil {
		return nil, nil, fmt.Errorf("new pipe: %w", err)
	}
	bellB, err := ringbuf.NewDoorbell(bells[ringbuf.DoorbellSize:])
	if err != nil {
		return nil, nil, fmt.Errorf("new pipe: %w", err)
	}
	ab.SetDoorbell(bellB)
	ba.SetDoorbell(bellA)
	return &Conn{Tx: ab, Rx: ba, Bell: bellA, pipe: true}, &Conn{Tx: ba, Rx: ab, Bell: bellB, pipe: true}, nil
}

// LinkConn returns the Conn of this process's side of a shared-memory link.
func LinkConn(l *shm.Link) *Conn {
	return &Conn{Tx: l.Tx(), Rx: l.Rx(), Bell: l.Doorbell(), Alive: l.PeerAlive, Beat: l.Slot().Beat}
}

// send encodes m into c's outbound ring without publishing it: the caller
// commits the ring once per batch. A full ring drops the message and
// reports false; the protocol treats that as a lost message (PREPARE times
// out, PRE-COMMIT and COMMIT are retransmitted), so a slow peer costs
// aborts or retransmissions, never a wrong outcome.
func (c *Conn) send(m *Msg) (bool, error) {
	size := m.Size()
	if !c.pipe {
		size += sumSize
	}
	p, err := c.Tx.Claim(ringMsg, size)
	if errors.Is(err, ringbuf.ErrFull) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("send %v tx %d: %w", m.Type, m.Tx, err)
	}
	n, err := m.Encode(p)
	if err != nil {
		return false, fmt.Errorf("send %v tx %d: %w", m.Type, m.Tx, err)
	}
	if !c.pipe {
		binary.LittleEndian.PutUint64(p[n:], uint64(crc32.Checksum(p[:n], castagnoli)))
	}
	return true, nil
}
