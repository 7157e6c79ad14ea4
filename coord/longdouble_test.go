package coord

import "testing"

// TestLongDoubleLikeRedis checks INCRBYFLOAT's arithmetic and printing
// against replies of redis-server 7.0 (its docs' examples and what the
// hash suite's port observed).
func TestLongDoubleLikeRedis(t *testing.T) {
	for _, c := range []struct{ a, b, want string }{
		{"10.50", "0.1", "10.6"},
		{"10.6", "-5", "5.6"},
		{"5.0e3", "2.0e2", "5200"},
		{"0.1", "0.2", "0.3"},
		{"9007199254740993", "1", "9007199254740994"},
		{"0", "1e-20", "0"},
		{"0x10", "1", "17"},
		{"-1", "1", "0"},
		{"1", "1.5", "2.5"},
	} {
		a, ok1 := ParseLongDouble([]byte(c.a))
		b, ok2 := ParseLongDouble([]byte(c.b))
		if !ok1 || !ok2 {
			t.Fatalf("%s + %s: did not parse", c.a, c.b)
		}
		sum, ok := addLongDouble(a, b)
		if !ok || string(formatLongDouble(sum)) != c.want {
			t.Fatalf("%s + %s = %s (%v), want %s", c.a, c.b, formatLongDouble(sum), ok, c.want)
		}
	}
	for _, bad := range []string{"", " 1", "1 ", "nan", "abc", "1_000", "0b101", "1e5000", "1e-5000", "+"} {
		if _, ok := ParseLongDouble([]byte(bad)); ok {
			t.Fatalf("%q parsed as a long double", bad)
		}
	}
	inf, ok := ParseLongDouble([]byte("-inf"))
	if !ok || !inf.IsInf() {
		t.Fatal("-inf did not parse as an infinity")
	}
	one, _ := ParseLongDouble([]byte("1"))
	if _, ok := addLongDouble(inf, one); ok {
		t.Fatal("an infinite sum was accepted")
	}
	big, _ := ParseLongDouble([]byte("1e4932"))
	if _, ok := addLongDouble(big, big); ok {
		t.Fatal("a sum past the long double range was accepted")
	}
	for _, c := range []struct {
		s  string
		ok bool
	}{{"0", true}, {"-5", true}, {"9223372036854775807", true}, {"+1", false}, {"010", false}, {"-0", false}, {" 1", false}, {"9223372036854775808", false}} {
		if _, ok := ParseInteger([]byte(c.s)); ok != c.ok {
			t.Fatalf("ParseInteger(%q) ok=%v, want %v", c.s, ok, c.ok)
		}
	}
}
