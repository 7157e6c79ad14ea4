package peer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/dynakv/dynakv/replica"
	"github.com/redis/go-redis/v9"
)

// The peer protocol: RESP on the peer port, every command's name here.
// Replies are RESP; a payload another package owns travels as a bulk
// string in that package's encoding, named below.
const (
	// CmdGet: R.GET key -> the object (replica.AppendObject; "" for a key
	// never written), with the hints this node keeps for others merged in.
	CmdGet = "R.GET"
	// CmdMerge: R.MERGE key object [key object ...] -> +OK once merged and
	// stored durably; several objects (a write of several keys of one
	// slot) are stored in one Pebble batch.
	CmdMerge = "R.MERGE"
	// CmdRange: R.RANGE from(8) to(8) after limit -> [key, object, ...]:
	// objects of ring positions [from, to) after the key after.
	CmdRange = "R.RANGE"
	// CmdElements reads a chunk of a container's element objects:
	// R.ELEMS prefix after limit, answered as R.RANGE's reply.
	CmdElements = "R.ELEMS"
	// CmdContainerClock reads the join of the clocks of a container's
	// elements on the peer: R.CCLOCK key [before], answered with a clock.
	CmdContainerClock = "R.CCLOCK"
	// CmdTally reads the peer's tally of a container's elements of one
	// type: R.TALLY key type, answered "live total digest".
	CmdTally = "R.TALLY"
	// CmdHint: R.HINT target key object [key object ...] -> +OK once kept
	// durably as hints for target, several in one batch.
	CmdHint = "R.HINT"
	// CmdCount: R.COUNT q partition... -> varint live and expiring keys of
	// each partition.
	CmdCount = "R.COUNT"
	// CmdFlush: R.FLUSH ms -> +OK once every key written before ms is gone.
	CmdFlush = "R.FLUSH"
	// CmdWrite: C.WRITE key op -> the result: a write handed to one of the
	// key's primaries to coordinate (op and result in coord's encoding).
	CmdWrite = "C.WRITE"
	// CmdRing: G.RING -> the ring (gossip.Ring.Encode).
	CmdRing = "G.RING"
	// CmdChange: G.CHANGE leave|forget node -> OK: a ring change asked of
	// the claimant.
	CmdChange = "G.CHANGE"
	// CmdRoot: AE.ROOT p -> the shape and root hash of partition p's
	// Merkle tree (antientropy's encoding, as are the next two).
	CmdRoot = "AE.ROOT"
	// CmdChildren: AE.CHILDREN p level node... -> the nodes' children's
	// hashes.
	CmdChildren = "AE.CHILDREN"
	// CmdLeaves: AE.LEAVES p leaf... -> the leaves' (key, clock) lists.
	CmdLeaves = "AE.LEAVES"
	// CmdGroup: AE.GROUP p prefix -> a container's elements under an
	// element-name prefix, listed or as 256 bucket digests.
	CmdGroup = "AE.GROUP"
	// CmdExec: C.EXEC tx -> the RESP reply of its EXEC: a transaction
	// handed to its slot's leader (tx in resp's encoding).
	CmdExec = "C.EXEC"
	// CmdPublish: PS.PUBLISH channel message 0|1 -> the count of this
	// node's subscribers that got it (decimal): a message published on
	// another node (1: SPUBLISH).
	CmdPublish = "PS.PUBLISH"
	// CmdAuth: AUTH secret -> +OK; with a cluster secret, the only command
	// besides PING a connection may send before it.
	CmdAuth = "AUTH"
	// CmdPing: PING -> +PONG.
	CmdPing = "PING"
)

// commands are the names commandName returns without allocating: all of
// them, the hot ones first.
var commands = []string{CmdGet, CmdMerge, CmdHint, CmdWrite, CmdRange, CmdElements, CmdContainerClock, CmdTally, CmdCount, CmdFlush,
	CmdRing, CmdChange, CmdRoot, CmdChildren, CmdLeaves, CmdGroup, CmdExec, CmdPublish, CmdAuth, CmdPing}

// commandName is a command's name in upper case: one of commands without
// an allocation, else a new string.
func commandName(arg []byte) string {
	for _, name := range commands {
		if len(arg) == len(name) && strings.EqualFold(string(arg), name) {
			return name
		}
	}
	return strings.ToUpper(string(arg))
}

// Errors a peer call returns. Every failure of a call is one of: nil, an
// *Error (the peer answered, refusing), or ErrUnreachable (the peer could
// not be asked, or did not answer), wrapping ErrNotSent as well when the
// request provably never left this node.
var (
	// ErrUnreachable means the peer could not be asked, or its answer
	// did not come: the next replica may be tried instead, for a request
	// that can run twice.
	ErrUnreachable = errors.New("peer: unreachable")
	// ErrNotSent means, beside ErrUnreachable, that the request provably
	// never left this node: no connection could be made, the client was
	// closed, or the request's time ran out while it was still queued.
	// Only such a request may go to another node when running it twice
	// would count twice.
	ErrNotSent = errors.New("peer: request not sent")
	// ErrClosed is the failure of a call made after Client.Close.
	ErrClosed = errors.New("peer: client closed")
	// ErrBadReply is a reply of the wrong shape.
	ErrBadReply = errors.New("peer: unexpected reply")
)

// Error is an error reply from a peer: it was asked, and refused.
type Error struct{ Reply string }

func (e *Error) Error() string { return "peer refused: " + e.Reply }

// unavailable is the prefix of the error reply of a node that cannot
// serve (it is shutting down): to its callers it is unreachable.
const unavailable = "UNAVAILABLE"

// classify maps what go-redis reports for a call to addr onto the errors
// above. It is the one place that decides what a peer's failure means.
func classify(addr string, err error) error {
	if err == nil {
		return nil
	}
	var rerr redis.Error
	if errors.As(err, &rerr) && !strings.HasPrefix(rerr.Error(), unavailable) {
		return &Error{Reply: rerr.Error()}
	}
	var op *net.OpError
	if !errors.Is(err, ErrNotSent) && errors.As(err, &op) && op.Op == "dial" {
		err = notSent(err) // nothing is written before a connection
	}
	return fmt.Errorf("%w: %s: %w", ErrUnreachable, addr, err)
}

// notSent marks err as a failure before the request was written.
func notSent(err error) error { return fmt.Errorf("%w: %w", ErrNotSent, err) }

// The encodings of the replica commands' arguments and replies, both
// sides of each in one place.

func encodePosition(pos uint64) []byte { return binary.BigEndian.AppendUint64(nil, pos) }

func encodeCount(q int, parts []int) []any {
	args := []any{CmdCount, strconv.Itoa(q)}
	for _, p := range parts {
		args = append(args, strconv.Itoa(p))
	}
	return args
}

func decodeCountArgs(args [][]byte) (q int, parts []int, err error) {
	if len(args) < 2 {
		return 0, nil, errArity
	}
	nums := make([]int, 0, len(args)-1)
	for _, a := range args[1:] {
		n, err := strconv.Atoi(string(a))
		if err != nil {
			return 0, nil, errors.New("ERR bad partition")
		}
		nums = append(nums, n)
	}
	return nums[0], nums[1:], nil
}

func encodeCountReply(keys, expiring []int64) []byte {
	var b []byte
	for i := range keys {
		b = binary.AppendVarint(b, keys[i])
		b = binary.AppendVarint(b, expiring[i])
	}
	return b
}

func decodeCountReply(b []byte, n int) (keys, expiring []int64, err error) {
	d := replica.NewReader(b)
	for range n {
		keys = append(keys, d.Varint())
		expiring = append(expiring, d.Varint())
	}
	if d.Failed() || len(d.Rest()) != 0 {
		return nil, nil, fmt.Errorf("%w to %s", ErrBadReply, CmdCount)
	}
	return keys, expiring, nil
}

func decodeGetReply(s string) (replica.Object, error) {
	if s == "" {
		return replica.Object{}, nil
	}
	return replica.DecodeObject([]byte(s))
}

func decodeRangeReply(v any) ([]replica.KeyObject, error) {
	items, ok := v.([]any)
	if !ok || len(items)%2 != 0 {
		return nil, fmt.Errorf("%w to %s", ErrBadReply, CmdRange)
	}
	out := make([]replica.KeyObject, 0, len(items)/2)
	for i := 0; i < len(items); i += 2 {
		k, ok1 := items[i].(string)
		ob, ok2 := items[i+1].(string)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%w to %s", ErrBadReply, CmdRange)
		}
		o, err := replica.DecodeObject([]byte(ob))
		if err != nil {
			return nil, err
		}
		out = append(out, replica.KeyObject{Key: []byte(k), Object: o})
	}
	return out, nil
}

// errArity stands for Redis's wrong-number-of-arguments reply, which the
// server words per command.
var errArity = errors.New("wrong number of arguments")
