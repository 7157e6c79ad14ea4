package resp

import "testing"

// Every command in the table is complete: documented, with an arity and
// key positions that COMMAND can report truthfully.
func TestCommandTable(t *testing.T) {
	var check func(c *command)
	check = func(c *command) {
		if c.summary == "" || c.since == "" || c.group == "" {
			t.Errorf("%s: missing docs", c.fullName())
		}
		if c.arity == 0 {
			t.Errorf("%s: arity 0", c.fullName())
		}
		if c.run == nil && c.sub == nil {
			t.Errorf("%s: no handler", c.fullName())
		}
		if c.first != 0 && (c.step < 1 || (c.last > 0 && c.last < c.first)) {
			t.Errorf("%s: bad key positions %d %d %d", c.fullName(), c.first, c.last, c.step)
		}
		if c.flags&flagWrite != 0 && c.first == 0 && c.group != groupServer {
			t.Errorf("%s: a write without keys", c.fullName())
		}
		for _, sc := range c.sub {
			check(sc)
		}
	}
	for name, c := range commandTable() {
		if name != c.name {
			t.Errorf("table key %q names %q", name, c.name)
		}
		check(c)
	}
}

func TestCommandKeys(t *testing.T) {
	table := commandTable()
	args := func(ss ...string) [][]byte {
		var out [][]byte
		for _, s := range ss {
			out = append(out, []byte(s))
		}
		return out
	}
	cases := []struct {
		cmd  string
		args [][]byte
		keys []string
	}{
		{"get", args("GET", "a"), []string{"a"}},
		{"mset", args("MSET", "a", "1", "b", "2"), []string{"a", "b"}},
		{"del", args("DEL", "a", "b", "c"), []string{"a", "b", "c"}},
		{"dput", args("DPUT", "k", "ctx", "v", "W", "2"), []string{"k"}},
		{"ping", args("PING"), nil},
	}
	for _, c := range cases {
		got := table[c.cmd].keys(c.args)
		if len(got) != len(c.keys) {
			t.Fatalf("%s keys = %q, want %q", c.cmd, got, c.keys)
		}
		for i := range got {
			if string(got[i]) != c.keys[i] {
				t.Fatalf("%s keys = %q, want %q", c.cmd, got, c.keys)
			}
		}
	}
}
