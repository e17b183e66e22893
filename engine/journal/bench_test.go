package journal

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/sys/unix"
)

const (
	benchPayload = 128       // bytes per record
	benchBatch   = 64        // records per batch in the SyncBatch benchmarks
	benchRotate  = 256 << 20 // start a fresh file past this size, to bound disk use
)

// Each latency sample includes two clock reads (time.Now, time.Since), the
// same in every benchmark here, so the peers compare like with like.

func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(10*time.Second), 3)
}

func reportHist(b *testing.B, h *hdrhistogram.Histogram, unit string) {
	b.ReportMetric(float64(h.ValueAtQuantile(50)), "p50-"+unit)
	b.ReportMetric(float64(h.ValueAtQuantile(99)), "p99-"+unit)
	b.ReportMetric(float64(h.ValueAtQuantile(99.9)), "p99.9-"+unit)
	b.ReportMetric(float64(h.ValueAtQuantile(99.99)), "p99.99-"+unit)
	b.ReportMetric(float64(h.Max()), "max-"+unit)
}

// benchJournal opens a fresh journal under dir, closing and deleting j.
func benchJournal(b *testing.B, j *Journal, path string, pol SyncPolicy) *Journal {
	if j != nil {
		noErr(b, j.Close())
		noErr(b, os.Remove(path))
	}
	return openT(b, path, Options{Sync: pol, ChunkSize: 64 << 20})
}

// BenchmarkJournalAppend appends 128-byte records with SyncNone: a memcpy and
// a CRC into the mapping. Peer: BenchmarkFileWriteAppend.
func BenchmarkJournalAppend(b *testing.B) {
	path := filepath.Join(b.TempDir(), "j")
	j := benchJournal(b, nil, path, SyncNone)
	payload := make([]byte, benchPayload)
	h := newHist()
	b.ReportAllocs()
	b.SetBytes(recordSize(benchPayload))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if j.end > benchRotate {
			b.StopTimer()
			j = benchJournal(b, j, path, SyncNone)
			b.StartTimer()
		}
		payload[0] = byte(i)
		t0 := time.Now()
		if _, err := j.Append(1, payload); err != nil {
			b.Fatal(err)
		}
		h.RecordValue(time.Since(t0).Nanoseconds())
	}
	b.StopTimer()
	reportHist(b, h, "ns")
	noErr(b, j.Close())
}

// benchFile is the peer's file: the same records, written with write(2).
type benchFile struct {
	f    *os.File
	path string
	size int64
}

func (bf *benchFile) reopen(b *testing.B) {
	if bf.f != nil {
		noErr(b, bf.f.Close())
		noErr(b, os.Remove(bf.path))
	}
	f, err := os.OpenFile(bf.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	noErr(b, err)
	bf.f, bf.size = f, 0
}

// BenchmarkFileWriteAppend is BenchmarkJournalAppend's peer: each record,
// encoded and checksummed the same way, goes out with os.File.Write.
func BenchmarkFileWriteAppend(b *testing.B) {
	bf := &benchFile{path: filepath.Join(b.TempDir(), "f")}
	bf.reopen(b)
	payload := make([]byte, benchPayload)
	rec := make([]byte, recordSize(benchPayload))
	h := newHist()
	b.ReportAllocs()
	b.SetBytes(int64(len(rec)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if bf.size > benchRotate {
			b.StopTimer()
			bf.reopen(b)
			b.StartTimer()
		}
		payload[0] = byte(i)
		t0 := time.Now()
		putRecord(rec, 1, uint64(i+1), payload)
		if _, err := bf.f.Write(rec); err != nil {
			b.Fatal(err)
		}
		h.RecordValue(time.Since(t0).Nanoseconds())
		bf.size += int64(len(rec))
	}
	b.StopTimer()
	reportHist(b, h, "ns")
	noErr(b, bf.f.Close())
}

// BenchmarkJournalAppendSyncBatch: one op is a batch of 64 appends and a
// Sync under SyncBatch (msync). Percentiles are per batch.
// Peer: BenchmarkFileWriteAppendSyncBatch.
func BenchmarkJournalAppendSyncBatch(b *testing.B) {
	path := filepath.Join(b.TempDir(), "j")
	j := benchJournal(b, nil, path, SyncBatch)
	payload := make([]byte, benchPayload)
	h := newHist()
	b.ReportAllocs()
	b.SetBytes(benchBatch * recordSize(benchPayload))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if j.end > benchRotate {
			b.StopTimer()
			j = benchJournal(b, j, path, SyncBatch)
			b.StartTimer()
		}
		t0 := time.Now()
		for k := range benchBatch {
			payload[0] = byte(k)
			if _, err := j.Append(1, payload); err != nil {
				b.Fatal(err)
			}
		}
		if err := j.Sync(); err != nil {
			b.Fatal(err)
		}
		h.RecordValue(time.Since(t0).Nanoseconds())
	}
	b.StopTimer()
	reportHist(b, h, "ns")
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "records/s")
	noErr(b, j.Close())
}

// BenchmarkFileWriteAppendSyncBatch: 64 os.File.Write calls and an
// fdatasync per op.
func BenchmarkFileWriteAppendSyncBatch(b *testing.B) {
	bf := &benchFile{path: filepath.Join(b.TempDir(), "f")}
	bf.reopen(b)
	payload := make([]byte, benchPayload)
	rec := make([]byte, recordSize(benchPayload))
	h := newHist()
	b.ReportAllocs()
	b.SetBytes(benchBatch * int64(len(rec)))
	b.ResetTimer()
	seq := uint64(0)
	for i := 0; i < b.N; i++ {
		if bf.size > benchRotate {
			b.StopTimer()
			bf.reopen(b)
			b.StartTimer()
		}
		t0 := time.Now()
		for k := range benchBatch {
			payload[0] = byte(k)
			seq++
			putRecord(rec, 1, seq, payload)
			if _, err := bf.f.Write(rec); err != nil {
				b.Fatal(err)
			}
		}
		if err := unix.Fdatasync(int(bf.f.Fd())); err != nil {
			b.Fatal(err)
		}
		h.RecordValue(time.Since(t0).Nanoseconds())
		bf.size += benchBatch * int64(len(rec))
	}
	b.StopTimer()
	reportHist(b, h, "ns")
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "records/s")
	noErr(b, bf.f.Close())
}
