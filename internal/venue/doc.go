// Package venue assembles commitcore's three real participants — matching,
// risk and settlement — into one consistent market, generates a
// deterministic order flow for it, and audits the result across
// participants.
//
// A Config is the market's shape (symbols, accounts, prices, funding,
// limits); every process builds identical initial state from it with New,
// one participant per Role. Matching is participant 0, the one whose vote
// carries the engine.Outcome. Flow is a seeded exchange-core-style command
// stream that learns from the Results it is shown which orders rest.
//
// After a run, with nothing in flight, Audit checks each participant on its
// own (conservation, uncrossed books, reservations that match the resting
// orders) and CrossAudit checks that they agree with one another. Recorder
// records which transactions each participant committed, Digest hashes a
// participant's committed state, and Replay rebuilds a participant from a
// journal, so a run can prove that every participant, live or rebuilt,
// holds the same history.
//
// # Tests
//
// TestPropertyEngine drives random command streams through engine.New with
// the three participants, a fourth that votes NO at random, and random
// pipelining, and checks the audits and that every Recorder committed
// exactly what the Core reported. It runs a few seeds of a few thousand
// commands by default; -venue.seeds and -venue.steps make it longer, e.g.
//
//	go test ./internal/venue -run PropertyEngine -venue.seeds=50 -venue.steps=100000
//
// TestReplayJournal journals a run and rebuilds each participant from the
// journal and from a mid-run snapshot plus the rest, comparing Digests.
// TestShockTripsBreaker runs the flow with a circuitbreaker Gate and shows
// that a Shock trips the symbol's price band.
// BenchmarkParticipantsMix runs the Flow through the engine with the three
// participants and, interleaved with it, through a Core over
// engine.NopParticipants as its peer.
package venue
