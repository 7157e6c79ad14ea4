package wire

import (
	"errors"
	"io"
)

// Serve runs one connection's request loop for both ports: it reads the
// commands that have arrived together, has handle run them and return
// their replies, writes those in one write, and reads again. It returns
// when the connection fails or closes, or when handle reports that the
// connection is done (QUIT). A framing error is answered with Redis's
// "-ERR Protocol error: ..." before it returns, as Redis closes such a
// connection, and returned. The caller closes the connection.
//
// The replies handle returns stay valid until its next call: a server may
// reuse one buffer for every batch of a connection.
func Serve(conn io.ReadWriter, handle func(cmds [][][]byte) (replies []byte, done bool)) error {
	rd := NewReader(conn)
	for {
		cmds, err := rd.Next()
		if err != nil {
			var pe ProtocolError
			if errors.As(err, &pe) {
				_, _ = conn.Write([]byte("-ERR " + pe.Error() + "\r\n"))
				return pe
			}
			return nil
		}
		out, done := handle(cmds)
		if len(out) > 0 {
			if _, err := conn.Write(out); err != nil {
				return nil
			}
		}
		if done {
			return nil
		}
	}
}
