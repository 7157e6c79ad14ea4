package resp

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func cmdCommand(s *Server, c *client, args [][]byte, r *reply) {
	cmds := s.sortedCommands()
	r.array(len(cmds))
	for _, cmd := range cmds {
		r.commandInfo(cmd)
	}
}

// commandInfo writes a command's COMMAND entry: name, arity, flags, first
// key, last key, step, ACL categories, tips, key specs, subcommands.
func (r *reply) commandInfo(c *command) {
	r.array(10)
	r.bulkString(c.fullName())
	r.int(int64(c.arity))
	var fl []string
	for _, f := range flagNames {
		if c.flags&f.f != 0 {
			fl = append(fl, f.name)
		}
	}
	r.setLen(len(fl))
	for _, f := range fl {
		r.status(f)
	}
	r.int(int64(c.first))
	r.int(int64(c.last))
	r.int(int64(c.step))
	cats := []string{"@" + c.group}
	switch {
	case c.flags&flagWrite != 0:
		cats = append(cats, "@write")
	case c.flags&flagReadonly != 0:
		cats = append(cats, "@read")
	}
	if c.flags&flagFast != 0 {
		cats = append(cats, "@fast")
	} else {
		cats = append(cats, "@slow")
	}
	r.setLen(len(cats))
	for _, cat := range cats {
		r.status(cat)
	}
	r.array(0)
	r.array(0)
	subs := sortedSubs(c)
	r.array(len(subs))
	for _, sc := range subs {
		r.commandInfo(sc)
	}
}

func cmdCommandCount(s *Server, c *client, args [][]byte, r *reply) {
	r.int(int64(len(s.commands)))
}

func cmdCommandList(s *Server, c *client, args [][]byte, r *reply) {
	if len(args) > 2 {
		r.err(errSyntax)
		return
	}
	cmds := s.sortedCommands()
	r.array(len(cmds))
	for _, cmd := range cmds {
		r.bulkString(cmd.name)
	}
}

// named returns the commands named in args, nil for unknown names; with no
// names, every command.
func (s *Server) named(args [][]byte) []*command {
	if len(args) == 0 {
		return s.sortedCommands()
	}
	out := make([]*command, len(args))
	for i, a := range args {
		name, sub, _ := strings.Cut(strings.ToLower(string(a)), "|")
		if cmd := s.commands[name]; cmd != nil && sub == "" {
			out[i] = cmd
		} else if cmd != nil {
			out[i] = cmd.sub[sub]
		}
	}
	return out
}

func cmdCommandInfo(s *Server, c *client, args [][]byte, r *reply) {
	cmds := s.named(args[2:])
	r.array(len(cmds))
	for _, cmd := range cmds {
		if cmd == nil {
			r.nullArray()
			continue
		}
		r.commandInfo(cmd)
	}
}

func cmdCommandDocs(s *Server, c *client, args [][]byte, r *reply) {
	var found []*command
	for _, cmd := range s.named(args[2:]) {
		if cmd != nil {
			found = append(found, cmd)
		}
	}
	r.mapLen(len(found))
	for _, cmd := range found {
		r.bulkString(cmd.fullName())
		r.commandDoc(cmd)
	}
}

// commandDoc writes a command's COMMAND DOCS map (as a RESP2 array).
func (r *reply) commandDoc(c *command) {
	subs := sortedSubs(c)
	n := 6
	if len(subs) > 0 {
		n += 2
	}
	r.mapLen(n / 2)
	r.bulkString("summary")
	r.bulkString(c.summary)
	r.bulkString("since")
	r.bulkString(c.since)
	r.bulkString("group")
	r.bulkString(c.group)
	if len(subs) > 0 {
		r.bulkString("subcommands")
		r.mapLen(len(subs))
		for _, sc := range subs {
			r.bulkString(sc.fullName())
			r.commandDoc(sc)
		}
	}
}

func cmdCommandHelp(s *Server, c *client, args [][]byte, r *reply) {
	r.helpLines("COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
		"(no subcommand)", "    Return details about all commands.",
		"COUNT", "    Return the total number of commands in this server.",
		"LIST", "    Return a list of all commands in this server.",
		"INFO [<command-name> ...]", "    Return details about multiple commands.",
		"DOCS [<command-name> ...]", "    Return documentation details about multiple commands.",
		"HELP", "    Print this help.")
}

func cmdConfigGet(s *Server, c *client, args [][]byte, r *reply) {
	var out []Param
	seen := map[string]bool{}
	for _, pat := range args[2:] {
		for _, p := range s.params() {
			if !seen[p.Name] && globMatch(pat, []byte(p.Name), true) {
				seen[p.Name] = true
				out = append(out, p)
			}
		}
	}
	r.mapLen(len(out))
	for _, p := range out {
		r.bulkString(p.Name)
		r.bulkString(p.Value)
	}
}

func cmdConfigHelp(s *Server, c *client, args [][]byte, r *reply) {
	r.helpLines("CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
		"GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values.",
		"HELP", "    Print this help.")
}

func cmdDBSize(s *Server, c *client, args [][]byte, r *reply) {
	n, _, err := s.coord.DBSize(s.ctx())
	if err != nil {
		fail(r, err)
		return
	}
	r.int(n)
}

// infoSections are INFO's sections in Redis's order; Replication and
// Cluster come from Options.Info.
var infoSections = []string{"server", "clients", "memory", "persistence", "stats", "replication", "cpu", "commandstats", "errorstats", "cluster", "keyspace"}

func cmdInfo(s *Server, c *client, args [][]byte, r *reply) {
	want := map[string]bool{}
	for _, a := range args[1:] {
		want[strings.ToLower(string(a))] = true
	}
	all := want["all"] || want["everything"]
	def := all || len(want) == 0 || want["default"]
	sections := s.infoSections()
	sections["commandstats"], sections["errorstats"] = s.commandStats(), s.errorStatsFields()
	var b strings.Builder
	for _, name := range infoSections {
		// commandstats and errorstats are not default sections, as in Redis.
		extra := name == "commandstats" || name == "errorstats"
		if !want[name] && !all && (extra || !def) {
			continue
		}
		fields, ok := sections[name]
		if !ok {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("# " + strings.ToUpper(name[:1]) + name[1:] + "\r\n")
		for _, f := range fields {
			b.WriteString(f.Name + ":" + f.Value + "\r\n")
		}
	}
	r.verbatim(b.String())
}

func (s *Server) infoSections() map[string][]Field {
	now := time.Now()
	up := now.Sub(s.started)
	exe, _ := os.Executable()
	port := ""
	if ln := s.listener(); ln != nil {
		_, port, _ = net.SplitHostPort(ln.Addr().String())
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	used := ms.Sys - ms.HeapReleased
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	out := map[string][]Field{
		"server": {
			{"redis_version", redisVersion},
			{"dynakv_version", s.opts.Version},
			{"redis_mode", "standalone"},
			{"os", runtime.GOOS + " " + runtime.GOARCH},
			{"arch_bits", "64"},
			{"go_version", runtime.Version()},
			{"process_id", strconv.Itoa(os.Getpid())},
			{"run_id", s.runID},
			{"tcp_port", port},
			{"server_time_usec", strconv.FormatInt(now.UnixMicro(), 10)},
			{"uptime_in_seconds", strconv.FormatInt(int64(up.Seconds()), 10)},
			{"uptime_in_days", strconv.FormatInt(int64(up.Hours()/24), 10)},
			{"executable", exe},
			{"config_file", s.opts.ConfigFile},
		},
		"clients": {
			{"connected_clients", strconv.Itoa(s.clientCount())},
			{"blocked_clients", "0"},
			{"maxclients", strconv.Itoa(s.opts.MaxClients)},
		},
		"memory": {
			{"used_memory", strconv.FormatUint(used, 10)},
			{"used_memory_human", humanBytes(used)},
			{"used_memory_rss", strconv.FormatInt(rss(), 10)},
			{"used_memory_peak", strconv.FormatUint(ms.Sys, 10)},
			{"maxmemory", "0"},
			{"mem_allocator", "go"},
		},
		"persistence": {
			{"loading", "0"},
			{"async_loading", "0"},
		},
		"stats": {
			{"total_connections_received", strconv.FormatInt(s.stats.conns.Load(), 10)},
			{"total_commands_processed", strconv.FormatInt(s.stats.commands.Load(), 10)},
			{"total_net_input_bytes", strconv.FormatInt(s.stats.bytesIn.Load(), 10)},
			{"total_net_output_bytes", strconv.FormatInt(s.stats.bytesOut.Load(), 10)},
			{"instantaneous_ops_per_sec", strconv.FormatInt(s.opsPerSec(), 10)},
			{"rejected_connections", strconv.FormatInt(s.stats.rejected.Load(), 10)},
			{"unknown_commands", strconv.FormatInt(s.stats.unknown.Load(), 10)},
			{"protocol_errors", strconv.FormatInt(s.stats.protocol.Load(), 10)},
			{"keyspace_hits", strconv.FormatInt(s.stats.hits.Load(), 10)},
			{"keyspace_misses", strconv.FormatInt(s.stats.misses.Load(), 10)},
		},
		"cpu": {
			{"used_cpu_sys", fmt.Sprintf("%.6f", time.Duration(ru.Stime.Nano()).Seconds())},
			{"used_cpu_user", fmt.Sprintf("%.6f", time.Duration(ru.Utime.Nano()).Seconds())},
		},
	}
	if s.opts.Info != nil {
		for _, sec := range s.opts.Info() {
			name := strings.ToLower(sec.Name)
			out[name] = append(out[name], sec.Fields...)
		}
	}
	if n, exp, err := s.coord.DBSize(s.ctx()); err == nil && n > 0 {
		out["keyspace"] = []Field{{"db0", fmt.Sprintf("keys=%d,expires=%d,avg_ttl=0", n, exp)}}
	} else {
		out["keyspace"] = nil
	}
	return out
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 3 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.2f%c", v, "KMGT"[i])
}

// rss reads the resident set size from /proc; 0 where there is none.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}
