package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
)

// status is `dynakv status`: it asks one running node, over RESP, what it
// knows of the cluster (DYN.MEMBERS, DYN.RING, DYN.TRANSFERS, DYN.HINTS
// and INFO) and prints it for people, as `nodetool status` and
// `riak-admin member-status`/`transfers` do. Any tool can ask the same
// commands.
func status(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dynakv status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:6379", "a node's client address")
	pass := fs.String("pass", "", "the node's requirepass, if set")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "dynakv status: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	rdb := redis.NewClient(&redis.Options{Addr: *addr, Password: *pass, Protocol: 2, DisableIdentity: true, MaxRetries: -1})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := askStatus(ctx, rdb)
	if err != nil {
		fmt.Fprintf(stderr, "dynakv status: %s: %v\n", *addr, err)
		return 1
	}
	st.print(stdout, *addr)
	return 0
}

// clusterStatus is what status gathers from one node.
type clusterStatus struct {
	info      map[string]string
	members   [][]string // DYN.MEMBERS rows
	epoch     int64
	shares    map[string][]string // id -> DYN.RING row after the id
	transfers [][]any
	hints     [][]any
}

func askStatus(ctx context.Context, rdb *redis.Client) (clusterStatus, error) {
	var st clusterStatus
	text, err := rdb.Info(ctx, "all").Result()
	if err != nil {
		return st, fmt.Errorf("INFO: %w", err)
	}
	st.info = map[string]string{}
	for _, line := range strings.Split(text, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
			st.info[k] = v
		}
	}
	rows, err := rdb.Do(ctx, "DYN.MEMBERS").Slice()
	if err != nil {
		return st, fmt.Errorf("DYN.MEMBERS: %w", err)
	}
	for _, r := range rows {
		st.members = append(st.members, strs(r))
	}
	ring, err := rdb.Do(ctx, "DYN.RING").Slice()
	if err != nil || len(ring) == 0 {
		return st, fmt.Errorf("DYN.RING: %v %w", ring, err)
	}
	st.epoch, _ = ring[0].(int64)
	st.shares = map[string][]string{}
	for _, r := range ring[1:] {
		if row := strs(r); len(row) > 0 {
			st.shares[row[0]] = row[1:]
		}
	}
	for cmd, dst := range map[string]*[][]any{"DYN.TRANSFERS": &st.transfers, "DYN.HINTS": &st.hints} {
		v, err := rdb.Do(ctx, cmd).Slice()
		if err != nil {
			return st, fmt.Errorf("%s: %w", cmd, err)
		}
		for _, r := range v {
			row, _ := r.([]any)
			*dst = append(*dst, row)
		}
	}
	return st, nil
}

// strs renders a reply row's elements as strings.
func strs(v any) []string {
	row, _ := v.([]any)
	out := make([]string, len(row))
	for i, e := range row {
		out[i] = fmt.Sprint(e)
	}
	return out
}

func (st clusterStatus) print(w io.Writer, addr string) {
	i := st.info
	fmt.Fprintf(w, "dynakv %s, asked %s at %s\n", i["dynakv_version"], i["node_id"], addr)
	fmt.Fprintf(w, "ring epoch %d, %s partitions, N=%s R=%s W=%s, %s of %s members alive, zone spread violations %s\n\n",
		st.epoch, i["partitions"], i["replication_n"], i["replication_r"], i["replication_w"],
		i["members_alive"], i["members_total"], i["zone_spread_violations"])

	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tSTATE\tZONE\tPARTITIONS\tCLIENT\tPEER\tGOSSIP")
	for _, m := range st.members {
		if len(m) < 6 {
			continue
		}
		parts := "-"
		if s := st.shares[m[0]]; len(s) == 1 {
			parts = s[0]
		} else if len(s) >= 2 {
			parts = s[0] + " -> " + s[1]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m[0], m[4], orDash(m[5]), parts, m[1], m[2], m[3])
	}
	tw.Flush()

	fmt.Fprintln(w)
	if len(st.transfers) == 0 {
		fmt.Fprintln(w, "no ring change in progress")
	} else {
		fmt.Fprintln(w, "ring change in progress:")
		tw = tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "NODE\tTRANSFER\tPARTITIONS\tOBJECTS COPIED\tOF ABOUT\tRATE\tTIME LEFT")
		for _, t := range st.transfers {
			if len(t) < 7 {
				continue
			}
			id, state := fmt.Sprint(t[0]), fmt.Sprint(t[1])
			parts, done := num(t[2]), num(t[3])
			copied, expected, elapsed := num(t[4]), num(t[5]), num(t[6])
			rate, left := "-", "-"
			if elapsed > 0 && copied > 0 {
				r := float64(copied) / (float64(elapsed) / 1000)
				rate = fmt.Sprintf("%.0f/s", r)
				if expected > copied && state == "receiving" {
					left = "~" + (time.Duration(float64(expected-copied)/r) * time.Second).Round(time.Second).String()
				}
			}
			about := "?"
			if expected > 0 {
				about = strconv.FormatInt(expected, 10)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%d\t%s\t%s\t%s\n", id, state, done, parts, copied, about, rate, left)
		}
		tw.Flush()
	}

	fmt.Fprintln(w)
	if len(st.hints) == 0 {
		fmt.Fprintf(w, "hints kept on %s: none\n", i["node_id"])
	} else {
		fmt.Fprintf(w, "hints kept on %s for unreachable nodes:\n", i["node_id"])
		tw = tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "TARGET\tHINTS\tBYTES\tOLDEST")
		for _, h := range st.hints {
			if len(h) < 4 {
				continue
			}
			fmt.Fprintf(tw, "%v\t%d\t%d\t%s\n", h[0], num(h[1]), num(h[2]), time.Duration(num(h[3]))*time.Second)
		}
		tw.Flush()
	}

	fmt.Fprintln(w)
	if age := i["ae_last_round_age_seconds"]; age == "" || age == "-1" {
		fmt.Fprintf(w, "anti-entropy on %s: no round yet\n", i["node_id"])
	} else {
		fmt.Fprintf(w, "anti-entropy on %s: last round ended %ss ago, took %sms, %s exchanges (%s failed), %s keys repaired\n",
			i["node_id"], age, i["ae_last_round_ms"], i["ae_last_round_exchanges"], i["ae_last_round_failed"], i["ae_last_round_repaired"])
	}
}

func num(v any) int64 {
	n, _ := v.(int64)
	return n
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
