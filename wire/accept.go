package wire

import (
	"errors"
	"log/slog"
	"net"
	"time"
)

// Accept accepts connections on ln and hands each to admit, on Accept's
// goroutine (admit starts the connection's own), until ln is closed; it
// then returns nil. A failed accept (out of file descriptors, say) is
// logged and retried after a pause that doubles up to a second, as
// net/http does, rather than in a spin.
func Accept(ln net.Listener, log *slog.Logger, admit func(net.Conn)) error {
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			log.Warn("accept failed", "addr", ln.Addr().String(), "err", err)
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		admit(nc)
	}
}
