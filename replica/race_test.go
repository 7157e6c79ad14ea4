//go:build race

package replica

// raceEnabled: the race detector's instrumentation allocates, so tests
// that count allocations do not count under it.
const raceEnabled = true
