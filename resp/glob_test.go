package resp

import "testing"

func TestGlobMatch(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true}, {"*", "anything", true}, {"a*", "abc", true}, {"a*", "bac", false},
		{"*c", "abc", true}, {"a?c", "abc", true}, {"a?c", "ac", false},
		{"h[ae]llo", "hello", true}, {"h[ae]llo", "hillo", false}, {"h[^e]llo", "hallo", true},
		{"h[^e]llo", "hello", false}, {"h[a-c]llo", "hbllo", true}, {"h[a-c]llo", "hdllo", false},
		{`a\*b`, "a*b", true}, {`a\*b`, "axb", false}, {"*a*b*", "xxaxxbxx", true},
		{"*a*b", "xxaxxbxxc", false}, {"user:*:name", "user:42:name", true}, {"a/*", "a/b/c", true},
	}
	for _, c := range cases {
		if got := globMatch([]byte(c.pattern), []byte(c.s), false); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
	if !globMatch([]byte("APPEND*"), []byte("appendonly"), true) {
		t.Error("nocase match failed")
	}
}
