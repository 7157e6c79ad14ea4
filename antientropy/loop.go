package antientropy

import (
	"context"
	"sync"
)

// loop runs one background goroutine with a context that ends when the
// loop is closed: the shape of every repair process here.
type loop struct {
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

// start runs fn on its own goroutine until it returns; ctx ends at close.
func (l *loop) start(fn func(ctx context.Context)) {
	l.stop = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	l.wg.Add(2)
	go func() {
		defer l.wg.Done()
		defer cancel()
		fn(ctx)
	}()
	go func() {
		defer l.wg.Done()
		select {
		case <-l.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
}

// close stops the goroutine and waits for it; closing again does nothing.
func (l *loop) close() {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
}
