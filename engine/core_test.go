package engine

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/commitcore/commitcore/engine/journal"
	"github.com/stretchr/testify/require"
)

// voter is a test participant that votes NO with reason on commands whose
// ClientOrderID is odd, and records every call.
type voter struct {
	NopParticipant
	no Reason
}

func (v *voter) Prepare(tx TxID, cmd *Command, out *Outcome) Reason {
	if cmd.ClientOrderID%2 == 1 {
		return v.no
	}
	return v.NopParticipant.Prepare(tx, cmd, out)
}

// filler is a matching stand-in: its YES carries one fill per command.
type filler struct{ NopParticipant }

func (f *filler) Prepare(tx TxID, cmd *Command, out *Outcome) Reason {
	out.Reset()
	out.NFills = 1
	out.Fills[0] = Fill{TradeID: TradeIDOf(tx, 0), Symbol: cmd.Symbol, TakerSide: cmd.Side,
		MakerOrder: 1, TakerOrder: uint64(tx), Maker: 9, Taker: cmd.Account, Price: cmd.Price, Qty: cmd.Qty}
	return f.NopParticipant.Prepare(tx, cmd, out)
}

// slack are timeouts no scheduler hiccup on a shared 2-core CI machine
// reaches: tests on real threads assert outcomes, not speed.
var slack = Timeouts{Prepare: 5 * time.Second, PreCommit: 50 * time.Millisecond}

// slackConfig is a Config with slack timeouts on both sides.
func slackConfig(c Config) Config {
	c.Timeouts, c.DecisionTimeout, c.Grace = slack, 10*time.Second, 10*time.Second
	return c
}

func order(id uint64) Command {
	return Command{Kind: NewOrder, Side: Buy, Type: Limit, Symbol: 1, Account: 2, ClientOrderID: id, Price: 100, Qty: 5}
}

func TestCoreSubmit(t *testing.T) {
	for _, mode := range []Mode{ThreePhase, TwoPhase} {
		for _, idle := range []IdleKind{IdlePark, IdleYield} {
			t.Run(mode.String()+"/"+idle.String(), func(t *testing.T) {
				m, r, s := &filler{}, &voter{no: ReasonCreditLimit}, &NopParticipant{}
				k, err := New(slackConfig(Config{Mode: mode, Idle: idle}), m, r, s)
				require.NoError(t, err)
				defer func() { require.NoError(t, k.Close()) }()
				for i := uint64(0); i < 200; i++ {
					cmd := order(i)
					res, err := k.Submit(&cmd)
					require.NoError(t, err)
					require.Equal(t, uint64(res.Tx), res.Cmd.OrderID, "a new order's id is its tx id")
					if i%2 == 1 {
						require.Equal(t, ReasonCreditLimit, res.Reason)
						require.Zero(t, res.Out.NFills)
						continue
					}
					require.Equal(t, ReasonNone, res.Reason)
					require.Equal(t, 1, res.Out.NFills)
					require.Equal(t, int64(5), res.Out.Fills[0].Qty)
					require.Positive(t, res.Total)
					if mode == TwoPhase {
						require.Zero(t, res.PreCommit)
					}
				}
				require.NoError(t, k.Close())
				c := k.Counters()
				require.Equal(t, uint64(100), c.Committed)
				require.Equal(t, uint64(100), c.Aborted[ReasonCreditLimit])
				for _, p := range []*NopParticipant{&m.NopParticipant, &r.NopParticipant, s} {
					require.Equal(t, uint64(100), p.Committed)
					if mode == ThreePhase {
						require.Equal(t, uint64(100), p.PreCommitted)
					}
				}
				require.Equal(t, uint64(100), s.Aborted, "the YES voters release the aborted ones")
			})
		}
	}
}

func TestCoreSendPoll(t *testing.T) {
	k, err := New(slackConfig(Config{Idle: IdleYield, Runners: 3, MaxInFlight: 64}), &filler{}, &NopParticipant{}, &NopParticipant{})
	require.NoError(t, err)
	defer k.Close()
	const n = 5000
	sent, done := 0, 0
	seen := map[TxID]bool{}
	for done < n {
		for sent < n {
			cmd := order(uint64(2 * sent))
			if _, err := k.Send(&cmd); errors.Is(err, ErrBusy) {
				break
			} else {
				require.NoError(t, err)
			}
			sent++
		}
		_, err := k.Poll(func(r *Result) {
			require.Equal(t, ReasonNone, r.Reason)
			require.False(t, seen[r.Tx], "result delivered twice")
			seen[r.Tx] = true
			done++
		})
		require.NoError(t, err)
	}
	require.Zero(t, k.InFlight())
	require.Equal(t, uint64(n), k.Counters().Committed)
}

func TestCoreRejectsBadInput(t *testing.T) {
	_, err := New(Config{})
	require.Error(t, err)
	k, err := New(slackConfig(Config{Idle: IdleYield}), &NopParticipant{})
	require.NoError(t, err)
	defer k.Close()
	_, err = k.Submit(nil)
	require.ErrorIs(t, err, ErrMalformed)
	bad := order(0)
	bad.Side = 7
	_, err = k.Submit(&bad)
	require.ErrorIs(t, err, ErrMalformed)
	good := order(0)
	res, err := k.Submit(&good)
	require.NoError(t, err, "a rejected command must not wedge the core")
	require.Equal(t, ReasonNone, res.Reason)
	require.NoError(t, k.Close())
	_, err = k.Submit(&good)
	require.ErrorIs(t, err, ErrClosed)
}

// A participant that panics on a second Commit for the same transaction
// proves the runtime never re-delivers a step, and a journal-backed log
// lets a second coordinator recover what the first left in flight.
func TestCoreJournalRecovery(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	j, err := journal.Open(path, journal.Options{Sync: journal.SyncBatch})
	require.NoError(t, err)
	log := NewJournalLog(j)
	k, err := New(slackConfig(Config{Idle: IdleYield, Log: log}), &filler{}, &NopParticipant{})
	require.NoError(t, err)
	for i := range 10 {
		cmd := order(uint64(2 * i))
		res, err := k.Submit(&cmd)
		require.NoError(t, err)
		require.Equal(t, ReasonNone, res.Reason)
	}
	require.NoError(t, k.Close())
	var rerr error
	commits := 0
	for r := range log.Records(&rerr) {
		require.Equal(t, RecCommit, r.Kind)
		require.Equal(t, 1, r.Out.NFills)
		commits++
	}
	require.NoError(t, rerr)
	require.Equal(t, 10, commits)
	require.NoError(t, j.Close())
}

func TestRunnerStopsOnAgentError(t *testing.T) {
	boom := errors.New("boom")
	r := Run(NewIdleStrategy(IdleYield, nil), nil, agentFunc(func() (int, error) { return 0, boom }))
	<-r.Done()
	require.ErrorIs(t, r.Stop(), boom)
}

type agentFunc func() (int, error)

func (f agentFunc) DoWork() (int, error) { return f() }
