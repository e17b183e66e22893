// Package accel holds commitcore's accelerator interfaces and their
// software implementations. Hardware exchanges stamp time in hardware, run
// the pre-trade risk check in an FPGA and write into each other's memory
// over RDMA; here each of those paths is an interface with a software
// implementation used by default, so a user with the hardware implements
// the interface and nothing else changes:
//
//   - Clock: a timestamp source, engine.Clock. NewMonotonicClock is the
//     default; TSCClock reads the invariant time-stamp counter, calibrated
//     against it, and is cheaper to read (BenchmarkClock).
//   - RiskOffload: an asynchronous pre-trade check (Submit, then Poll for
//     its completion) with a documented contract: exactly once, submission
//     order, caller-owned timeouts, late verdicts void. InlineRisk runs the
//     rules in-line; RiskCaller is the caller's side for a participant that
//     waits within PREPARE.
//   - Fabric: one-sided writes into a remote peer's ring and their
//     completions (Endpoint.Flush), the shape of RDMA. ShmFabric writes
//     straight into a shared-memory link on the same host; TCPFabric
//     carries the same records over TCP between hosts, with framing,
//     sequence numbers, a heartbeat and reconnection; UnixFabric runs
//     that protocol over a unix-domain socket on one host. Each yields an
//     *engine.Conn, so engine.Dial (the coordinator) and Serve with an
//     engine.Host (a participant process) run the protocol unchanged over
//     all three, and a dropped connection is a suspected failure that the
//     protocol's termination rules handle.
//
// Across hosts the decision table still has to be shared: the TCP fabric
// carries the protocol's messages, not the table, whose replication the
// design leaves to a consensus engine. On one host the table lives in
// shared memory whichever fabric carries the messages.
//
// accel depends on engine's interfaces and types, and on shm and ringbuf
// for the rings and links the fabrics are made of.
package accel
