//go:build !race

package ringbuf

// raceEnabled reports a race-detector build, in which SPSC.Read skips its
// cache warming reads of unpublished memory (see touchNext).
const raceEnabled = false
