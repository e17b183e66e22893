package circuitbreaker

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/commitcore/commitcore/engine"
)

// stateConfig is a 3-symbol breaker with a 10 % band and a 1-minute halt.
func stateConfig() Config {
	cfg := DefaultConfig(3)
	cfg.Band = Band{WidthBps: 1_000, Halt: time.Minute, Reference: ReferenceLastTrade}
	return cfg
}

// tripped returns a breaker that, at instant 10 ms, has symbol 1 halted by
// a band trip at 250 (until 10 ms + 1 min) and re-anchored there, symbol 2
// past an operator halt that ended at 3 ms, and symbol 0 trading at 100.
func tripped(t *testing.T) *Breaker {
	b, ft := newBreaker(t, stateConfig())
	trade(t, b, ft, 1, 0, 100, 0)
	trade(t, b, ft, 2, 1, 200, 0)
	require.NoError(t, b.SetReference(2, 500))
	_, err := b.Halt(SymbolScope(2), 2_000_000, time.Millisecond)
	require.NoError(t, err)
	r, _ := b.Begin(3, newOrder(1, 250), 10_000_000)
	require.Equal(t, engine.ReasonNone, r)
	rep := b.CheckFills(3, outcome(1, 250), 10_000_000)
	require.NotNil(t, rep, "250 is outside 200's 10 %% band")
	require.NoError(t, b.SetReference(1, rep.Price))
	return b
}

func TestStateRoundTrip(t *testing.T) {
	const now = 20_000_000 // symbol 2's halt has ended, symbol 1's has not
	b := tripped(t)
	s := b.State(now)
	halt := time.Minute.Nanoseconds() + 10_000_000
	require.Equal(t, State{
		At: now,
		Symbols: []SymbolState{
			{Reference: 100, Open: 100, Last: 100},
			{Reference: 250, Open: 200, Last: 200, Halt: HaltState{Active: true, ResumesAt: halt, Cause: CauseBand}},
			{Reference: 500, Open: 500, Last: 500},
		},
	}, s)

	enc, err := s.MarshalBinary()
	require.NoError(t, err)
	require.Len(t, enc, StateSize(3))
	var got State
	require.NoError(t, got.UnmarshalBinary(enc))
	require.Equal(t, s, got)

	// The successor's clock reads 7 s more than the predecessor's at one
	// instant, and it restores 1 ms after the state was taken.
	const skew = 7_000_000_000
	got.Shift(skew)
	b2, _ := newBreaker(t, stateConfig())
	n, err := b2.Restore(&got, now+skew+1_000_000)
	require.NoError(t, err)
	require.Equal(t, 1, n, "halts restored")

	halted, until := b2.Halted(SymbolScope(1), now+skew+1_000_000)
	require.True(t, halted, "symbol 1 is still halted")
	require.Equal(t, halt+skew, until, "with the same resume instant")
	reason, at := b2.Admit(newOrder(1, 250), now+skew+1_000_000)
	require.Equal(t, engine.ReasonHalted, reason)
	require.Equal(t, halt+skew, at)
	halted, _ = b2.Halted(SymbolScope(2), now+skew+1_000_000)
	require.False(t, halted, "an ended halt is not restored")
	require.Equal(t, b.Index(), b2.Index())

	want := s
	want.Shift(skew)
	want.At = now + skew + 1_000_000
	require.Equal(t, want, b2.State(now+skew+1_000_000), "the successor's own state")

	// After the halt, symbol 1 trades around the re-anchored 250: 255
	// would trip a band around 200, not one around 250.
	after := halt + skew + 1
	r, _ := b2.Begin(4, newOrder(1, 255), after)
	require.Equal(t, engine.ReasonNone, r)
	require.Nil(t, b2.CheckFills(4, outcome(1, 255), after), "the re-anchored reference was kept")
}

func TestRestoreHaltEndedMeanwhile(t *testing.T) {
	b := tripped(t)
	s := b.State(20_000_000)
	b2, _ := newBreaker(t, stateConfig())
	end := s.Symbols[1].Halt.ResumesAt
	n, err := b2.Restore(&s, end)
	require.NoError(t, err)
	require.Zero(t, n, "a halt that ended before the restore is not restored")
	reason, _ := b2.Admit(newOrder(1, 250), end)
	require.Equal(t, engine.ReasonNone, reason)
	require.Equal(t, int64(250), b2.State(end).Symbols[1].Reference)
}

func TestRestoreMarketHalt(t *testing.T) {
	b, _ := newBreaker(t, stateConfig())
	_, err := b.Halt(MarketScope(), 5, UntilResumed)
	require.NoError(t, err)
	s := b.State(10)
	s.Shift(-3)
	require.Equal(t, Forever, s.Market.ResumesAt, "Shift keeps Forever")
	b2, _ := newBreaker(t, stateConfig())
	n, err := b2.Restore(&s, 1<<40)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	reason, at := b2.Admit(newOrder(0, 100), 1<<40)
	require.Equal(t, engine.ReasonHalted, reason)
	require.Equal(t, Forever, at)
	require.NoError(t, b2.Resume(MarketScope(), 1<<40))
}

func TestRestoreRefusals(t *testing.T) {
	good := tripped(t).State(20_000_000)
	for _, tc := range []struct {
		name string
		edit func(*State)
		want error
	}{
		{"fewer symbols", func(s *State) { s.Symbols = s.Symbols[:2] }, ErrStateMismatch},
		{"more levels tripped", func(s *State) { s.LevelsTripped = 4 }, ErrStateMismatch},
		{"negative levels", func(s *State) { s.LevelsTripped = -1 }, ErrBadState},
		{"negative reference", func(s *State) { s.Symbols[0].Reference = -1 }, ErrBadState},
		{"open without last", func(s *State) { s.Symbols[0].Last = 0 }, ErrBadState},
		{"open without reference", func(s *State) { s.Symbols[0].Reference = 0 }, ErrBadState},
		{"ended halt marked active", func(s *State) { s.Symbols[1].Halt.ResumesAt = s.At }, ErrBadState},
		{"band cause on the market", func(s *State) { s.Market = HaltState{Active: true, ResumesAt: Forever, Cause: CauseBand} }, ErrBadState},
		{"level cause on a symbol", func(s *State) { s.Symbols[1].Halt.Cause = CauseLevel }, ErrBadState},
		{"inactive halt with an end", func(s *State) { s.Symbols[0].Halt.ResumesAt = 1 }, ErrBadState},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := good
			s.Symbols = append([]SymbolState(nil), good.Symbols...)
			tc.edit(&s)
			b, _ := newBreaker(t, stateConfig())
			before := b.State(0)
			_, err := b.Restore(&s, 0)
			require.ErrorIs(t, err, tc.want)
			require.Equal(t, before, b.State(0), "a refused state changes nothing")
			if tc.want == ErrBadState {
				_, err := s.MarshalBinary()
				require.ErrorIs(t, err, ErrBadState, "the encoder refuses it too")
			}
		})
	}
}

// reseal recomputes an encoding's checksum after an edit.
func reseal(b []byte) {
	body := len(b) - stateTrailer
	binary.LittleEndian.PutUint32(b[body:], crc32.Checksum(b[:body], castagnoli))
}

func TestDecodeRefusals(t *testing.T) {
	s := tripped(t).State(20_000_000)
	good, err := s.MarshalBinary()
	require.NoError(t, err)
	sym1 := stateHeader + stateSymbol // symbol 1's record; its halt at +24
	for _, tc := range []struct {
		name  string
		edit  func([]byte) []byte
		field string
	}{
		{"empty", func([]byte) []byte { return nil }, "length"},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }, "length"},
		{"extended", func(b []byte) []byte { return append(b, 0) }, "length"},
		{"magic", func(b []byte) []byte { b[0] ^= 1; return b }, "magic"},
		{"version", func(b []byte) []byte { b[4] = 2; return b }, "version"},
		{"reserved", func(b []byte) []byte { b[7] = 1; return b }, "reserved"},
		{"symbol count", func(b []byte) []byte { b[8] = 2; return b }, "length"},
		{"huge symbol count", func(b []byte) []byte { b[11] = 0xff; return b }, "symbols"},
		{"bit flip", func(b []byte) []byte { b[sym1] ^= 0x10; return b }, "checksum"},
		{"trailer", func(b []byte) []byte { b[len(b)-1] = 1; return b }, "trailer"},
		{"active flag", func(b []byte) []byte { b[sym1+24+8] = 2; reseal(b); return b }, "symbols[1].halt.active"},
		{"halt padding", func(b []byte) []byte { b[sym1+24+15] = 1; reseal(b); return b }, "symbols[1].halt"},
		{"cause", func(b []byte) []byte { b[sym1+24+9] = 9; reseal(b); return b }, "symbols[1].halt.cause"},
		{"ended halt", func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[sym1+24:], 20_000_000)
			reseal(b)
			return b
		}, "symbols[1].halt.resumes_at"},
		{"negative price", func(b []byte) []byte { b[sym1+7] = 0x80; reseal(b); return b }, "symbols[1]"},
		{"market inactive with a cause", func(b []byte) []byte { b[24+9] = 1; reseal(b); return b }, "market"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.edit(append([]byte(nil), good...))
			var got State
			err := got.UnmarshalBinary(b)
			var se *StateError
			require.ErrorAs(t, err, &se)
			require.ErrorIs(t, err, ErrBadState)
			require.Equal(t, tc.field, se.Field, "%v", err)
		})
	}
}

// storeMem returns zeroed, 8-byte aligned memory for a store.
func storeMem(n int) []byte {
	words := make([]uint64, (n+7)/8)
	return unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), n)
}

func TestStateStore(t *testing.T) {
	s1 := tripped(t).State(20_000_000)
	s2 := s1
	s2.At = 30_000_000
	s2.Symbols = append([]SymbolState(nil), s1.Symbols...)
	s2.Symbols[0].Reference = 120
	mem := storeMem(StateStoreSize(3))
	st, err := NewStateStore(mem, 3)
	require.NoError(t, err)
	_, err = st.Load()
	require.ErrorIs(t, err, ErrNoState, "zeroed memory holds nothing")

	require.NoError(t, st.Publish(&s1))
	got, err := st.Load()
	require.NoError(t, err)
	require.Equal(t, s1, got)

	// A writer killed halfway through its copy of s2 into the other slot.
	enc2, err := s2.MarshalBinary()
	require.NoError(t, err)
	other := storeHeader // generation 1 is slot 1; slot 0 is the one written next
	copy(mem[other:], enc2[:len(enc2)/2])
	got, err = (mustStore(t, mem)).Load()
	require.NoError(t, err)
	require.Equal(t, s1, got, "a torn write leaves the previous state")

	// A writer killed after its copy, before publishing.
	copy(mem[other:], enc2)
	got, err = mustStore(t, mem).Load()
	require.NoError(t, err)
	require.Equal(t, s2, got, "the newest whole slot wins")

	// A successor publishes on from the generation it finds.
	st2 := mustStore(t, mem)
	s3 := s2
	s3.At = 40_000_000
	require.NoError(t, st2.Publish(&s3))
	got, err = st2.Load()
	require.NoError(t, err)
	require.Equal(t, s3, got)
	require.EqualValues(t, 2, binary.LittleEndian.Uint64(mem))

	// The published slot damaged: the other one still holds.
	mem[storeHeader+8] ^= 1
	got, err = st2.Load()
	require.NoError(t, err)
	require.Equal(t, s1, got, "slot 1 still holds the first state")
	mem[storeHeader+slotLen(3)+8] ^= 1
	_, err = st2.Load()
	require.ErrorIs(t, err, ErrBadState, "neither slot holds")

	require.ErrorIs(t, st2.Publish(&State{}), ErrStateMismatch)
	_, err = NewStateStore(mem[:StateStoreSize(3)-1], 3)
	require.Error(t, err)
	_, err = NewStateStore(mem[1:], 2)
	require.Error(t, err, "unaligned memory")
}

// TestStateStoreCutAnywhere kills a writer at every byte of its copy: a
// first publish cut short leaves no state, a later one the previous state,
// and only a whole copy shows the new one.
func TestStateStoreCutAnywhere(t *testing.T) {
	s1 := tripped(t).State(20_000_000)
	s2 := s1
	s2.At = 30_000_000
	enc1, err := s1.MarshalBinary()
	require.NoError(t, err)
	enc2, err := s2.MarshalBinary()
	require.NoError(t, err)
	slot := func(i int) int { return storeHeader + i*slotLen(3) }
	for k := 0; k <= len(enc1); k++ {
		mem := storeMem(StateStoreSize(3))
		copy(mem[slot(1):], enc1[:k]) // the first publish writes slot 1
		got, err := mustStore(t, mem).Load()
		if !whole(enc1, k) {
			require.ErrorIs(t, err, ErrNoState, "first publish cut at byte %d", k)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, s1, got)
	}
	for k := 0; k <= len(enc2); k++ {
		mem := storeMem(StateStoreSize(3))
		require.NoError(t, mustStore(t, mem).Publish(&s1))
		copy(mem[slot(0):], enc2[:k])
		got, err := mustStore(t, mem).Load()
		require.NoError(t, err, "second publish cut at byte %d", k)
		want := s1
		if whole(enc2, k) {
			want = s2
		}
		require.Equal(t, want, got, "second publish cut at byte %d", k)
	}
}

// whole reports whether a copy of enc into zeroed memory cut at byte k is
// whole anyway: the bytes it did not copy are zeros.
func whole(enc []byte, k int) bool {
	return !slices.ContainsFunc(enc[k:], func(b byte) bool { return b != 0 })
}

// TestStateStoreSuccessorKeepsUnpublished: a successor that loaded a state
// its predecessor wrote but did not publish publishes that one first, so
// its own write, if it dies in the middle, cannot cost the only copy.
func TestStateStoreSuccessorKeepsUnpublished(t *testing.T) {
	s1 := tripped(t).State(20_000_000)
	s2, s3 := s1, s1
	s2.At, s3.At = 30_000_000, 40_000_000
	enc2, err := s2.MarshalBinary()
	require.NoError(t, err)
	mem := storeMem(StateStoreSize(3))
	require.NoError(t, mustStore(t, mem).Publish(&s1)) // generation 1: slot 1
	copy(mem[storeHeader:], enc2)                      // slot 0 written, never published

	st := mustStore(t, mem)
	got, err := st.Load()
	require.NoError(t, err)
	require.Equal(t, s2, got)
	require.NoError(t, st.Publish(&s3))
	require.EqualValues(t, 3, binary.LittleEndian.Uint64(mem), "s2 published, then s3")
	var kept State
	require.NoError(t, kept.UnmarshalBinary(mem[storeHeader:storeHeader+len(enc2)]))
	require.Equal(t, s2, kept, "the successor's write went to the loaded state's slot")

	// The successor killed halfway through writing s3, after publishing s2.
	binary.LittleEndian.PutUint64(mem, 2)
	mem[storeHeader+slotLen(3)+8] ^= 1
	got, err = mustStore(t, mem).Load()
	require.NoError(t, err)
	require.Equal(t, s2, got)

	s0 := s1
	s0.At = 10_000_000
	require.Error(t, st.Publish(&s0), "a state older than the last one published")
}

func mustStore(t *testing.T, mem []byte) *StateStore {
	t.Helper()
	st, err := NewStateStore(mem, 3)
	require.NoError(t, err)
	return st
}

func FuzzStateDecode(f *testing.F) {
	b, err := New(stateConfig(), newFakeTable())
	if err != nil {
		f.Fatal(err)
	}
	s := b.State(0)
	enc, err := s.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc)
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeChecked(t, data)
		if len(data) >= StateSize(0) {
			// Past the checksum, to the field checks.
			sealed := append([]byte(nil), data...)
			reseal(sealed)
			decodeChecked(t, sealed)
		}
	})
}

// decodeChecked decodes data; what decodes must encode back to data and
// restore into a breaker of its size.
func decodeChecked(t *testing.T, data []byte) {
	t.Helper()
	var s State
	if err := s.UnmarshalBinary(data); err != nil {
		if !errors.Is(err, ErrBadState) {
			t.Fatalf("error %v is not ErrBadState", err)
		}
		return
	}
	again, err := s.MarshalBinary()
	if err != nil {
		t.Fatalf("a decoded state does not encode: %v", err)
	}
	if string(again) != string(data) {
		t.Fatal("decoding is not the inverse of encoding")
	}
	b, err := New(DefaultConfig(len(s.Symbols)), newFakeTable())
	if err != nil {
		t.Fatalf("no breaker for a decoded state's %d symbols: %v", len(s.Symbols), err)
	}
	if _, err := b.Restore(&s, s.At); err != nil && !errors.Is(err, ErrStateMismatch) {
		t.Fatalf("a decoded state does not restore: %v", err)
	}
}

// FuzzStateStoreLoad fills a store's memory with anything: Load must
// return a valid state or an error, never panic.
func FuzzStateStoreLoad(f *testing.F) {
	mem := storeMem(StateStoreSize(2))
	st, err := NewStateStore(mem, 2)
	if err != nil {
		f.Fatal(err)
	}
	b, err := New(DefaultConfig(2), newFakeTable())
	if err != nil {
		f.Fatal(err)
	}
	require.NoError(f, b.SetReference(1, 100))
	_, err = b.Halt(SymbolScope(1), 7, time.Second)
	require.NoError(f, err)
	s := b.State(7)
	require.NoError(f, st.Publish(&s))
	f.Add(append([]byte(nil), mem...))
	f.Fuzz(func(t *testing.T, data []byte) {
		mem := storeMem(StateStoreSize(2))
		copy(mem, data)
		st, err := NewStateStore(mem, 2)
		if err != nil {
			t.Fatal(err)
		}
		s, err := st.Load()
		if err != nil {
			if !errors.Is(err, ErrBadState) && !errors.Is(err, ErrNoState) {
				t.Fatalf("error %v is neither ErrBadState nor ErrNoState", err)
			}
			return
		}
		if len(s.Symbols) != 2 {
			t.Fatalf("loaded %d symbols from a 2-symbol store", len(s.Symbols))
		}
		if _, err := s.MarshalBinary(); err != nil {
			t.Fatalf("a loaded state does not encode: %v", err)
		}
	})
}

// TestPublishDoesNotAllocate: a coordinator publishes its state as it
// trades, on its own goroutine; StateInto and Publish reuse their memory.
func TestPublishDoesNotAllocate(t *testing.T) {
	b := tripped(t)
	st := mustStore(t, storeMem(StateStoreSize(3)))
	var s State
	now := int64(20_000_000)
	allocs := testing.AllocsPerRun(100, func() {
		now++
		b.StateInto(&s, now)
		if err := st.Publish(&s); err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, allocs)
	got, err := st.Load()
	require.NoError(t, err)
	require.Equal(t, b.State(now), got)
}
