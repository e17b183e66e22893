package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/commitcore/commitcore/engine"
	"github.com/commitcore/commitcore/internal/venue"
)

// audit is the verdict on a finished run: named checks, each true or false,
// with what went wrong for the false ones.
type audit struct {
	names []string
	ok    map[string]bool
	fails []string
	lost  uint64 // transactions lost or split
}

func newAudit() *audit { return &audit{ok: map[string]bool{}} }

// check records a verdict; several verdicts of one name are and-ed.
func (a *audit) check(name string, ok bool, detail string, args ...any) {
	if _, seen := a.ok[name]; !seen {
		a.names = append(a.names, name)
		a.ok[name] = true
	}
	if !ok {
		a.ok[name] = false
		a.fails = append(a.fails, name+": "+fmt.Sprintf(detail, args...))
	}
}

func (a *audit) passed() bool { return len(a.fails) == 0 }

func (a *audit) verdicts() map[string]bool {
	m := map[string]bool{"ok": a.passed()}
	for k, v := range a.ok {
		m[k] = v
	}
	return m
}

func (a *audit) failures() []string { return a.fails }

// liveState is one participant's state at the end of a run.
type liveState struct {
	role      venue.Role
	committed []engine.TxID
	digest    [32]byte
	checks    []venue.Check
	inFlight  int
}

// auditRun checks a finished run against its journal and decision table:
//   - each participant's own checks (conservation of cash and securities,
//     no crossed book, no reservation left);
//   - agreement: every participant committed exactly the transactions the
//     journal records as committed, each once;
//   - replay: the journal rebuilds each participant's state exactly;
//   - decided: no transaction is left undecided or in flight;
//   - answered: every command sent got exactly one result.
func auditRun(market venue.Config, journalPath string, table *engine.DecisionTable, lives []liveState, s *stats) *audit {
	a := newAudit()
	for _, l := range lives {
		for _, c := range l.checks {
			a.check(checkKey(c.Name), c.OK, "%s: %s", l.role, c.Detail)
		}
	}

	committed, err := journalCommits(journalPath)
	a.check("journal_readable", err == nil, "%v", err)
	for _, l := range lives {
		seen := make(map[engine.TxID]bool, len(l.committed))
		var dup, extra int
		for _, tx := range l.committed {
			if seen[tx] {
				dup++
			}
			seen[tx] = true
			if !committed[tx] {
				extra++
			}
		}
		missing := 0
		for tx := range committed {
			if !seen[tx] {
				missing++
			}
		}
		a.lost += uint64(missing + extra + dup)
		a.check("agreement", missing+extra+dup == 0,
			"%s: %d journal commits it never applied, %d commits the journal lacks, %d applied twice", l.role, missing, extra, dup)
	}
	if committed != nil && uint64(len(committed)) != s.Committed {
		a.check("agreement", false, "the journal holds %d commits, the coordinators reported %d", len(committed), s.Committed)
	}

	for _, l := range lives {
		d, err := replayDigest(market, l.role, journalPath)
		switch {
		case err != nil:
			a.check("journal_replay", false, "%s: %v", l.role, err)
		default:
			a.check("journal_replay", d == l.digest, "%s: the state rebuilt from the journal differs from the live one", l.role)
		}
	}

	undecided := 0
	if table != nil {
		for sl := range table.InFlight() {
			if sl.Err != nil {
				a.check("decided", false, "decision table: %v", sl.Err)
				continue
			}
			if sl.Decision == engine.Undecided {
				undecided++
			}
		}
	}
	a.lost += uint64(undecided)
	a.check("decided", undecided == 0, "%d transactions left UNDECIDED in the decision table", undecided)
	for _, l := range lives {
		a.check("decided", l.inFlight == 0, "%s ended with %d transactions in flight", l.role, l.inFlight)
	}

	answered := s.Committed + s.aborted()
	if answered < s.Commands {
		a.lost += s.Commands - answered
	}
	a.check("answered", answered == s.Commands, "%d commands sent, %d results", s.Commands, answered)
	return a
}

// journalCommits returns the transactions the journal records as committed.
func journalCommits(path string) (map[engine.TxID]bool, error) {
	recs, errf, c, err := engine.ReadJournal(path)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	m := map[engine.TxID]bool{}
	aborted := map[engine.TxID]bool{}
	for r := range recs {
		switch r.Kind {
		case engine.RecCommit:
			m[r.Tx] = true
		case engine.RecAbort:
			aborted[r.Tx] = true
		}
	}
	for tx := range aborted {
		delete(m, tx)
	}
	return m, errf()
}

func replayDigest(market venue.Config, r venue.Role, path string) ([32]byte, error) {
	recs, errf, c, err := engine.ReadJournal(path)
	if err != nil {
		return [32]byte{}, err
	}
	defer c.Close()
	p, err := venue.Replay(market, r, recs)
	if err != nil {
		return [32]byte{}, err
	}
	if err := errf(); err != nil {
		return [32]byte{}, err
	}
	return venue.Digest(p)
}

// checkKey turns a participant check's name into a JSON key.
func checkKey(name string) string {
	k := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '_'
	}, name)
	return strings.Trim(k, "_")
}

// sortedRoles orders live states as venue.Roles does.
func sortedRoles(ls []liveState) {
	slices.SortFunc(ls, func(a, b liveState) int { return int(a.role) - int(b.role) })
}
