package engine

import (
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"
)

func unsafeBytes(s []uint64) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*8)
}

func TestTxID(t *testing.T) {
	tx := MakeTxID(MaxEpoch, MaxSeq)
	eq(t, "epoch", MaxEpoch, EpochOf(tx))
	if MakeTxID(2, 1) <= MakeTxID(1, MaxSeq) {
		t.Fatal("tx ids of a later epoch must be larger")
	}
	for _, c := range []struct {
		e   Epoch
		seq uint64
	}{{0, 1}, {MaxEpoch + 1, 1}, {1, 0}, {1, MaxSeq + 1}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("MakeTxID(%d, %d) did not panic", c.e, c.seq)
				}
			}()
			MakeTxID(c.e, c.seq)
		}()
	}
}

func TestDecisionTableLifecycle(t *testing.T) {
	tab := newTable(t, 64)
	tx := MakeTxID(1, 5)
	if err := tab.Open(tx); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("open before the epoch is raised: %v", err)
	}
	// The failed open aborted the slot rather than leave it undecided.
	d, r, err := tab.Lookup(tx)
	must(t, err)
	eq(t, "decision", Abort, d)
	eq(t, "reason", ReasonTerminated, r)
	must(t, tab.Release(tx))

	must(t, tab.AdvanceEpoch(1))
	if err := tab.AdvanceEpoch(1); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("advance to the same epoch: %v", err)
	}
	tx = MakeTxID(1, 6)
	_, _, err = tab.Lookup(tx)
	eq(t, "lookup before open", ErrNotInTable, err)
	must(t, tab.Open(tx))
	if err := tab.Open(tx); !errors.Is(err, ErrSlotBusy) {
		t.Fatalf("second open: %v", err)
	}
	if err := tab.Open(tx + 64); !errors.Is(err, ErrSlotBusy) {
		t.Fatalf("open of a tx sharing an unfinished slot: %v", err)
	}
	if err := tab.Release(tx); err == nil {
		t.Fatal("released an undecided slot")
	}
	d, r, err = tab.Commit(tx)
	must(t, err)
	eq(t, "commit", Commit, d)
	eq(t, "commit reason", ReasonNone, r)
	d, r, err = tab.Abort(tx, ReasonCircuitBreaker)
	must(t, err)
	eq(t, "abort after commit keeps", Commit, d)
	eq(t, "reason after commit", ReasonNone, r)
	var seen []Slot
	for s := range tab.InFlight() {
		seen = append(seen, s)
	}
	eq(t, "in flight", []Slot{{Tx: tx, Decision: Commit}}, seen)
	must(t, tab.Release(tx))
	for s := range tab.InFlight() {
		t.Fatalf("released slot still in flight: %+v", s)
	}
	// Reuse by a later tx of the same slot; the old id is gone.
	must(t, tab.Open(tx+64))
	_, _, err = tab.Lookup(tx)
	eq(t, "old tx after reuse", ErrNotInTable, err)
	d, r, err = tab.Abort(tx+64, ReasonCircuitBreaker)
	must(t, err)
	eq(t, "abort", Abort, d)
	eq(t, "abort reason", ReasonCircuitBreaker, r)
	d, r, err = tab.Commit(tx + 64)
	must(t, err)
	eq(t, "commit after abort keeps", Abort, d)
	eq(t, "reason kept", ReasonCircuitBreaker, r)
	must(t, tab.Release(tx+64))
	if err := tab.Open(tx); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("open of an id older than the slot's: %v", err)
	}
	if _, _, err := tab.Abort(tx+64, ReasonNone); err == nil {
		t.Fatal("abort with ReasonNone accepted")
	}
}

func TestDecisionTableFencesStaleOpen(t *testing.T) {
	tab := newTable(t, 64)
	must(t, tab.AdvanceEpoch(1))
	must(t, tab.AdvanceEpoch(2)) // a backup took over
	old := MakeTxID(1, 1)
	if err := tab.Open(old); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("stale open: %v", err)
	}
	d, _, err := tab.Lookup(old)
	must(t, err)
	eq(t, "stale open leaves", Abort, d)
}

func TestDecisionTableLayout(t *testing.T) {
	for _, n := range []int{0, 32, 65, 1 << 25} {
		if _, err := InitDecisionTable(make([]byte, DecisionTableSize(max(n, 1))), n); !errors.Is(err, ErrTableLayout) {
			t.Errorf("%d slots: %v", n, err)
		}
	}
	if _, err := InitDecisionTable(make([]byte, DecisionTableSize(64)-1), 64); !errors.Is(err, ErrTableLayout) {
		t.Errorf("short region: %v", err)
	}
	mem := make([]byte, DecisionTableSize(128)+8)
	if _, err := InitDecisionTable(mem[1:], 64); !errors.Is(err, ErrTableLayout) {
		t.Errorf("misaligned region: %v", err)
	}
	_, err := InitDecisionTable(mem, 128)
	must(t, err)
	tab, err := OpenDecisionTable(mem)
	must(t, err)
	eq(t, "len", 128, tab.Len())
	for _, c := range []struct {
		name string
		edit func([]byte)
		size int
	}{
		{"magic", func(b []byte) { b[0] ^= 1 }, len(mem)},
		{"version", func(b []byte) { b[8] = 2 }, len(mem)},
		{"log2", func(b []byte) { b[12] = 40 }, len(mem)},
		{"truncated", func([]byte) {}, DecisionTableSize(64)},
		{"header only", func([]byte) {}, 10},
	} {
		b := append([]byte(nil), mem...)
		c.edit(b)
		if _, err := OpenDecisionTable(b[:c.size]); !errors.Is(err, ErrTableLayout) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func TestDecisionTableCorruptSlots(t *testing.T) {
	mem := make([]byte, DecisionTableSize(64))
	tab, err := InitDecisionTable(mem, 64)
	must(t, err)
	must(t, tab.AdvanceEpoch(1))
	tx := MakeTxID(1, 3)
	tag := uint64(tx) >> 6
	for _, w := range []uint64{
		tag<<slotTagShift | 3,                                     // decision 3
		tag<<slotTagShift | slotDone,                              // done while undecided
		tag<<slotTagShift | uint64(Abort),                         // abort without reason
		tag<<slotTagShift | uint64(ReasonTimeout)<<3 | 1,          // commit with a reason
		tag<<slotTagShift | uint64(NumReasons)<<3 | uint64(Abort), // undefined reason
		uint64(Abort) | uint64(ReasonTimeout)<<3,                  // tag 0
	} {
		binary.LittleEndian.PutUint64(mem[tableHeaderSize+8*3:], w)
		if _, _, err := tab.Lookup(tx); !errors.Is(err, ErrCorruptSlot) && !errors.Is(err, ErrNotInTable) {
			t.Errorf("lookup of %#x: %v", w, err)
		}
		if _, _, err := tab.Abort(tx, ReasonTimeout); err == nil {
			t.Errorf("abort over %#x succeeded", w)
		}
		if err := tab.Open(tx); err == nil {
			t.Errorf("open over %#x succeeded", w)
		}
		n := 0
		for s := range tab.InFlight() {
			n++
			if s.Err == nil {
				t.Errorf("in flight over %#x: %+v", w, s)
			}
		}
		eq(t, "corrupt slots listed", 1, n)
	}
}

// TestDecisionTableRace races a committer against aborters on every slot:
// each slot must end with exactly one decision, the one every racer saw.
func TestDecisionTableRace(t *testing.T) {
	tab := newTable(t, 64)
	must(t, tab.AdvanceEpoch(1))
	for round := uint64(0); round < 50; round++ {
		var txs []TxID
		for i := uint64(1); i <= 64; i++ {
			tx := MakeTxID(1, round*64+i)
			must(t, tab.Open(tx))
			txs = append(txs, tx)
		}
		seen := make([][4]Decision, len(txs))
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i, tx := range txs {
					var d Decision
					var err error
					if g == 0 {
						d, _, err = tab.Commit(tx)
					} else {
						d, _, err = tab.Abort(tx, ReasonCircuitBreaker)
					}
					if err != nil {
						t.Error(err)
					}
					seen[i][g] = d
				}
			}()
		}
		wg.Wait()
		for i, tx := range txs {
			d, _, err := tab.Lookup(tx)
			must(t, err)
			for g := range 4 {
				if seen[i][g] != d {
					t.Fatalf("tx %d: racer %d saw %v, table has %v", tx, g, seen[i][g], d)
				}
			}
			must(t, tab.Release(tx))
		}
	}
}

// FuzzDecisionTable opens arbitrary bytes as a table and runs every
// operation over them: nothing may panic or read out of bounds.
func FuzzDecisionTable(f *testing.F) {
	mem := make([]byte, DecisionTableSize(64))
	tab, _ := InitDecisionTable(mem, 64)
	_ = tab.AdvanceEpoch(1)
	_ = tab.Open(MakeTxID(1, 1))
	_, _, _ = tab.Commit(MakeTxID(1, 1))
	_ = tab.Open(MakeTxID(1, 2))
	f.Add(append([]byte(nil), mem...), uint64(MakeTxID(1, 2)))
	f.Fuzz(func(t *testing.T, b []byte, tx uint64) {
		buf := make([]uint64, (len(b)+7)/8) // 8-byte aligned copy
		mem := make([]byte, len(b))
		if len(buf) > 0 {
			mem = unsafeBytes(buf)[:len(b)]
		}
		copy(mem, b)
		tab, err := OpenDecisionTable(mem)
		if err != nil {
			return
		}
		id := TxID(tx)
		_, _, _ = tab.Lookup(id)
		_ = tab.Open(id)
		_, _, _ = tab.Abort(id, ReasonCircuitBreaker)
		_, _, _ = tab.Commit(id)
		_ = tab.Release(id)
		_ = tab.AdvanceEpoch(tab.Epoch() + 1)
		for s := range tab.InFlight() {
			if s.Err == nil {
				_, _, _ = tab.Lookup(s.Tx)
			}
		}
	})
}

// BenchmarkDecisionTable measures a transaction's life in the table (open,
// commit CAS, release), against the plain atomic CAS it is built on.
func BenchmarkDecisionTable(b *testing.B) {
	b.Run("open-commit-release", func(b *testing.B) {
		tab := newTable(b, 1024)
		must(b, tab.AdvanceEpoch(1))
		b.ReportAllocs()
		seq := uint64(0)
		for b.Loop() {
			seq++
			tx := MakeTxID(1, seq)
			if err := tab.Open(tx); err != nil {
				b.Fatal(err)
			}
			if d, _, err := tab.Commit(tx); err != nil || d != Commit {
				b.Fatal(d, err)
			}
			if err := tab.Release(tx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("atomic-cas-x3", func(b *testing.B) {
		var w atomic.Uint64
		b.ReportAllocs()
		for b.Loop() {
			v := w.Load()
			w.CompareAndSwap(v, v+1)
			w.CompareAndSwap(v+1, v+2)
			w.CompareAndSwap(v+2, v+3)
		}
	})
}
