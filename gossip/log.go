package gossip

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
)

// slogWriter routes memberlist's log lines ("[LEVEL] memberlist: ...")
// through slog at their level; while stopping, at debug level.
type slogWriter struct {
	log      *slog.Logger
	stopping *atomic.Bool
}

func (w slogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelInfo
	for prefix, l := range map[string]slog.Level{"[DEBUG]": slog.LevelDebug, "[INFO]": slog.LevelInfo, "[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError} {
		if strings.HasPrefix(line, prefix) {
			level, line = l, strings.TrimSpace(strings.TrimPrefix(line, prefix))
			break
		}
	}
	if w.stopping.Load() {
		level = slog.LevelDebug
	}
	w.log.Log(context.Background(), level, line)
	return len(p), nil
}
