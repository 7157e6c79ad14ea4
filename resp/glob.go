package resp

// globMatch reports whether s matches the Redis glob pattern: '*', '?',
// '[...]' with ranges and '^' negation, and '\' escapes, as Redis's
// stringmatchlen. nocase folds ASCII letters.
func globMatch(pattern, s []byte, nocase bool) bool {
	fold := func(c byte) byte {
		if nocase && 'A' <= c && c <= 'Z' {
			return c + 'a' - 'A'
		}
		return c
	}
	// px and sx remember where to resume after the last '*' to backtrack
	// without recursion.
	p, i, px, sx := 0, 0, -1, -1
	for i < len(s) {
		if p < len(pattern) {
			switch c := pattern[p]; c {
			case '*':
				px, sx = p, i
				p++
				continue
			case '?':
				p++
				i++
				continue
			case '[':
				if np, ok := matchClass(pattern, p, fold(s[i]), fold); ok {
					p = np
					i++
					continue
				}
			case '\\':
				if p+1 < len(pattern) && fold(pattern[p+1]) == fold(s[i]) {
					p += 2
					i++
					continue
				}
			default:
				if fold(c) == fold(s[i]) {
					p++
					i++
					continue
				}
			}
		}
		if px < 0 {
			return false
		}
		sx++
		p, i = px+1, sx
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// matchClass matches c against the class starting at pattern[p] == '['.
// It returns the index after the class and whether c is in it.
func matchClass(pattern []byte, p int, c byte, fold func(byte) byte) (int, bool) {
	p++
	not := p < len(pattern) && pattern[p] == '^'
	if not {
		p++
	}
	match := false
	for p < len(pattern) && pattern[p] != ']' {
		switch {
		case pattern[p] == '\\' && p+1 < len(pattern):
			p++
			match = match || fold(pattern[p]) == c
		case p+2 < len(pattern) && pattern[p+1] == '-' && pattern[p+2] != ']':
			lo, hi := fold(pattern[p]), fold(pattern[p+2])
			if lo > hi {
				lo, hi = hi, lo
			}
			match = match || (lo <= c && c <= hi)
			p += 2
		default:
			match = match || fold(pattern[p]) == c
		}
		p++
	}
	if p < len(pattern) {
		p++ // the ']'
	}
	return p, match != not
}
