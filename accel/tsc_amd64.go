package accel

// rdtscp reads the time-stamp counter with RDTSCP, which waits for every
// earlier instruction to execute first, so a reading is never taken ahead
// of the loads that precede it.
func rdtscp() uint64

// cpuid executes CPUID for leaf (subleaf 0).
func cpuid(leaf uint32) (eax, ebx, ecx, edx uint32)

// tscUsable reports whether the processor has RDTSCP and an invariant TSC
// (one that ticks at a constant rate in every power state, CPUID
// 0x80000007 EDX bit 8). x/sys/cpu does not report either bit, hence CPUID.
func tscUsable() bool {
	maxExt, _, _, _ := cpuid(0x80000000)
	if maxExt < 0x80000007 {
		return false
	}
	_, _, _, d1 := cpuid(0x80000001)
	_, _, _, d7 := cpuid(0x80000007)
	return d1&(1<<27) != 0 && d7&(1<<8) != 0
}
