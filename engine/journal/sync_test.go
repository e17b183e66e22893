package journal

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func fileWatermark(t *testing.T, path string) int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	noErr(t, err)
	return int64(binary.LittleEndian.Uint64(data[offDurable:]))
}

func TestSyncPolicies(t *testing.T) {
	tests := []struct {
		policy      SyncPolicy
		syncFlushes bool // Sync flushes
		closeFlush  bool // Close flushes
	}{
		{SyncNone, false, false},
		{SyncBatch, true, true},
		{SyncInterval, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.policy.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "j")
			// An hour-long interval: the flusher never fires during the test.
			j := openT(t, path, Options{Sync: tt.policy, Interval: time.Hour})
			appendN(t, j, 1, 10)
			end := j.published.Load()
			noErr(t, j.Sync())
			if tt.syncFlushes {
				equal(t, uint64(1), j.flushes.Load())
				equal(t, end, fileWatermark(t, path))
			} else {
				equal(t, uint64(0), j.flushes.Load())
				equal(t, int64(fileHeaderSize), fileWatermark(t, path))
			}
			noErr(t, j.Sync())
			if tt.syncFlushes {
				equal(t, uint64(1), j.flushes.Load(), "nothing new: no second msync")
			}
			appendN(t, j, 11, 1)
			noErr(t, j.Close())
			want := int64(fileHeaderSize)
			if tt.closeFlush {
				want = j.end
			}
			equal(t, want, fileWatermark(t, path))
		})
	}
}

func TestFlushAnyPolicy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j := openT(t, path, Options{})
	defer j.Close()
	appendN(t, j, 1, 3)
	noErr(t, j.Flush())
	equal(t, j.end, fileWatermark(t, path))
}

// TestIntervalFlusher checks that the background flusher flushes and that
// Close stops it: its goroutine is gone afterwards.
func TestIntervalFlusher(t *testing.T) {
	before := runtime.NumGoroutine()
	path := filepath.Join(t.TempDir(), "j")
	j := openT(t, path, Options{Sync: SyncInterval, Interval: time.Millisecond})
	appendN(t, j, 1, 5)
	end := j.published.Load()
	waitFor(t, "a background flush", func() bool { return j.flushes.Load() > 0 })
	equal(t, end, fileWatermark(t, path))
	noErr(t, j.Sync())
	done := j.done
	noErr(t, j.Close())
	select {
	case <-done:
	default:
		t.Fatal("Close returned before the flusher exited")
	}
	waitFor(t, "goroutine count back to its level before Open", func() bool { return runtime.NumGoroutine() <= before })
}

// TestFlushConcurrentWithGrowth runs the flusher flat out while the writer
// appends across many chunk growths (remaps), for the race detector.
func TestFlushConcurrentWithGrowth(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j := openT(t, path, Options{Sync: SyncInterval, Interval: time.Microsecond, ChunkSize: 4096})
	want := appendN(t, j, 1, 2000)
	noErr(t, j.Close())
	j = openT(t, path, Options{})
	defer j.Close()
	requireRecords(t, want, readAll(t, j, 1))
}

// waitFor polls cond for up to 10 s: it asserts that something happens,
// not how fast.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
