package venue

import (
	"fmt"
	"iter"

	"github.com/commitcore/commitcore/engine"
)

// Replay builds a fresh participant for role r from c and applies every
// committed record of recs to it (see ReplayOnto). Equal journals give
// participants with equal Digests.
func Replay(c Config, r Role, recs iter.Seq[*engine.Record]) (engine.Participant, error) {
	p, err := New(c, r)
	if err != nil {
		return nil, err
	}
	if err := ReplayOnto(p, recs); err != nil {
		return nil, fmt.Errorf("venue: replay %v: %w", r, err)
	}
	return p, nil
}

// ReplayOnto applies to p, with Apply and in log order, every record of
// recs of kind engine.RecCommit whose transaction has no engine.RecAbort
// anywhere in recs, as a recovering engine.Node does. To rebuild from a
// snapshot, Restore it into p first and pass the records after it. recs is
// iterated twice (an abort may follow its commit record), as
// engine.JournalRecords allows. It returns how far it got on the first
// Apply that fails.
func ReplayOnto(p engine.Participant, recs iter.Seq[*engine.Record]) error {
	aborted := map[engine.TxID]bool{}
	for rec := range recs {
		if rec.Kind == engine.RecAbort {
			aborted[rec.Tx] = true
		}
	}
	applied := 0
	for rec := range recs {
		if rec.Kind != engine.RecCommit || aborted[rec.Tx] {
			continue
		}
		if err := p.Apply(rec.Tx, &rec.Cmd, &rec.Out); err != nil {
			return fmt.Errorf("after %d transactions: %w", applied, err)
		}
		applied++
	}
	return nil
}
