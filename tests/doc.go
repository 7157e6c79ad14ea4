// Package tests holds dynakv's end-to-end tests: they build the real
// binary, start real processes on loopback ports with temporary data
// directories, and drive them with real clients (go-redis, redis-cli,
// redis-benchmark) and real faults (kill -9, SIGTERM, bad input).
//
// Tests that need an outside tool fail when CI=true and it is missing, and
// are skipped elsewhere.
package tests
