package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/commitcore/commitcore/accel"
	"github.com/commitcore/commitcore/engine"
	"github.com/commitcore/commitcore/internal/venue"
)

// options are the simulator's flags, parsed and checked.
type options struct {
	mode      string
	fabric    string
	protocol  engine.Mode
	batch     int
	idle      engine.IdleKind
	dir       string
	journal   string
	sync      string
	prepare   time.Duration
	precommit time.Duration

	orders   uint64
	market   venue.Config
	rate     float64
	progress time.Duration

	faults []fault
	shocks []shock
	halt   time.Duration

	json  bool
	hgrm  string
	clean bool
	role  string
}

// A fault is a -kill or -stall: what happens to which component when the
// coordinator has command At in flight.
type fault struct {
	Kind string        `json:"kind"` // "kill" or "stall"
	Role string        `json:"role"`
	At   uint64        `json:"at"`
	For  time.Duration `json:"for,omitempty"` // stall only
}

// A shock is a -shock: the flow moves a symbol's price by Pct percent at
// command At.
type shock struct {
	Symbol uint32 `json:"symbol"`
	Name   string `json:"name"`
	At     uint64 `json:"at"`
	Pct    int    `json:"pct"`
}

// roleNames are the components -kill and -stall accept.
var roleNames = []string{"coordinator", "matching", "risk", "settlement"}

// flagGroups orders -h: each group lists its flags and an example.
var flagGroups = []struct {
	title   string
	names   []string
	example string
}{
	{"Topology and protocol", []string{"mode", "fabric", "protocol", "batch", "idle", "dir", "journal", "sync", "prepare-timeout", "precommit-timeout"},
		"exchange-sim -mode threads -protocol 2pc -batch 16 -idle spin"},
	{"Load", []string{"orders", "symbols", "accounts", "seed", "rate"},
		"exchange-sim -orders 500000 -symbols 4 -accounts 2000 -seed 7 -rate 50000"},
	{"Faults and market events", []string{"kill", "stall", "shock", "halt"},
		"exchange-sim -kill coordinator@20000 -kill matching@50000 -stall risk@70000:5ms -shock SYM1@30000:25 -halt 50ms"},
	{"Output", []string{"json", "hgrm", "progress"},
		"exchange-sim -json -hgrm latency.hgrm"},
	{"Maintenance", []string{"clean"},
		"exchange-sim -clean -dir /dev/shm"},
}

// defaultIdle is the idle strategy that suits this machine: busy-spinning
// four processes on fewer than one core each starves them, so spinning is
// the default only with a core per process to spare.
func defaultIdle() engine.IdleKind {
	if runtime.NumCPU() >= 8 {
		return engine.IdleSpin
	}
	return engine.IdlePark
}

// parseOptions parses args; a nil error with help true means -h was asked.
func parseOptions(args []string, stderr io.Writer) (o options, help bool, err error) {
	fs := flag.NewFlagSet("exchange-sim", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	def := venue.DefaultConfig()
	o.market = def
	protocol := fs.String("protocol", "3pc", "commit protocol: 3pc or 2pc")
	idle := fs.String("idle", defaultIdle().String(), "how idle components wait: spin, yield or park; the default follows the core count")
	fs.StringVar(&o.mode, "mode", "procs", "procs: coordinator, matching, risk and settlement as separate processes over shm; threads: one process, heap rings")
	fs.StringVar(&o.fabric, "fabric", "shm", "how the coordinator reaches the participants in procs mode: shm (shared-memory rings), unix (unix-domain sockets in the journal directory) or tcp (loopback, the path to other hosts)")
	fs.IntVar(&o.batch, "batch", 8, "commands in flight at once, closed loop (1: one at a time)")
	fs.StringVar(&o.dir, "dir", "/dev/shm", "directory for the shared-memory segments")
	fs.StringVar(&o.journal, "journal", "", "directory for the coordinator's journal (default: a temporary directory removed at exit)")
	fs.StringVar(&o.sync, "sync", "none", "journal flush policy: none, batch or interval")
	fs.DurationVar(&o.prepare, "prepare-timeout", 0, "PREPARE vote timeout; the default follows the core count (see README)")
	fs.DurationVar(&o.precommit, "precommit-timeout", 0, "PRE-COMMIT ack timeout before a retransmit; the default follows the core count")
	orders := fs.Uint64("orders", 100000, "commands to run")
	fs.IntVar(&o.market.Symbols, "symbols", def.Symbols, "symbols, named SYM0, SYM1, …")
	fs.IntVar(&o.market.Accounts, "accounts", def.Accounts, "funded trading accounts")
	fs.Int64Var(&o.market.Seed, "seed", def.Seed, "order-flow seed")
	fs.Float64Var(&o.rate, "rate", 0, "open loop at this many commands per second, latency corrected for coordinated omission (0: closed loop)")
	var kills, stalls, shocks listFlag
	fs.Var(&kills, "kill", "ROLE@N: SIGKILL coordinator, matching, risk or settlement when command N is in flight (repeatable)")
	fs.Var(&stalls, "stall", "ROLE@N:DUR: SIGSTOP a component at command N, SIGCONT after DUR (repeatable)")
	fs.DurationVar(&o.halt, "halt", defaultHalt, "how long a price-band trip halts a symbol; the market-wide levels halt 2, 3 and 4 times as long")
	fs.Var(&shocks, "shock", "SYMBOL@N:PCT: move SYMBOL's price by PCT percent at command N, tripping the circuit breaker (repeatable)")
	fs.BoolVar(&o.json, "json", false, "print one JSON object instead of the text summary")
	fs.StringVar(&o.hgrm, "hgrm", "", "write the end-to-end latency distribution to this file in HdrHistogram's percentile format")
	fs.DurationVar(&o.progress, "progress", 500*time.Millisecond, "how often to show progress (0: never)")
	fs.BoolVar(&o.clean, "clean", false, "remove stale segments left in -dir by dead runs, then exit")
	fs.StringVar(&o.role, "role", "", "internal: run as this component (the simulator starts its children so)")
	fs.Usage = func() {}

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(fs, stderr)
			return o, true, nil
		}
		return o, false, fmt.Errorf("%w (run exchange-sim -h for the flags)", err)
	}
	if fs.NArg() > 0 {
		return o, false, fmt.Errorf("unexpected argument %q: exchange-sim takes only flags (run exchange-sim -h)", fs.Arg(0))
	}
	if o.clean || o.role != "" {
		return o, false, nil
	}
	if o.protocol, err = parseProtocol(*protocol); err != nil {
		return o, false, err
	}
	if o.idle, err = engine.ParseIdleKind(*idle); err != nil {
		return o, false, fmt.Errorf("-idle: %w", err)
	}
	if o.mode != "procs" && o.mode != "threads" {
		return o, false, fmt.Errorf("-mode %q: want procs or threads", o.mode)
	}
	if o.fabric != "shm" && o.fabric != "unix" && o.fabric != "tcp" {
		return o, false, fmt.Errorf("-fabric %q: want shm, unix or tcp", o.fabric)
	}
	if o.fabric != "shm" && o.mode != "procs" {
		return o, false, fmt.Errorf("-fabric %s connects processes: use it with -mode procs", o.fabric)
	}
	if o.fabric == "unix" && o.journal != "" {
		sp := spec{Journal: filepath.Join(o.journal, "coordinator.journal")}
		for _, r := range venue.Roles {
			if err := accel.CheckSocketPath(sp.socketPath(r)); err != nil {
				return o, false, fmt.Errorf("-journal %q: -fabric unix puts the participants' sockets in it: %w; choose a shorter -journal directory", o.journal, err)
			}
		}
	}
	switch o.sync {
	case "none", "batch", "interval":
	default:
		return o, false, fmt.Errorf("-sync %q: want none, batch or interval", o.sync)
	}
	if o.batch < 1 || o.batch > engine.DefaultSlots/2 {
		return o, false, fmt.Errorf("-batch %d: want 1 to %d", o.batch, engine.DefaultSlots/2)
	}
	if *orders == 0 || *orders > 1<<32 {
		return o, false, fmt.Errorf("-orders %d: want 1 to %d", *orders, uint64(1)<<32)
	}
	o.orders = *orders
	if o.rate < 0 || o.rate > 1e8 {
		return o, false, fmt.Errorf("-rate %v: want 0 (closed loop) up to 1e8 commands per second", o.rate)
	}
	if o.halt <= 0 || o.halt > time.Hour {
		return o, false, fmt.Errorf("-halt %v: want a duration from 1ns to 1h", o.halt)
	}
	if o.prepare < 0 || o.precommit < 0 {
		return o, false, errors.New("-prepare-timeout and -precommit-timeout must not be negative")
	}
	if err := o.market.Validate(); err != nil {
		return o, false, err
	}
	for _, k := range kills {
		f, err := parseFault("kill", k, o.orders)
		if err != nil {
			return o, false, err
		}
		o.faults = append(o.faults, f)
	}
	for _, s := range stalls {
		f, err := parseFault("stall", s, o.orders)
		if err != nil {
			return o, false, err
		}
		o.faults = append(o.faults, f)
	}
	for _, s := range shocks {
		sh, err := parseShock(s, o.orders, o.market)
		if err != nil {
			return o, false, err
		}
		o.shocks = append(o.shocks, sh)
	}
	if len(o.faults) > 0 && o.mode != "procs" {
		return o, false, errors.New("-kill and -stall act on processes: use them with -mode procs")
	}
	seen := map[uint64]bool{}
	for _, f := range o.faults {
		if seen[f.At] {
			return o, false, fmt.Errorf("two faults at command %d: give each its own command number", f.At)
		}
		seen[f.At] = true
	}
	return o, false, nil
}

func parseProtocol(s string) (engine.Mode, error) {
	switch s {
	case "3pc":
		return engine.ThreePhase, nil
	case "2pc":
		return engine.TwoPhase, nil
	}
	return 0, fmt.Errorf("-protocol %q: want 3pc or 2pc", s)
}

// parseFault parses ROLE@N (kill) or ROLE@N:DUR (stall).
func parseFault(kind, s string, orders uint64) (fault, error) {
	f := fault{Kind: kind}
	want := "ROLE@N"
	if kind == "stall" {
		want = "ROLE@N:DUR"
	}
	role, rest, ok := strings.Cut(s, "@")
	if !ok {
		return f, fmt.Errorf("-%s %q: want %s, e.g. -%s matching@1000%s", kind, s, want, kind, map[bool]string{true: ":5ms"}[kind == "stall"])
	}
	if !isRole(role) {
		return f, fmt.Errorf("-%s %q: unknown role %q; want one of %s", kind, s, role, strings.Join(roleNames, ", "))
	}
	f.Role = role
	at := rest
	if kind == "stall" {
		var dur string
		if at, dur, ok = strings.Cut(rest, ":"); !ok {
			return f, fmt.Errorf("-stall %q: want %s, e.g. -stall risk@1000:5ms", s, want)
		}
		d, err := time.ParseDuration(dur)
		if err != nil || d <= 0 || d > time.Minute {
			return f, fmt.Errorf("-stall %q: duration %q: want a Go duration between 1ns and 1m, e.g. 5ms", s, dur)
		}
		f.For = d
	}
	n, err := strconv.ParseUint(at, 10, 64)
	if err != nil {
		return f, fmt.Errorf("-%s %q: command number %q is not a number", kind, s, at)
	}
	if n >= orders {
		return f, fmt.Errorf("-%s %q: command %d is past the end of the run (-orders %d)", kind, s, n, orders)
	}
	f.At = n
	return f, nil
}

// parseShock parses SYMBOL@N:PCT.
func parseShock(s string, orders uint64, market venue.Config) (shock, error) {
	var sh shock
	name, rest, ok := strings.Cut(s, "@")
	at, pct, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 {
		return sh, fmt.Errorf("-shock %q: want SYMBOL@N:PCT, e.g. -shock SYM0@1000:25", s)
	}
	id, err := market.SymbolID(name)
	if err != nil {
		return sh, fmt.Errorf("-shock %q: %w", s, err)
	}
	n, err := strconv.ParseUint(at, 10, 64)
	if err != nil || n >= orders {
		return sh, fmt.Errorf("-shock %q: command number %q: want 0 to %d (-orders %d)", s, at, orders-1, orders)
	}
	p, err := strconv.Atoi(pct)
	if err != nil || p == 0 || p < -90 || p > 1000 {
		return sh, fmt.Errorf("-shock %q: percent %q: want a non-zero integer from -90 to 1000", s, pct)
	}
	return shock{Symbol: id, Name: name, At: n, Pct: p}, nil
}

func isRole(s string) bool {
	for _, r := range roleNames {
		if r == s {
			return true
		}
	}
	return false
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func usage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprint(w, `exchange-sim runs a multi-process exchange on commitcore: a coordinator,
matching, risk and settlement agree on every command with a three-phase
commit over shared-memory rings. It ends with a latency report and an audit;
the exit status is non-zero if any audit check fails.

Usage: exchange-sim [flags]
`)
	for _, g := range flagGroups {
		fmt.Fprintf(w, "\n%s:\n", g.title)
		for _, name := range g.names {
			f := fs.Lookup(name)
			typ, help := flag.UnquoteUsage(f)
			fmt.Fprintf(w, "  -%s %s\n    \t%s", f.Name, typ, help)
			if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "0s" && f.DefValue != "false" {
				fmt.Fprintf(w, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "  example: %s\n", g.example)
	}
}
