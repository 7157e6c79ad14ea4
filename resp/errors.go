package resp

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dynakv/dynakv/coord"
	"github.com/dynakv/dynakv/replica"
)

// Error replies with Redis's own wording, where Redis has one.
const (
	errSyntax     = "ERR syntax error"
	errNotInteger = "ERR value is not an integer or out of range"
	errNoAuth     = "NOAUTH Authentication required."
	errWrongPass  = "WRONGPASS invalid username-password pair or user is disabled."
	errBadContext = "ERR invalid context"
	errDBIndex    = "ERR DB index is out of range"
	errNoProto    = "NOPROTO unsupported protocol version"
)

// errorPrefixes maps the sentinel errors of the packages below to the RESP
// prefix a client sees: the one table of that mapping.
var errorPrefixes = []struct {
	err    error
	prefix string
}{
	{coord.ErrUnavailable, "UNAVAILABLE"},
	{context.DeadlineExceeded, "UNAVAILABLE"},
	{coord.ErrWrongType, "WRONGTYPE"},
	{coord.ErrTooManySiblings, "ERR"},
	{coord.ErrBadQuorum, "ERR"},
	{replica.ErrBadContext, "ERR"},
}

// errorReply renders err as a RESP error line (without the leading '-').
func errorReply(err error) string {
	if errors.Is(err, replica.ErrBadContext) {
		return errBadContext
	}
	prefix := "ERR"
	for _, e := range errorPrefixes {
		if errors.Is(err, e.err) {
			prefix = e.prefix
			break
		}
	}
	msg := err.Error()
	for _, pkg := range []string{"coord: ", "replica: ", "gossip: ", "antientropy: "} {
		msg = strings.ReplaceAll(msg, pkg, "")
	}
	return prefix + " " + strings.NewReplacer("\r", " ", "\n", " ").Replace(msg)
}

// wrongArity is Redis's message for a bad argument count; name is the
// command's full lowercase name ("get", "client|setname").
func wrongArity(name string) string {
	return fmt.Sprintf("ERR wrong number of arguments for '%s' command", name)
}

// unknownCommand is Redis's message for a command it does not know.
func unknownCommand(args [][]byte) string {
	var b strings.Builder
	for _, a := range args[1:] {
		if b.Len() >= 128 {
			break
		}
		fmt.Fprintf(&b, "'%.*s' ", max(128-b.Len(), 0), a)
	}
	return sanitize(fmt.Sprintf("ERR unknown command '%.128s', with args beginning with: %s", args[0], b.String()))
}

// unknownSubcommand is Redis's message for a subcommand it does not know.
func unknownSubcommand(cmd string, sub []byte) string {
	return sanitize(fmt.Sprintf("ERR unknown subcommand '%.128s'. Try %s HELP.", sub, strings.ToUpper(cmd)))
}

// sanitize keeps an error on one line, as Redis does.
func sanitize(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}
