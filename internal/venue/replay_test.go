package venue

import (
	"bytes"
	"iter"
	"path/filepath"
	"testing"

	"github.com/commitcore/commitcore/engine"
	"github.com/commitcore/commitcore/engine/journal"
	"github.com/stretchr/testify/require"
)

// after returns the records of recs for transactions above tx.
func after(recs iter.Seq[*engine.Record], tx engine.TxID) iter.Seq[*engine.Record] {
	return func(yield func(*engine.Record) bool) {
		for r := range recs {
			if r.Tx > tx && !yield(r) {
				return
			}
		}
	}
}

// TestReplayJournal journals a run of the flow through the three
// participants (with aborts forced at random), then rebuilds each
// participant from the journal alone, and from a snapshot taken mid-run
// plus the records after it, and requires the rebuilt participants to
// equal the live ones byte for byte (equal Digests).
func TestReplayJournal(t *testing.T) {
	c := DefaultConfig()
	c.Symbols, c.Accounts, c.Depth = 4, 40, 30
	const steps = 6000

	j, err := journal.Open(filepath.Join(t.TempDir(), "journal"), journal.Options{})
	require.NoError(t, err)
	defer j.Close()
	parts, err := NewAll(c)
	require.NoError(t, err)
	ps := make([]engine.Participant, len(parts))
	recs := make([]*Recorder, len(parts))
	for i, p := range parts {
		recs[i] = NewRecorder(newChaos(p, uint64(i), 10))
		ps[i] = recs[i]
	}
	k, err := engine.New(slackConfig(engine.Config{Idle: engine.IdleYield, Runners: 3, MaxInFlight: 32, Log: engine.NewJournalLog(j)}), ps...)
	require.NoError(t, err)
	defer k.Close()
	f := NewFlow(c)
	var last engine.TxID
	committed, fills := 0, 0
	d := newDriver(t, k, 32, func(r *engine.Result) {
		last = max(last, r.Tx)
		if r.Reason == engine.ReasonNone {
			committed++
			fills += r.Out.NFills
		}
		f.Observe(r)
	})
	var cmd engine.Command
	run := func(n int) {
		for range n {
			f.Next(&cmd)
			d.send(&cmd)
		}
		d.drain()
	}

	run(steps / 2)
	snaps := make([]bytes.Buffer, len(parts))
	mid := make([][32]byte, len(parts))
	for i, p := range parts {
		require.NoError(t, p.Snapshot(&snaps[i]))
		mid[i], err = Digest(p)
		require.NoError(t, err)
	}
	snapTx := last
	run(steps - steps/2)
	require.NoError(t, k.Close())
	require.Positive(t, fills)

	// Nodes in PRECOMMITTED commit on their own after the commit timeout,
	// so participants may commit out of TxID order: the replay must not
	// care.
	inversions := 0
	for _, rec := range recs {
		c := rec.Committed()
		for i := 1; i < len(c); i++ {
			if c[i] < c[i-1] {
				inversions++
			}
		}
	}

	var rerr error
	journaled := engine.JournalRecords(j, &rerr)
	for i, r := range Roles {
		live, err := Digest(parts[i])
		require.NoError(t, err)
		require.NotEqual(t, mid[i], live, "%v: the second half of the run changed nothing", r)

		full, err := Replay(c, r, journaled)
		require.NoError(t, err)
		require.NoError(t, rerr)
		got, err := Digest(full)
		require.NoError(t, err)
		require.Equal(t, live, got, "%v rebuilt from the whole journal differs from the live one", r)
		require.NoError(t, Err(Audit(full)))

		fromSnap, err := New(c, r)
		require.NoError(t, err)
		require.NoError(t, fromSnap.Restore(&snaps[i]))
		got, err = Digest(fromSnap)
		require.NoError(t, err)
		require.Equal(t, mid[i], got, "%v restored from its snapshot differs from the snapshot's state", r)
		require.NoError(t, ReplayOnto(fromSnap, after(journaled, snapTx)))
		require.NoError(t, rerr)
		got, err = Digest(fromSnap)
		require.NoError(t, err)
		require.Equal(t, live, got, "%v rebuilt from the mid-run snapshot and the rest of the journal differs from the live one", r)
	}
	n := 0
	for rec := range journaled {
		if rec.Kind == engine.RecCommit {
			n++
		}
	}
	require.Equal(t, committed, n, "the journal holds a commit record per committed transaction")
	t.Logf("%d commands, %d committed with %d fills (%d commits out of TxID order), replayed from the journal and from a snapshot at tx %d",
		steps, committed, fills, inversions, snapTx)
}

// TestReplayDetectsTampering changes one journaled fill and requires the
// matching replay to refuse it: the replay test above can fail.
func TestReplayDetectsTampering(t *testing.T) {
	c := DefaultConfig()
	c.Symbols, c.Accounts, c.Depth = 1, 10, 20
	ps, err := NewAll(c)
	require.NoError(t, err)
	var log memLog
	k, err := engine.New(slackConfig(engine.Config{Idle: engine.IdleYield, Log: &log}), ps...)
	require.NoError(t, err)
	defer k.Close()
	f := NewFlow(c)
	var cmd engine.Command
	for fills := 0; fills == 0; {
		f.Next(&cmd)
		res, err := k.Submit(&cmd)
		require.NoError(t, err)
		f.Observe(&res)
		fills += res.Out.NFills
	}
	require.NoError(t, k.Close())
	for _, r := range Roles {
		_, err := Replay(c, r, log.all)
		require.NoError(t, err, "%v: the untampered journal replays", r)
	}
	for i := range log.recs {
		if log.recs[i].Out.NFills > 0 {
			log.recs[i].Out.Fills[0].Qty++
			break
		}
	}
	_, err = Replay(c, Matching, log.all)
	require.Error(t, err, "matching replayed a fill it would not make")
}

// memLog is an engine.Log in memory.
type memLog struct{ recs []engine.Record }

func (l *memLog) Append(r *engine.Record) error {
	l.recs = append(l.recs, *r)
	return nil
}

func (l *memLog) all(yield func(*engine.Record) bool) {
	for i := range l.recs {
		if !yield(&l.recs[i]) {
			return
		}
	}
}
