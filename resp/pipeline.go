package resp

import (
	"sync"
	"time"

	"github.com/dynakv/dynakv/coord"
)

// maxWave bounds the commands of one connection running at once.
const maxWave = 64

// runPipeline runs a pipeline's commands in waves: the keyed commands of a
// wave touch distinct keys and run concurrently; a command on a key the
// wave already has starts the next wave, so commands on one key run in
// order. Keyless commands run at once; barrier commands (those that change
// the connection or read the whole keyspace) run alone, after everything
// before them. Replies go out in order.
//
// A command on one key that only this node holds runs in line, on this
// goroutine: it waits for nothing but the store, and a worker would cost
// more than the command. Its write is applied at once and its durability
// waited for once for the whole pipeline, before any reply goes out.
//
// So does a write on one key that this node coordinates without reading
// first (SET, DPUT): it is applied here and sent to its replicas at once,
// and its quorum is waited for with the others' at the end (see
// coord.Pipelined). A command that would wait on another node first (a
// read, a conditional write, a key this node does not replicate) is told
// so before it does anything and goes to a worker instead. And a command
// that reads one key other nodes hold has its read started as the
// pipeline comes to it and runs, on this goroutine, once the wave is done
// (see coord.Prefetch): the reads are under way together without a
// goroutine each.
func (s *Server) runPipeline(c *client, cmds [][][]byte, out []byte) []byte {
	// The connection's reply buffers are reused from pipeline to pipeline:
	// out gets a copy.
	if cap(c.replies) < len(cmds) {
		c.replies = make([]reply, len(cmds))
	}
	replies := c.replies[:len(cmds)]
	for i := range replies {
		replies[i].b, replies[i].ctx, replies[i].pl, replies[i].deferred = replies[i].b[:0], s.base, nil, false
	}
	deferred := false
	var wg sync.WaitGroup
	var wave [][]byte // the keys of the running wave
	// later are the reading commands whose reads are under way; they run
	// in order once the wave is done.
	later := c.later[:0]
	flush := func() {
		wg.Wait()
		for _, l := range later {
			s.run(l.spec, c, cmds[l.i], &replies[l.i])
		}
		later = later[:0]
		wave = wave[:0]
	}
	// settle waits for the quorums of the in-line writes so far; a write
	// that missed its quorum answers with the error instead.
	quorumOf := c.quorumOf[:0]
	// awaiting are the keys of in-line writes whose quorum is still to be
	// waited for: a later command on one of them that runs elsewhere (a
	// write that decides on the value goes to the key's first primary)
	// must find the write there, so it waits for those quorums first.
	var awaiting [][]byte
	settle := func() {
		awaiting = awaiting[:0]
		if len(quorumOf) == 0 {
			return
		}
		for j, err := range c.quorums.Wait(s.base) {
			if err != nil {
				r := &replies[quorumOf[j]]
				r.b = r.b[:0]
				fail(r, err)
			}
		}
		quorumOf = quorumOf[:0]
	}
	// inline runs command i on this goroutine, its write's sync deferred
	// to the end of the pipeline and, unless its key is local, its quorum
	// too. It
	// reports false when the command would have waited on another node
	// and did nothing.
	inline := func(i int, spec *command, args [][]byte, r *reply, local bool) bool {
		r.pl = &c.deferAll
		if local {
			r.pl = &c.syncOnly // waits on nothing but the store: no quorum to defer
		}
		synced, q := c.pending.Len(), 0
		if !local {
			q = c.quorums.Len()
		}
		start := time.Now()
		s.runSafe(spec, c, args, r)
		if !local && c.quorums.Blocked() {
			r.b, r.pl = r.b[:0], nil
			return false
		}
		r.deferred = c.pending.Len() > synced
		deferred = deferred || r.deferred
		if !local && c.quorums.Len() > q {
			quorumOf = append(quorumOf, i)
		}
		s.finished(spec, c, args, r, time.Since(start))
		return true
	}
	n := len(cmds)
	for i, args := range cmds {
		r := &replies[i]
		spec := s.prepare(c, args, r)
		if spec == nil {
			continue
		}
		keys := spec.keys(args)
		ran := false
		if len(keys) == 1 && spec.flags&flagBarrier == 0 {
			local := s.coord.Local(keys[0])
			switch {
			case !local && spec.flags&flagReadonly != 0:
				if len(wave)+1 > maxWave || overlaps(wave, keys) {
					flush()
				}
				wave = append(wave, keys[0])
				r.pl = &coord.Pipelined{Read: s.coord.Prefetch(s.base, keys[0])}
				later = append(later, lateCmd{i, spec})
				ran = true
			case local || spec.flags&flagWrite != 0:
				if overlaps(wave, keys) {
					flush()
				}
				before := len(quorumOf)
				ran = inline(i, spec, args, r, local)
				if len(quorumOf) > before {
					awaiting = append(awaiting, keys[0])
				}
			}
		}
		switch {
		case ran:
		case spec.flags&flagBarrier != 0:
			flush()
			settle()
			s.run(spec, c, args, r)
		case len(keys) == 0:
			s.run(spec, c, args, r)
		default:
			if len(wave)+len(keys) > maxWave || overlaps(wave, keys) {
				flush()
			}
			if overlaps(awaiting, keys) {
				flush()
				settle()
			}
			wave = append(wave, keys...)
			wg.Add(1)
			s.workers.run(func() {
				defer wg.Done()
				s.run(spec, c, args, r)
			})
		}
		if c.quit {
			n = i + 1
			break
		}
	}
	flush()
	settle()
	c.quorumOf, c.later = quorumOf, later
	if deferred {
		if err := c.pending.Wait(); err != nil {
			s.log.Error("pipelined writes failed to sync", "err", err)
			for i := range replies[:n] {
				if replies[i].deferred {
					replies[i].b = replies[i].b[:0]
					fail(&replies[i], err)
				}
			}
		}
	}
	for i := range replies[:n] {
		if !replies[i].silent {
			out = append(out, replies[i].b...)
		}
		if cap(replies[i].b) > 64<<10 {
			replies[i].b = nil // do not keep a large value's buffer
		}
	}
	return out
}

// lateCmd is a pipeline's command i that runs once its read is in.
type lateCmd struct {
	i    int
	spec *command
}

// overlaps reports whether any of keys is in wave (or repeats in keys).
func overlaps(wave, keys [][]byte) bool {
	for i, k := range keys {
		for _, w := range wave {
			if string(w) == string(k) {
				return true
			}
		}
		for _, o := range keys[:i] {
			if string(o) == string(k) {
				return true
			}
		}
	}
	return false
}
