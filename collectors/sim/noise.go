package sim

// Noise is a pure function of (seed, key, time) rather than a stream from a
// random generator, so a sample's value does not depend on how many samples
// came before it or on the order VMs are visited in.

// mix64 is the splitmix64 finaliser: a cheap, well-mixed 64-bit hash.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func hash3(a, b, c uint64) uint64 { return mix64(a ^ mix64(b^mix64(c))) }

// signed maps a hash to [-1, 1).
func signed(h uint64) float64 { return float64(h>>11)/(1<<52) - 1 }

// white is independent noise in [-1, 1) for each millisecond timestamp.
func white(seed, key uint64, tms int64) float64 {
	return signed(hash3(seed, key, uint64(tms)))
}

// smooth is value noise in [-1, 1]: random values at multiples of period,
// joined by a smoothstep, so it wanders slowly and continuously.
func smooth(seed, key uint64, tms, periodMs int64) float64 {
	k := tms / periodMs
	if tms < 0 && tms%periodMs != 0 {
		k--
	}
	f := float64(tms-k*periodMs) / float64(periodMs)
	a := signed(hash3(seed, key, uint64(k)))
	b := signed(hash3(seed, key, uint64(k+1)))
	f = f * f * (3 - 2*f)
	return a + (b-a)*f
}

// Noise channels, combined with a VM or host index into a key.
const (
	chCPUWhite uint64 = iota + 1
	chCPUSmooth
	chMemSmooth
	chStealSmooth
	chIOWhite
	chNetWhite
	chDiskSmooth
	chRunaway
)

func key(index int, channel uint64) uint64 { return uint64(index)<<8 | channel }
