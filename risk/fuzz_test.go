package risk

import (
	"bytes"
	"testing"

	"github.com/commitcore/commitcore/engine"
)

// FuzzRestore feeds Restore arbitrary bytes: it must refuse or accept them
// without panicking, and whatever it accepts must pass Audit and snapshot
// back to the same bytes.
func FuzzRestore(f *testing.F) {
	cfg := testConfig()
	m, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	var empty bytes.Buffer
	if err := m.Snapshot(&empty); err != nil {
		f.Fatal(err)
	}
	f.Add(empty.Bytes())
	bid := place(f, m, 1, alice, engine.Buy, 1000, 10)
	place(f, m, 2, bob, engine.Sell, 1010, 7)
	var out engine.Outcome
	addFill(&out, 3, bob, engine.Sell, bid, alice, 1000, 4)
	if err := m.Apply(3, newOrder(3, bob, engine.Sell, engine.IOC, 1000, 4), &out); err != nil {
		f.Fatal(err)
	}
	var busy bytes.Buffer
	if err := m.Snapshot(&busy); err != nil {
		f.Fatal(err)
	}
	f.Add(busy.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Restore(bytes.NewReader(data)); err != nil {
			return
		}
		if err := r.Audit().Err(); err != nil {
			t.Fatalf("restored a state that fails audit: %v", err)
		}
		var out bytes.Buffer
		if err := r.Snapshot(&out); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), data[:out.Len()]) {
			t.Fatal("restore then snapshot changed the bytes")
		}
	})
}
