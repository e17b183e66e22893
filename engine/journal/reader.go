package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime/debug"

	"github.com/edsrzf/mmap-go"
	"golang.org/x/sys/unix"
)

// ErrShrunk means the file became shorter under a Reader: a new writer's
// Open truncated a torn tail while the Reader was mapped past it. Open a
// new Reader, or call Iterate again, to read the file as it is now.
var ErrShrunk = errors.New("journal file shrank under the reader")

// Reader reads a journal that a Journal, in this process or another, may
// hold open and be appending to. It is how a process that is not the
// journal's writer (a restarted participant, an auditor) reads the
// coordinator's log while the coordinator runs.
//
// A Reader never writes, truncates or locks the file: it opens it read-only
// and takes no flock, so it neither blocks nor is blocked by the writer. It
// reads every whole, verified record up to the tail as the writer has left
// it at that instant. Where the records stop it tells a record still being
// written (or torn by a crash: the two look alike and Open truncates the
// latter) from damage in the middle of the log, which it reports as a
// *CorruptError, like Open. A stop is damage only if something proves the
// record there was once whole: a verified record after it, or a synced
// watermark above it. Since the writer completes each record before it
// writes the next one or flushes past it, the Reader decodes the stop again
// when it finds such proof, and reports damage only if the record there
// still does not verify. That second look relies on the writer's stores
// becoming visible in program order, which x86-64 guarantees.
//
// A Reader belongs to one goroutine at a time.
type Reader struct {
	path     string
	f        *os.File
	mm       mmap.MMap
	firstSeq uint64
}

// OpenReader opens the journal at path read-only. It fails with an error
// wrapping ErrNotJournal if the file is not a journal (or is still shorter
// than its header because a writer is creating it), and with a
// *CorruptError if the file header is damaged. Records are verified as the
// iterators reach them, not here.
func OpenReader(path string) (*Reader, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("open journal reader: %w", err)
	}
	r := &Reader{path: path, f: f}
	if err := r.open(); err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

func (r *Reader) open() error {
	fi, err := r.f.Stat()
	if err != nil {
		return fmt.Errorf("open journal reader %s: %w", r.path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("open journal reader %s: not a regular file: %w", r.path, ErrNotJournal)
	}
	if fi.Size() < fileHeaderSize {
		return fmt.Errorf("open journal reader %s: file is %d bytes, shorter than the %d-byte header: %w", r.path, fi.Size(), fileHeaderSize, ErrNotJournal)
	}
	if err := r.remap(); err != nil {
		return err
	}
	firstSeq, _, err := parseFileHeader(r.mm)
	if err != nil {
		r.mm.Unmap()
		r.mm = nil
		if cerr, ok := errors.AsType[*CorruptError](err); ok {
			cerr.Path = r.path
			return cerr
		}
		return fmt.Errorf("open journal reader %s: %w", r.path, err)
	}
	r.firstSeq = firstSeq
	return nil
}

// remap maps the file again if its size differs from the mapping's.
func (r *Reader) remap() error {
	fi, err := r.f.Stat()
	if err != nil {
		return fmt.Errorf("journal reader %s: %w", r.path, err)
	}
	size := fi.Size()
	if size == int64(len(r.mm)) {
		return nil
	}
	if size < fileHeaderSize {
		return fmt.Errorf("journal reader %s: file is %d bytes, shorter than its header: %w", r.path, size, ErrShrunk)
	}
	mm, err := mmap.MapRegion(r.f, int(size), mmap.RDONLY, 0, 0)
	if err != nil {
		return fmt.Errorf("journal reader %s: mmap %d bytes: %w", r.path, size, err)
	}
	if r.mm != nil {
		if err := r.mm.Unmap(); err != nil {
			mm.Unmap()
			return fmt.Errorf("journal reader %s: unmap old mapping: %w", r.path, err)
		}
	}
	r.mm = mm
	return nil
}

// Path is the journal file's path.
func (r *Reader) Path() string { return r.path }

// FirstSeq is the sequence number of the journal's first record.
func (r *Reader) FirstSeq() uint64 { return r.firstSeq }

// Close unmaps the file and closes it. Payloads read through the Reader
// are invalid afterwards.
func (r *Reader) Close() error {
	if r.f == nil {
		return ErrClosed
	}
	var errs []error
	if r.mm != nil {
		if err := r.mm.Unmap(); err != nil {
			errs = append(errs, fmt.Errorf("journal reader %s: munmap: %w", r.path, err))
		}
		r.mm = nil
	}
	errs = append(errs, r.f.Close())
	r.f = nil
	return errors.Join(errs...)
}

// ReaderIterator walks the records of a journal through a Reader, in
// sequence order, verifying each. Use it like Iterator:
//
//	it := r.Iterate(from)
//	for it.Next() {
//		rec := it.Record()
//		...
//	}
//	if err := it.Err(); err != nil { ... }
//
// Next returns false at the tail: the first offset that holds no whole,
// verified record and no proof of damage. A record the writer appends
// later is seen by a later call to Next (the Reader maps the file again
// when the writer has grown it). Record().Payload aliases the Reader's
// mapping: it is valid until the next call to Next or Iterate on any
// iterator of the same Reader, or Close.
type ReaderIterator struct {
	r    *Reader
	off  int64
	seq  uint64
	from uint64
	rec  Record
	err  error
}

// Iterate returns an iterator over the records with sequence number from
// and up, mapping the file again if its size changed. from below FirstSeq
// is an error wrapping ErrGap.
func (r *Reader) Iterate(from uint64) *ReaderIterator {
	it := &ReaderIterator{r: r, off: fileHeaderSize, seq: r.firstSeq, from: from}
	switch {
	case r.f == nil:
		it.err = ErrClosed
	case from < r.firstSeq:
		it.err = fmt.Errorf("journal %s: iterate from sequence %d, but the journal starts at %d: %w", r.path, from, r.firstSeq, ErrGap)
	default:
		it.err = r.remap()
	}
	return it
}

// Next advances to the next record and reports whether there is one. It
// returns false at the tail or on an error (see Err). After a false
// without an error, a later Next sees records appended since.
func (it *ReaderIterator) Next() (ok bool) {
	if it.err != nil {
		return false
	}
	if it.r.f == nil {
		it.err = ErrClosed
		return false
	}
	// A writer's Open that truncates a torn tail shrinks the file under the
	// mapping; touching a page past the new end raises SIGBUS, which this
	// turns into ErrShrunk rather than a crash.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			if _, fault := p.(interface{ Addr() uintptr }); !fault {
				panic(p)
			}
			it.err = fmt.Errorf("journal reader %s: at offset %d: %w", it.r.path, it.off, ErrShrunk)
			ok = false
		}
	}()
	for {
		rec, next, f := decodeRecord(it.r.mm, it.off)
		if f == faultNone && rec.Seq != it.seq {
			it.err = &CorruptError{Path: it.r.path, Offset: it.off, Seq: it.seq,
				Reason: fmt.Sprintf("verified record carries sequence %d", rec.Seq)}
			return false
		}
		if f != faultNone {
			again, err := it.stop()
			if err != nil {
				it.err = err
				return false
			}
			if !again {
				return false
			}
			continue
		}
		it.off, it.seq = next, it.seq+1
		if rec.Seq >= it.from {
			it.rec = rec
			return true
		}
	}
}

// stop decides what a stop at the iterator's offset means: the tail
// (false, nil); a file that has changed size since it was mapped, or a
// record that has become whole since it was decoded (true: decode again);
// or damage.
func (it *ReaderIterator) stop() (bool, error) {
	r := it.r
	size := len(r.mm)
	if err := r.remap(); err != nil {
		return false, err
	}
	if len(r.mm) != size {
		return true, nil
	}
	buf := r.mm
	durable := int64(binary.LittleEndian.Uint64(buf[offDurable:]))
	next, nextSeq, later := findVerified(buf, it.off, it.seq, zeroFrom(buf))
	if !later && it.off >= durable {
		return false, nil
	}
	// The writer finished this record before it wrote the proof, so a
	// record being written has become whole by now: look again.
	_, _, f := decodeRecord(buf, it.off)
	if f == faultNone {
		return true, nil
	}
	// A watermark past the mapping may belong to records written into
	// space added after the size check above.
	if err := r.remap(); err != nil {
		return false, err
	}
	if len(r.mm) != size {
		return true, nil
	}
	e := &CorruptError{Path: r.path, Offset: it.off, Seq: it.seq, Reason: f.String()}
	if later {
		e.NextOffset, e.NextSeq = next, nextSeq
	} else {
		e.Reason += fmt.Sprintf(" below the synced watermark %d: those records were made durable, so this is damage, not a record being written", durable)
	}
	return false, e
}

// Record returns the current record.
func (it *ReaderIterator) Record() Record { return it.rec }

// Err returns the error that stopped the iteration, or nil at the tail.
func (it *ReaderIterator) Err() error { return it.err }
