// Command report measures commitcore the way bench describes and prints
// the markdown report; it writes a .hgrm percentile distribution per
// configuration, percentiles.svg, sweep.svg and report.md into -out.
//
//	go run ./bench/cmd/report -out bench/out          # full: a few minutes
//	go run ./bench/cmd/report -out bench/out -short   # under a minute
//
// `make bench` runs the first. The processes rows need cmd/exchange-sim:
// report builds it into a temporary directory unless -sim names a binary,
// and -sim none leaves those rows out.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/commitcore/commitcore/bench"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func run() error {
	out := flag.String("out", "bench/out", "directory for the .hgrm files, the plots and report.md")
	short := flag.Bool("short", false, "the quick variant: runs a tenth as long (under a minute)")
	sim := flag.String("sim", "", "exchange-sim binary for the processes rows (default: build it; none: skip them)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	plan := bench.FullPlan(*out)
	if *short {
		plan = bench.ShortPlan(*out)
	}
	switch *sim {
	case "none":
	case "":
		dir, err := os.MkdirTemp("", "commitcore-report-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if plan.Sim, err = bench.BuildSim(ctx, dir); err != nil {
			return err
		}
	default:
		plan.Sim = *sim
	}
	_, err := plan.Run(ctx, os.Stdout)
	return err
}
