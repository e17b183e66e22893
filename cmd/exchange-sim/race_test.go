//go:build race

package main

// raceEnabled: the race detector slows every process of a run several times.
const raceEnabled = true
