//go:build !amd64

package accel

func rdtscp() uint64 { return 0 }

func tscUsable() bool { return false }
