package resp

import "time"

// pool runs tasks on reused goroutines: a task goes to an idle worker if
// one is waiting, else to a new one, and workers idle for a while exit.
// Concurrency stays unbounded, as a pipeline's tasks may wait on earlier
// ones, but a worker keeps its grown stack for the next task instead of
// growing a fresh goroutine's stack through Pebble's call chain each time.
type pool struct {
	idle chan func()
}

// workerIdle is how long a worker waits for another task before it exits.
const workerIdle = 10 * time.Second

func newPool() *pool { return &pool{idle: make(chan func())} }

// run runs f on a worker.
func (p *pool) run(f func()) {
	select {
	case p.idle <- f:
	default:
		go p.worker(f)
	}
}

func (p *pool) worker(f func()) {
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for {
		f()
		t.Reset(workerIdle)
		select {
		case f = <-p.idle:
		case <-t.C:
			return
		}
	}
}
