// Package accel holds commitcore's accelerator interfaces and their
// software implementations. Hardware exchanges stamp time in hardware, run
// the pre-trade risk check in an FPGA and write into each other's memory
// over RDMA; here each of those paths is an interface with a software
// implementation used by default, so a user with the hardware implements
// the interface and nothing else changes:
//
//   - Clock: a timestamp source. NewMonotonicClock (the default) and
//     TSCClock, the invariant time-stamp counter calibrated against it.
//   - RiskOffload: an asynchronous pre-trade check (Submit, then Poll for
//     its completion). InlineRisk runs the check in-line.
//   - Fabric: one-sided writes into a remote peer's ring and their
//     completions, the shape of RDMA. ShmFabric writes straight into a
//     shared-memory link on the same host; TCPFabric carries the same
//     records over TCP between hosts, with framing, sequence numbers, a
//     heartbeat and reconnection. Either gives an *engine.Conn, so
//     engine.Dial (coordinator side) and Serve (participant side) run the
//     same protocol over both.
//
// accel depends on engine's interfaces and types, and on shm for the
// shared-memory fabric.
package accel
