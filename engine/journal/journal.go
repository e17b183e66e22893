package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edsrzf/mmap-go"
	"golang.org/x/sys/unix"
)

// SyncPolicy says when appended records are forced to stable storage. Every
// policy survives a process crash (the records are in the page cache as soon
// as Append returns); the policies differ on a machine crash.
type SyncPolicy int

const (
	// SyncNone never flushes on its own: the kernel writes pages back when
	// it likes. Sync is a no-op; Flush still flushes.
	SyncNone SyncPolicy = iota
	// SyncBatch flushes when the caller calls Sync, at the end of each batch.
	SyncBatch
	// SyncInterval flushes from a background goroutine every
	// Options.Interval. Sync is a no-op apart from reporting a failed
	// background flush.
	SyncInterval
)

func (p SyncPolicy) String() string {
	switch p {
	case SyncNone:
		return "none"
	case SyncBatch:
		return "batch"
	case SyncInterval:
		return "interval"
	}
	return fmt.Sprintf("SyncPolicy(%d)", int(p))
}

// Options configure Open. The zero value is a valid configuration.
type Options struct {
	// Sync is the flush policy; SyncNone by default.
	Sync SyncPolicy
	// Interval is the background flush period for SyncInterval; 10ms by default.
	Interval time.Duration
	// ChunkSize is the step by which the file grows (rounded up to the page
	// size); 16 MiB by default. Appends between growths make no syscall.
	ChunkSize int64
	// FirstSeq is the sequence number of the first record of a new journal
	// (one started after a snapshot); 1 by default. Ignored when the file
	// already holds a journal: its header says where it starts.
	FirstSeq uint64
}

const (
	defaultInterval  = 10 * time.Millisecond
	defaultChunkSize = 16 << 20
)

func (o Options) withDefaults() (Options, error) {
	switch o.Sync {
	case SyncNone, SyncBatch, SyncInterval:
	default:
		return o, fmt.Errorf("journal: unknown sync policy %d", int(o.Sync))
	}
	if o.Interval < 0 || o.ChunkSize < 0 {
		return o, fmt.Errorf("journal: negative Interval (%v) or ChunkSize (%d)", o.Interval, o.ChunkSize)
	}
	if o.Interval == 0 {
		o.Interval = defaultInterval
	}
	if o.ChunkSize == 0 {
		o.ChunkSize = defaultChunkSize
	}
	page := int64(os.Getpagesize())
	o.ChunkSize = (o.ChunkSize + page - 1) / page * page
	if o.FirstSeq == 0 {
		o.FirstSeq = 1
	}
	return o, nil
}

// Recovery says what Open found in the file.
type Recovery struct {
	Created   bool   // the file was missing or empty: a new journal
	Records   uint64 // whole verified records kept
	FirstSeq  uint64 // sequence number of the first record
	NextSeq   uint64 // sequence number the next Append gets
	End       int64  // byte offset just past the last kept record
	TornBytes int64  // bytes of an incomplete last record dropped (0: clean)
}

// Journal is an append-only, checksummed record log in a memory-mapped file.
//
// A Journal has a single writer: Append, Sync, Iterate and Close must be
// called from one goroutine at a time, and Open takes an exclusive flock so a
// second Journal on the same file, in any process, fails with ErrLocked. The
// lock dies with the process, so a successor can open the file after a kill.
// Flush may be called from any goroutine.
type Journal struct {
	path     string
	f        *os.File
	opts     Options
	recovery Recovery
	firstSeq uint64
	nextSeq  uint64

	// mm maps the whole file. The writer reads it without mu (it is its
	// only writer); growth replaces it under mu so a concurrent Flush
	// never msyncs an unmapped range.
	mm    mmap.MMap
	end   int64 // end of data; written by the writer only
	limit int64 // the limit in the file header: no byte written at or past it
	// marks[i] is the offset of record firstSeq+i*markEvery, so that
	// Iterate starts near its first record instead of at the first one.
	marks []int64

	mu        sync.Mutex
	published atomic.Int64 // end, published for Flush
	durable   int64        // offset below which everything is msync'd; under mu
	flushErr  error        // first failed background flush, sticky; under mu
	flushes   atomic.Uint64

	stop chan struct{} // closed by Close to stop the interval flusher
	done chan struct{} // closed by the flusher when it exits
}

// Open opens the journal at path, creating it if missing, verifies every
// record and prepares it for appending.
//
// A torn tail (the last record cut mid-write, a partial header) is dropped:
// the file is truncated to the last whole verified record and
// Recovery.TornBytes says how much went. Damage that a crash mid-append cannot
// explain (a bad record with verified records after it, a bad record below
// the synced watermark, an out-of-order record) is refused with a
// *CorruptError; the file is left untouched. An empty file opens as a new,
// empty journal.
func Open(path string, opts Options) (*Journal, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	j, err := open(f, path, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	return j, nil
}

func open(f *os.File, path string, opts Options) (*Journal, error) {
	fd := int(f.Fd())
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("open journal %s: %w: close the other Journal or stop the process that holds it", path, ErrLocked)
		}
		return nil, fmt.Errorf("open journal %s: flock: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("open journal %s: not a regular file: %w", path, ErrNotJournal)
	}
	size := fi.Size()
	created := size == 0
	if created {
		var hdr [fileHeaderSize]byte
		putFileHeader(hdr[:], opts.FirstSeq)
		if _, err := f.WriteAt(hdr[:], 0); err != nil {
			return nil, fmt.Errorf("create journal %s: %w", path, err)
		}
		if opts.Sync != SyncNone {
			if err := syncDir(filepath.Dir(path)); err != nil {
				return nil, fmt.Errorf("create journal %s: %w", path, err)
			}
		}
		size = fileHeaderSize
	}
	if size < fileHeaderSize {
		return nil, fmt.Errorf("open journal %s: file is %d bytes, shorter than the %d-byte header: %w", path, size, fileHeaderSize, ErrNotJournal)
	}
	mm, err := mmap.MapRegion(f, int(size), mmap.RDWR, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("open journal %s: mmap: %w", path, err)
	}
	firstSeq, durable, res, err := verify(mm)
	if err == nil && res.torn > 0 {
		mm, err = truncateTail(f, mm, res.end)
	}
	if err != nil {
		if mm != nil {
			mm.Unmap()
		}
		if cerr, ok := errors.AsType[*CorruptError](err); ok {
			cerr.Path = path
			return nil, cerr
		}
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	j := &Journal{
		path: path, f: f, opts: opts, mm: mm,
		end: res.end, durable: durable, marks: res.marks,
		firstSeq: firstSeq, nextSeq: res.nextSeq,
		recovery: Recovery{
			Created: created, Records: res.records,
			FirstSeq: firstSeq, NextSeq: res.nextSeq,
			End: res.end, TornBytes: res.torn,
		},
	}
	j.raiseLimit(res.end)
	j.published.Store(res.end)
	if opts.Sync == SyncInterval {
		j.stop, j.done = make(chan struct{}), make(chan struct{})
		go j.flusher()
	}
	return j, nil
}

// verify checks the header and records of a mapped journal image.
func verify(buf []byte) (firstSeq uint64, durable int64, res scanResult, err error) {
	firstSeq, durable, err = parseFileHeader(buf)
	if err != nil {
		return 0, 0, res, err
	}
	res, cerr := scan(buf, firstSeq, durable)
	if cerr != nil {
		return 0, 0, res, cerr
	}
	return firstSeq, durable, res, nil
}

// truncateTail cuts the file at end, discarding a torn tail, and maps the
// result. Truncating (rather than zeroing in place) guarantees the space the
// next records go into reads as zeros.
func truncateTail(f *os.File, mm mmap.MMap, end int64) (mmap.MMap, error) {
	if err := mm.Unmap(); err != nil {
		return nil, fmt.Errorf("munmap before truncating the torn tail: %w", err)
	}
	if err := f.Truncate(end); err != nil {
		return nil, fmt.Errorf("truncate torn tail at %d: %w", end, err)
	}
	mm, err := mmap.MapRegion(f, int(end), mmap.RDWR, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("mmap: %w", err)
	}
	return mm, nil
}

// Recovery reports what Open found.
func (j *Journal) Recovery() Recovery { return j.recovery }

// FirstSeq is the sequence number of the journal's first record.
func (j *Journal) FirstSeq() uint64 { return j.firstSeq }

// NextSeq is the sequence number the next Append returns; NextSeq()-1 is the
// last record's (or FirstSeq()-1 when the journal is empty).
func (j *Journal) NextSeq() uint64 { return j.nextSeq }

// Path is the journal file's path.
func (j *Journal) Path() string { return j.path }

// Append adds a record of type typ holding a copy of payload and returns its
// sequence number. In steady state it is a memcpy into the mapping: no
// syscall, no allocation. Every ChunkSize bytes it grows the file and remaps.
// The record survives a process crash as soon as Append returns; machine
// crashes are covered by the sync policy.
func (j *Journal) Append(typ uint16, payload []byte) (uint64, error) {
	if j.mm == nil {
		return 0, ErrClosed
	}
	if len(payload) > MaxPayload {
		return 0, fmt.Errorf("journal %s: append of %d bytes (limit %d): %w", j.path, len(payload), MaxPayload, ErrTooLarge)
	}
	n := recordSize(len(payload))
	if j.end+n > int64(len(j.mm)) {
		if err := j.grow(j.end + n); err != nil {
			return 0, err
		}
	}
	if j.end+n > j.limit {
		j.raiseLimit(j.end + n)
	}
	seq := j.nextSeq
	if (seq-j.firstSeq)%markEvery == 0 {
		j.marks = append(j.marks, j.end)
	}
	putRecord(j.mm[j.end:j.end+n], typ, seq, payload)
	j.end += n
	j.nextSeq++
	j.published.Store(j.end)
	return seq, nil
}

// raiseLimit moves the file header's limit past need, in limitStep steps
// (never past the end of the file), before anything is written there.
func (j *Journal) raiseLimit(need int64) {
	j.limit = min((need+limitStep-1)/limitStep*limitStep, int64(len(j.mm)))
	putLimit(j.mm, j.limit)
}

// grow extends the file to hold at least need bytes, in whole chunks, and
// maps it again. Blocks are allocated with fallocate where the file system
// supports it, so a full disk is an error here rather than a SIGBUS on a
// later store into a sparse page.
func (j *Journal) grow(need int64) error {
	size := (need + j.opts.ChunkSize - 1) / j.opts.ChunkSize * j.opts.ChunkSize
	old := int64(len(j.mm))
	err := unix.Fallocate(int(j.f.Fd()), 0, old, size-old)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		err = j.f.Truncate(size)
	}
	if err != nil {
		return fmt.Errorf("journal %s: grow to %d bytes: %w", j.path, size, err)
	}
	mm, err := mmap.MapRegion(j.f, int(size), mmap.RDWR, 0, 0)
	if err != nil {
		return fmt.Errorf("journal %s: remap %d bytes: %w", j.path, size, err)
	}
	j.mu.Lock()
	prev := j.mm
	j.mm = mm
	j.mu.Unlock()
	if err := prev.Unmap(); err != nil {
		return fmt.Errorf("journal %s: unmap old mapping: %w", j.path, err)
	}
	return nil
}

// Sync marks the end of a batch. Under SyncBatch it flushes every record
// appended so far to stable storage before returning; under SyncNone it does
// nothing; under SyncInterval it returns the error of a failed background
// flush, if any. Callers call it after every batch whatever the policy.
func (j *Journal) Sync() error {
	if j.mm == nil {
		return ErrClosed
	}
	switch j.opts.Sync {
	case SyncBatch:
		return j.Flush()
	case SyncInterval:
		j.mu.Lock()
		defer j.mu.Unlock()
		return j.flushErr
	}
	return nil
}

// Flush forces every record appended so far to stable storage (msync), then
// advances the synced watermark in the file header. Records below the
// watermark are known durable: Open treats damage there as corruption, never
// as a torn tail. The watermark itself reaches the disk with the next flush
// (or page writeback), so on disk it lags by at most one flush.
func (j *Journal) Flush() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.mm == nil {
		return ErrClosed
	}
	end := j.published.Load()
	if end <= j.durable {
		return nil
	}
	if err := unix.Msync(j.mm[:end], unix.MS_SYNC); err != nil {
		return fmt.Errorf("journal %s: msync: %w", j.path, err)
	}
	j.durable = end
	binary.LittleEndian.PutUint64(j.mm[offDurable:], uint64(end))
	j.flushes.Add(1)
	return nil
}

// flusher is the SyncInterval background goroutine.
func (j *Journal) flusher() {
	defer close(j.done)
	t := time.NewTicker(j.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-j.stop:
			return
		case <-t.C:
			if err := j.Flush(); err != nil {
				j.mu.Lock()
				if j.flushErr == nil {
					j.flushErr = err
				}
				j.mu.Unlock()
			}
		}
	}
}

// Close stops the background flusher, flushes (unless the policy is
// SyncNone), unmaps the file and releases the writer lock. The preallocated
// zero space after the last record stays in the file; Open ignores it.
func (j *Journal) Close() error {
	if j.mm == nil {
		return ErrClosed
	}
	if j.stop != nil {
		close(j.stop)
		<-j.done
	}
	var errs []error
	if j.opts.Sync != SyncNone {
		errs = append(errs, j.Flush())
	}
	j.mu.Lock()
	errs = append(errs, j.flushErr)
	if err := j.mm.Unmap(); err != nil {
		errs = append(errs, fmt.Errorf("journal %s: munmap: %w", j.path, err))
	}
	j.mm = nil
	j.mu.Unlock()
	errs = append(errs, j.f.Close())
	return errors.Join(errs...)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}
