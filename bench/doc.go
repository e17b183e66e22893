// Package bench is commitcore's latency and throughput harness: the
// measurements a low-latency team would publish and a trading firm would
// believe.
//
// Load is open loop at a fixed rate: command i is due at start + i/rate,
// whatever happened to command i-1, and its latency is measured from that
// intended send time, not from the moment the driver got round to sending
// it. A stalled core therefore shows up in every command that should have
// been sent during the stall (coordinated omission corrected), as it would
// for a real client on the other side of a network. Latencies go into
// HdrHistograms, end to end and per protocol phase (prepare, pre-commit,
// commit), and come out as a markdown table, one HdrHistogram percentile
// distribution (.hgrm) per configuration and an SVG percentile plot drawn
// by this package.
//
// The pieces are usable on their own: Recorder (CO-corrected recording),
// Driver (the open-loop driver over any Target, engine.Core among them),
// Sweep (a fixed-rate sweep that stops where the core saturates), Hiccup
// (the idle system's own pauses), WriteTable and WritePlot. Report runs
// the whole plan; bench/cmd/report is its command line, and `make bench`
// runs it.
package bench
