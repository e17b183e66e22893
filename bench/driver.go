package bench

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"runtime/metrics"
	"time"

	"github.com/commitcore/commitcore/engine"
	"github.com/commitcore/commitcore/ringbuf"
)

// Target is what a Driver loads: *engine.Core implements it. Send starts
// a command without waiting (ErrBusy when the target cannot take more just
// now); Poll does the target's work and hands over finished Results.
type Target interface {
	Send(cmd *engine.Command) (engine.TxID, error)
	Poll(fn func(*engine.Result)) (int, error)
}

// Source generates the commands: *venue.Flow implements it. Next must
// number its commands 0, 1, 2… in ClientOrderID, by which the Driver finds
// each Result's intended send time; Observe sees every Result, so that
// the source knows which orders rest.
type Source interface {
	Next(cmd *engine.Command)
	Observe(res *engine.Result)
}

// Load is one open-loop run: Warmup commands and then Commands measured
// ones, all at Rate, with at most Batch in flight.
type Load struct {
	// Rate is the offered load in commands per second.
	Rate float64
	// Commands is the number of measured commands.
	Commands int
	// Warmup is the number of commands sent first, on the same schedule,
	// whose results are not recorded: they warm caches, rings and books.
	Warmup int
	// Batch is the most commands in flight at once: commands due together
	// share each phase's round trip. 1 sends one at a time.
	Batch int
	// Deadline bounds the run's wall time; a saturated core stops taking
	// commands on schedule, and the run ends here instead of draining a
	// queue that only grows. Zero means no bound.
	Deadline time.Duration
}

// Run is what one Load measured.
type Run struct {
	Load Load
	// Rec holds the measured commands' latencies.
	Rec *Recorder
	// Sent and Done count the measured commands sent and finished; they
	// fall short of Load.Commands only when the Deadline cut the run.
	Sent, Done int
	// Elapsed runs from the first measured command's intended send time to
	// the last measured Result.
	Elapsed time.Duration
	// Mallocs is the process's heap allocations during the measured
	// window (runtime/metrics' count of allocated objects, tiny ones
	// included, as MemStats.Mallocs counts them); GCs the collections.
	Mallocs, GCs uint64
	// Truncated reports that the Deadline ended the run.
	Truncated bool
}

// Throughput returns the measured commands finished per second.
func (r *Run) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Done) / r.Elapsed.Seconds()
}

// Driver runs open-loop Loads against a Target. The zero value is not
// usable; set Clock at least.
type Driver struct {
	// Clock is the time source of the schedule and the latencies.
	Clock engine.Clock
	// Idle paces the driver between due commands; nil busy-spins.
	Idle ringbuf.IdleStrategy
	// Alloc, when set, reads the process's allocation and GC counters at
	// the edges of the measured window; nil means ReadAllocs.
	Alloc func() (mallocs, gcs uint64)

	target   Target
	source   Source
	rec      *Recorder
	due      []int64
	mask     uint64
	warmup   uint64
	inflight int
	done     int
	last     int64
	err      error
	onResult func(*engine.Result)
}

// ErrSource is wrapped when a Source numbers its commands out of order.
var ErrSource = errors.New("bench: source numbered a command out of order")

// Run sends load's commands from src to t on schedule and records every
// measured Result against its intended send time.
func (d *Driver) Run(t Target, src Source, load Load) (*Run, error) {
	if load.Rate <= 0 || load.Commands <= 0 || load.Batch <= 0 || load.Warmup < 0 {
		return nil, fmt.Errorf("bench: load %+v: want a positive rate, commands and batch", load)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	n := uint64(1)
	for n < 2*uint64(load.Batch) {
		n <<= 1
	}
	*d = Driver{Clock: d.Clock, Idle: d.Idle, Alloc: d.Alloc, target: t, source: src, rec: NewRecorder(),
		due: make([]int64, n), mask: n - 1, warmup: uint64(load.Warmup)}
	d.onResult = d.result
	idle := d.Idle
	if idle == nil {
		idle = ringbuf.BusySpin{}
	}
	alloc := d.Alloc
	if alloc == nil {
		alloc = ReadAllocs
	}
	total := uint64(load.Warmup + load.Commands)
	period := float64(time.Second) / load.Rate
	var cmd engine.Command
	have := false
	start := d.Clock.Now()
	first := start + int64(math.Round(float64(load.Warmup)*period))
	stop := int64(math.MaxInt64)
	if load.Deadline > 0 {
		stop = start + int64(load.Deadline)
	}
	var m0, g0 uint64
	measuring := false
	next := uint64(0)
	idle.Reset()
	for next < total || d.inflight > 0 {
		now := d.Clock.Now()
		if now >= stop {
			break
		}
		work := 0
		for d.inflight < load.Batch && next < total {
			due := start + int64(math.Round(float64(next)*period))
			if due > now {
				break
			}
			if next == d.warmup && !measuring {
				measuring = true
				m0, g0 = alloc()
			}
			if !have {
				src.Next(&cmd)
				if cmd.ClientOrderID != next {
					return nil, fmt.Errorf("%w: command %d came as number %d", ErrSource, next, cmd.ClientOrderID)
				}
				have = true
			}
			if _, err := t.Send(&cmd); errors.Is(err, engine.ErrBusy) {
				break
			} else if err != nil {
				return nil, fmt.Errorf("bench: send command %d: %w", next, err)
			}
			have = false
			d.due[next&d.mask] = due
			d.inflight++
			next++
			work++
		}
		got, err := t.Poll(d.onResult)
		if err != nil {
			return nil, fmt.Errorf("bench: poll: %w", err)
		}
		if d.err != nil {
			return nil, d.err
		}
		idle.Idle(work + got)
	}
	r := &Run{Load: load, Rec: d.rec, Done: d.done, Truncated: next < total || d.inflight > 0}
	if next > d.warmup {
		r.Sent = int(next - d.warmup)
	}
	if measuring {
		m1, g1 := alloc()
		r.Mallocs, r.GCs = m1-m0, g1-g0
	}
	end := d.last
	if r.Truncated {
		end = d.Clock.Now()
	}
	r.Elapsed = time.Duration(max(end-first, 0))
	return r, nil
}

func (d *Driver) result(res *engine.Result) {
	now := d.Clock.Now()
	d.source.Observe(res)
	d.inflight--
	id := res.Cmd.ClientOrderID
	if id < d.warmup {
		return
	}
	if res.Recovered {
		d.err = fmt.Errorf("bench: result of tx %d was recovered from another coordinator", res.Tx)
		return
	}
	d.rec.Record(d.due[id&d.mask], now, res)
	d.done++
	d.last = now
}

// allocSamples are the runtime/metrics ReadAllocs reads; kept to avoid an
// allocation per read.
var allocSamples = []metrics.Sample{
	{Name: "/gc/heap/allocs:objects"},
	{Name: "/gc/heap/tiny/allocs:objects"},
	{Name: "/gc/cycles/total:gc-cycles"},
}

// ReadAllocs returns the process's heap allocations so far (objects,
// tiny ones included: MemStats.Mallocs without stopping the world) and
// its completed GC cycles. It is not safe for concurrent use.
func ReadAllocs() (mallocs, gcs uint64) {
	metrics.Read(allocSamples)
	return allocSamples[0].Value.Uint64() + allocSamples[1].Value.Uint64(), allocSamples[2].Value.Uint64()
}
