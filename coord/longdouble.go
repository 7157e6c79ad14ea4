package coord

import (
	"bytes"
	"math/big"
	"strings"
)

// Redis does INCRBYFLOAT and HINCRBYFLOAT in C's long double, on x86-64
// an 80-bit float with a 64-bit mantissa, parses with strtold and prints
// with "%.17Lf" less trailing zeros. big.Float at 64 bits of precision,
// rounding to nearest even, does the same arithmetic, so the replies and
// the stored strings are Redis's to the digit (0.1 + 0.2 is "0.3", not
// float64's "0.30000000000000004").

const (
	ldPrec = 64
	// ldMaxExp and ldMinExp bound a finite, non-zero long double: |x| <
	// 2^16384, and denormals go down to 2^-16445.
	ldMaxExp = 16384
	ldMinExp = -16444
)

// ParseLongDouble parses s as Redis's string2ld does: a decimal or hex
// float, or an infinity, with nothing around it; NaN, overflow and
// underflow to zero are refused.
func ParseLongDouble(s []byte) (*big.Float, bool) {
	if len(s) == 0 || len(s) > 5*1024 || bytes.ContainsAny(s, "_ \t\r\n\v\f") {
		return nil, false
	}
	digits := strings.ToLower(strings.TrimLeft(string(s), "+-"))
	if strings.HasPrefix(digits, "0b") || strings.HasPrefix(digits, "0o") {
		return nil, false // strtold reads "0" and stops there
	}
	neg := s[0] == '-'
	if digits == "inf" || digits == "infinity" {
		return new(big.Float).SetInf(neg), true
	}
	f, _, err := big.ParseFloat(string(s), 0, ldPrec, big.ToNearestEven)
	if err != nil {
		return nil, false
	}
	if f.Sign() != 0 {
		if exp := f.MantExp(nil); exp > ldMaxExp || exp < ldMinExp {
			return nil, false
		}
	}
	return f, true
}

// addLongDouble adds as long double arithmetic does; false when the sum
// is infinite or NaN.
func addLongDouble(a, b *big.Float) (*big.Float, bool) {
	if a.IsInf() || b.IsInf() {
		return nil, false
	}
	sum := new(big.Float).SetPrec(ldPrec).SetMode(big.ToNearestEven).Add(a, b)
	if sum.Sign() != 0 && sum.MantExp(nil) > ldMaxExp {
		return nil, false
	}
	return sum, true
}

// formatLongDouble prints f as Redis's ld2string does for humans: 17
// digits after the point, trailing zeros and a bare point dropped, "-0"
// as "0".
func formatLongDouble(f *big.Float) []byte {
	b := f.Append(nil, 'f', 17)
	if bytes.IndexByte(b, '.') >= 0 {
		b = bytes.TrimRight(b, "0")
		b = bytes.TrimSuffix(b, []byte("."))
	}
	if string(b) == "-0" {
		b = []byte("0")
	}
	return b
}
