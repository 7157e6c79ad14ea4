//go:build !linux || !cgo

package main

// withHugePages does nothing here: without cgo Pebble allocates from the
// Go heap, and elsewhere than Linux glibc's tunable does not apply.
func withHugePages() {}
