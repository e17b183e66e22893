package engine

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/commitcore/commitcore/engine/journal"
)

// TestJournalRecordsNewestFirst checks that the newest-first view yields
// every record exactly once, the newest chunk first, and stops when asked.
func TestJournalRecordsNewestFirst(t *testing.T) {
	j, err := journal.Open(filepath.Join(t.TempDir(), "j"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	log := NewJournalLog(j)
	const n = 1000
	for i := range uint64(n) {
		r := Record{Kind: RecAbort, Epoch: 1, Tx: MakeTxID(1, i+1), Reason: ReasonTimeout}
		if err := log.Append(&r); err != nil {
			t.Fatal(err)
		}
	}
	var rerr error
	var got []TxID
	for r := range JournalRecordsNewestFirst(j, &rerr) {
		got = append(got, r.Tx)
	}
	if rerr != nil {
		t.Fatal(rerr)
	}
	if len(got) != n {
		t.Fatalf("%d records, want %d", len(got), n)
	}
	if got[0] != MakeTxID(1, n-63) || got[63] != MakeTxID(1, n) || got[64] != MakeTxID(1, n-191) {
		t.Errorf("chunks out of order: %d, %d, %d", got[0], got[63], got[64])
	}
	sorted := slices.Clone(got)
	slices.Sort(sorted)
	for i, tx := range sorted {
		if tx != MakeTxID(1, uint64(i)+1) {
			t.Fatalf("record %d: tx %d, want every tx once", i, tx)
		}
	}
	seen := 0
	for range JournalRecordsNewestFirst(j, &rerr) {
		if seen++; seen == 10 {
			break
		}
	}
	if seen != 10 || rerr != nil {
		t.Errorf("early stop: %d records, %v", seen, rerr)
	}
}
