package matching

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/commitcore/commitcore/engine"
	"github.com/stretchr/testify/require"
)

type journaled struct {
	tx  engine.TxID
	cmd engine.Command
	out engine.Outcome
}

// TestPipelinedReplay keeps up to eight transactions prepared at once,
// commits or aborts them in random order, and journals the committed ones.
// Replaying the journal in transaction order, through Apply on a fresh
// Matcher and through the reference book, must give the same outcomes and
// the same books: holds make every committed outcome independent of how
// the transactions in flight beside it ended.
func TestPipelinedReplay(t *testing.T) {
	n := 60_000
	if testing.Short() {
		n = 10_000
	}
	for _, stp := range []STPMode{CancelResting, CancelIncoming} {
		t.Run(stp.String(), func(t *testing.T) {
			cfg := testConfig(stp)
			live, err := New(cfg)
			require.NoError(t, err)
			rng := rand.New(rand.NewPCG(7, uint64(stp)))
			g := &cmdGen{rng: rng}
			type flight struct {
				tx  engine.TxID
				cmd engine.Command
				out engine.Outcome
			}
			var inflight []*flight
			var journal []journaled
			votes := map[engine.Reason]int{}
			tx := engine.TxID(0)
			for tx < engine.TxID(n) || len(inflight) > 0 {
				if tx < engine.TxID(n) && len(inflight) < 8 && rng.IntN(2) == 0 {
					tx++
					f := &flight{tx: tx, cmd: g.command(tx, cfg)}
					ownerOf(live, &f.cmd, rng)
					reason := live.Prepare(tx, &f.cmd, &f.out)
					votes[reason]++
					if reason == engine.ReasonNone {
						inflight = append(inflight, f)
					}
					continue
				}
				if len(inflight) == 0 {
					continue
				}
				i := rng.IntN(len(inflight))
				f := inflight[i]
				inflight = slices.Delete(inflight, i, i+1)
				if rng.IntN(10) == 0 {
					live.Abort(f.tx)
				} else {
					live.PreCommit(f.tx, &f.out)
					live.Commit(f.tx, &f.out)
					journal = append(journal, journaled{f.tx, f.cmd, f.out})
				}
				if tx%1000 == 0 {
					checkInvariants(t, live)
				}
			}
			checkInvariants(t, live)
			require.Positive(t, votes[engine.ReasonBackpressure], "the stream never conflicted with a transaction in flight")
			t.Logf("votes %v, %d committed", votes, len(journal))

			slices.SortFunc(journal, func(a, b journaled) int { return int(a.tx) - int(b.tx) })
			replay, err := New(cfg)
			require.NoError(t, err)
			ref := newReference(cfg)
			var want engine.Outcome
			for _, j := range journal {
				require.NoError(t, replay.Apply(j.tx, &j.cmd, &j.out))
				require.Equal(t, engine.ReasonNone, ref.exec(j.tx, &j.cmd, &want), "tx %d", j.tx)
				require.Empty(t, diffOutcome(&want, &j.out), "tx %d", j.tx)
			}
			var a, b bytes.Buffer
			require.NoError(t, live.Snapshot(&a))
			require.NoError(t, replay.Snapshot(&b))
			require.Equal(t, a.Bytes(), b.Bytes())
			require.Equal(t, ref.snapshot(), a.Bytes())

			// A journal that disagrees with the book is refused and changes nothing.
			bad := journal[len(journal)-1]
			bad.tx = engine.TxID(n + 1)
			bad.cmd.OrderID = uint64(bad.tx)
			bad.out.Resting++
			err = replay.Apply(bad.tx, &bad.cmd, &bad.out)
			if bad.cmd.Kind == engine.NewOrder {
				require.True(t, errors.Is(err, ErrReplayMismatch), "%v", err)
			} else {
				require.Error(t, err)
			}
			b.Reset()
			require.NoError(t, replay.Snapshot(&b))
			require.Equal(t, a.Bytes(), b.Bytes())
		})
	}
}
