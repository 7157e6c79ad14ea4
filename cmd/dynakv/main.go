// Command dynakv runs a dynakv node, or a local demo cluster.
//
//	dynakv                  run one node from ./config.toml
//	dynakv --config PATH    run one node from PATH
//	dynakv demo [--nodes 3] [--port 6379]
//	                        run a local cluster in one process
//	dynakv status [--addr host:port] [--pass P]
//	                        print what a running node knows of the cluster
//	dynakv version          print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// release is dynakv's version; a build may set it with -ldflags -X.
var release = "0.1.0"

// version is the release plus the VCS revision the binary was built from,
// when the build recorded one.
func version() string {
	v := release
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += "+" + s.Value[:12]
			}
		}
	}
	return v
}

// shutdownTimeout bounds how long a stopping node waits for requests it
// has started.
const shutdownTimeout = 30 * time.Second

func main() {
	withHugePages()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main with its exit status: 0 after a clean shutdown, 2 when the
// config or the start fails (one line on stderr says why), 1 when the
// shutdown does.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "version" {
		fmt.Fprintln(stdout, "dynakv", version())
		return 0
	}
	if len(args) > 0 && args[0] == "demo" {
		return demo(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "status" {
		return status(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("dynakv", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "config.toml", "the node's config file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "dynakv: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg, err := LoadConfig(*path)
	if err != nil {
		fmt.Fprintln(stderr, "dynakv:", err)
		return 2
	}
	log := cfg.logger(stderr)
	redis.SetLogger(redisLogger{log})
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	n, err := startNode(cfg, log)
	if err != nil {
		fmt.Fprintln(stderr, "dynakv:", err)
		return 2
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case <-n.left:
		n.finishLeave()
	}
	stopCtx, cancelStop := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancelStop()
	if err := n.stop(stopCtx); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("shutdown failed", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// redisLogger routes go-redis's internal log lines (a peer's pool failing
// to dial, say) to slog at debug level: what matters of them reaches the
// node's own logs as request errors and member state changes.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.Debug("go-redis: " + fmt.Sprintf(format, v...))
}
