//go:build race

package tests

// raceEnabled builds the dynakv binary under test with the race detector
// when the tests themselves run with it.
const raceEnabled = true
