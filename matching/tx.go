package matching

import "github.com/commitcore/commitcore/engine"

// txRec is what a YES vote holds until its transaction commits or aborts:
// the pool slots it touches and the quantities it takes, so that Commit
// and Abort need nothing but the record.
type txRec struct {
	tx      engine.TxID
	book    int32
	kind    engine.CommandKind
	side    engine.Side // the taker's side
	done    bool
	inPlace bool // a Replace that keeps priority
	account uint32
	taker   uint64 // the command's order id
	time    int64
	nFills  int
	nRem    int
	maker   [engine.MaxFills]int32
	qty     [engine.MaxFills]int64
	removed [engine.MaxRemoved]int32
	target  int32 // Cancel, Replace: the live order's slot; else -1
	slot    int32 // the pending new version of the command's order; else -1
	newQty  int64 // Replace in place: the new open quantity
	rest    int64 // quantity that rests at restLvl once committed
	restLvl int32
	price   int64 // the command's (new) price
}

// txRing holds the records of the transactions in flight in prepare order.
// Records are retired from the head once done, so commits and aborts may
// come in any order; lookups scan the (short) in-flight window.
type txRing struct {
	recs []txRec
	head int
	n    int
}

// next returns the slot the next push will add, growing the ring if full.
func (t *txRing) next() *txRec {
	if t.n == len(t.recs) {
		recs := make([]txRec, 2*len(t.recs)+16)
		for i := 0; i < t.n; i++ {
			recs[i] = t.recs[(t.head+i)%len(t.recs)]
		}
		t.recs, t.head = recs, 0
	}
	return &t.recs[(t.head+t.n)%len(t.recs)]
}

func (t *txRing) push() { t.n++ }

// find returns the in-flight record of tx, or nil.
func (t *txRing) find(tx engine.TxID) *txRec {
	for i := 0; i < t.n; i++ {
		r := &t.recs[(t.head+i)%len(t.recs)]
		if r.tx == tx && !r.done {
			return r
		}
	}
	return nil
}

// retire marks r done and drops done records from the head.
func (t *txRing) retire(r *txRec) {
	r.done = true
	for t.n > 0 && t.recs[t.head].done {
		t.head = (t.head + 1) % len(t.recs)
		t.n--
	}
}

// inFlight counts the records not yet done.
func (t *txRing) inFlight() int {
	c := 0
	for i := 0; i < t.n; i++ {
		if !t.recs[(t.head+i)%len(t.recs)].done {
			c++
		}
	}
	return c
}
