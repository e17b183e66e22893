package engine

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/commitcore/commitcore/engine/journal"
)

// walRecord is the i-th record the writer of these tests appends: commits,
// with every third transaction aborted after its commit record.
func walRecord(i int) Record {
	tx := TxID(i/2 + 1)
	if i%2 == 1 && tx%3 == 0 {
		return Record{Kind: RecAbort, Epoch: 1, Tx: tx, Reason: ReasonTerminated}
	}
	r := Record{Kind: RecCommit, Epoch: 1, Tx: tx, Cmd: order(uint64(i))}
	r.Out.NFills = 1
	r.Out.Fills[0] = Fill{TradeID: TradeIDOf(tx, 0), Symbol: 1, TakerSide: Buy, MakerOrder: 1, TakerOrder: uint64(tx), Maker: 9, Taker: 2, Price: 100, Qty: 5}
	return r
}

// TestJournalReaderFollowsLog reads a JournalLog through a JournalReader
// while a writer goroutine appends to it, as a restarted participant reads
// the live coordinator's journal, and checks that a sequence ranged twice
// sees the same records both times.
func TestJournalReaderFollowsLog(t *testing.T) {
	const n = 2000
	path := filepath.Join(t.TempDir(), "journal")
	j, err := journal.Open(path, journal.Options{ChunkSize: 4096})
	require.NoError(t, err)
	log := NewJournalLog(j)
	rec := walRecord(0)
	require.NoError(t, log.Append(&rec))

	jr, err := OpenJournalReader(path)
	require.NoError(t, err)
	defer func() { require.NoError(t, jr.Close()) }()

	done := make(chan error, 1)
	go func() {
		for i := 1; i < n; i++ {
			r := walRecord(i)
			if err := log.Append(&r); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()

	seen := 0
	for seen < n {
		var rerr error
		seq := jr.Records(&rerr)
		first := 0
		for r := range seq {
			want := walRecord(first)
			require.Equal(t, want, *r, "record %d", first)
			first++
		}
		require.NoError(t, rerr)
		second := 0
		for range seq {
			second++
		}
		require.NoError(t, rerr)
		require.Equal(t, first, second, "a second pass over one sequence saw other records")
		require.GreaterOrEqual(t, first, seen)
		seen = first
	}
	require.NoError(t, <-done)
	require.NoError(t, j.Close())
}

// TestJournalReaderRefusesForeignRecords checks that a journal record that
// is not an encoded Record ends the sequence with an error.
func TestJournalReaderRefusesForeignRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	j, err := journal.Open(path, journal.Options{})
	require.NoError(t, err)
	defer j.Close()
	rec := walRecord(0)
	require.NoError(t, NewJournalLog(j).Append(&rec))
	_, err = j.Append(journalRecord+1, []byte("not a record"))
	require.NoError(t, err)

	jr, err := OpenJournalReader(path)
	require.NoError(t, err)
	defer jr.Close()
	var rerr error
	n := 0
	for range jr.Records(&rerr) {
		n++
	}
	require.Equal(t, 1, n)
	require.ErrorContains(t, rerr, "has type")
}
