// Package antientropy makes replicas converge by themselves. Today it
// holds the ownership handoff of a ring change: a node that becomes a
// replica of partitions copies them from their current replicas before the
// change completes, so a join never loses or hides data.
//
// The Handoff runs one goroutine, started by StartHandoff and stopped by
// Close, which reacts to ring changes.
package antientropy
