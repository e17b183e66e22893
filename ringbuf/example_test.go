package ringbuf_test

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/commitcore/commitcore/ringbuf"
)

// An agent reads its inbound ring and parks on its doorbell when idle; the
// producer rings the doorbell on every publish. In production the ring and
// the doorbell live in a shared-memory segment and the peer process uses
// ringbuf.AttachSPSC and ringbuf.NewDoorbell on the same bytes.
func Example() {
	ringMem := ringbuf.AlignedBytes(ringbuf.SPSCSize(4096))
	bellMem := ringbuf.AlignedBytes(ringbuf.DoorbellSize)

	producer, err := ringbuf.NewSPSC(ringMem)
	if err != nil {
		panic(err)
	}
	bell, err := ringbuf.NewDoorbell(bellMem)
	if err != nil {
		panic(err)
	}
	producer.SetDoorbell(bell)

	consumer, err := ringbuf.AttachSPSC(ringMem)
	if err != nil {
		panic(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		idle := &ringbuf.SpinPark{Bell: bell}
		for got := 0; got < 3; {
			n, err := consumer.Read(0, func(typ uint16, payload []byte) {
				fmt.Printf("type %d: %s\n", typ, payload)
			})
			if err != nil {
				panic(err)
			}
			got += n
			idle.Idle(n)
		}
	}()

	for i, s := range []string{"new order", "cancel", "replace"} {
		if err := producer.Write(uint16(i+1), []byte(s), time.Now().Add(time.Second)); err != nil {
			panic(err)
		}
	}
	<-done
	// Output:
	// type 1: new order
	// type 2: cancel
	// type 3: replace
}

// A producer of fixed-size records claims them a batch at a time, builds
// each in place in ring memory and publishes the batch with one Commit.
// ClaimBatch may return fewer records than asked for (the rest of the data
// region, or the free space, is shorter): claim again for the rest.
func ExampleSPSC_ClaimBatch() {
	r, err := ringbuf.NewSPSC(ringbuf.AlignedBytes(ringbuf.SPSCSize(4096)))
	if err != nil {
		panic(err)
	}
	const quotes = 5
	for sent := 0; sent < quotes; {
		batch, err := r.ClaimBatch(7, 8, quotes-sent)
		if err != nil {
			panic(err) // ErrFull: commit, let the consumer drain, try again
		}
		for i := range batch.Len() {
			binary.LittleEndian.PutUint64(batch.Payload(i), uint64(100+sent))
			sent++
		}
		r.Commit()
	}
	n, err := r.Read(0, func(typ uint16, p []byte) {
		fmt.Println("type", typ, "quote", binary.LittleEndian.Uint64(p))
	})
	fmt.Println("read", n, err)
	// Output:
	// type 7 quote 100
	// type 7 quote 101
	// type 7 quote 102
	// type 7 quote 103
	// type 7 quote 104
	// read 5 <nil>
}
