package resp

import (
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// The conversions between Redis replies and Lua values that scripts see
// (redis.call's results) and return (the script's reply), as Redis makes
// them.

// statusTable is {ok=msg} or {err=msg}: how scripts see status and error
// replies.
func statusTable(L *lua.LState, field, msg string) *lua.LTable {
	t := L.NewTable()
	t.RawSetString(field, lua.LString(msg))
	return t
}

func stringsTable(L *lua.LState, ss [][]byte) *lua.LTable {
	t := L.CreateTable(len(ss), 0)
	for _, s := range ss {
		t.Append(lua.LString(string(s)))
	}
	return t
}

// parseReply converts one reply into a Lua value as Redis does:
// integers to numbers, bulk strings to strings, a null to false, arrays
// to tables, a status to {ok=...}, an error to {err=...}; and the RESP3
// types a script that called redis.setresp(3) gets: a map to {map=...},
// a set to {set=...}, a double to {double=...}, a null to nil, booleans
// to booleans, big numbers and verbatim strings to tables naming them.
func parseReply(L *lua.LState, b []byte) (lua.LValue, []byte, bool) {
	i := strings.Index(string(b), "\r\n")
	if len(b) == 0 || i < 0 {
		return nil, nil, false
	}
	line, rest := string(b[1:i]), b[i+2:]
	switch b[0] {
	case '+':
		return statusTable(L, "ok", line), rest, true
	case '-':
		return statusTable(L, "err", line), rest, true
	case ':':
		n, err := strconv.ParseInt(line, 10, 64)
		return lua.LNumber(n), rest, err == nil
	case '$':
		n, err := strconv.Atoi(line)
		if err != nil || n < -1 || (n >= 0 && len(rest) < n+2) {
			return nil, nil, false
		}
		if n == -1 {
			return lua.LFalse, rest, true
		}
		return lua.LString(string(rest[:n])), rest[n+2:], true
	case '*':
		n, err := strconv.Atoi(line)
		if err != nil || n < -1 {
			return nil, nil, false
		}
		if n == -1 {
			return lua.LFalse, rest, true
		}
		t := L.CreateTable(n, 0)
		for range n {
			var v lua.LValue
			var ok bool
			if v, rest, ok = parseReply(L, rest); !ok {
				return nil, nil, false
			}
			t.Append(v)
		}
		return t, rest, true
	case '%', '~':
		// RESP3 map and set: {map={k=v}}, {set={member=true}}.
		n, err := strconv.Atoi(line)
		if err != nil || n < 0 {
			return nil, nil, false
		}
		inner := L.CreateTable(0, n)
		for range n {
			var k, v lua.LValue = nil, lua.LTrue
			var ok bool
			if k, rest, ok = parseReply(L, rest); !ok {
				return nil, nil, false
			}
			if b[0] == '%' {
				if v, rest, ok = parseReply(L, rest); !ok {
					return nil, nil, false
				}
			}
			inner.RawSet(k, v)
		}
		field := "map"
		if b[0] == '~' {
			field = "set"
		}
		t := L.CreateTable(0, 1)
		t.RawSetString(field, inner)
		return t, rest, true
	case '_':
		return lua.LNil, rest, true
	case '#':
		return lua.LBool(line == "t"), rest, true
	case ',':
		f, err := strconv.ParseFloat(line, 64)
		t := L.CreateTable(0, 1)
		t.RawSetString("double", lua.LNumber(f))
		return t, rest, err == nil
	case '(':
		t := L.CreateTable(0, 1)
		t.RawSetString("big_number", lua.LString(line))
		return t, rest, true
	case '=':
		n, err := strconv.Atoi(line)
		if err != nil || n < 4 || len(rest) < n+2 {
			return nil, nil, false
		}
		vs := L.CreateTable(0, 2)
		vs.RawSetString("format", lua.LString(string(rest[:3])))
		vs.RawSetString("string", lua.LString(string(rest[4:n])))
		t := L.CreateTable(0, 1)
		t.RawSetString("verbatim_string", vs)
		return t, rest[n+2:], true
	}
	return nil, nil, false
}

// luaReply writes a script's result as Redis converts it: a number to
// an integer (truncated), a string to a bulk string, true to 1, false
// and nil to a null (after setresp(3), booleans to booleans), {ok=...} to
// a status, {err=...} to an error, {map=...}, {set=...}, {double=...},
// {big_number=...} and {verbatim_string=...} to those RESP3 types (their
// RESP2 forms for a RESP2 client), any other table to an array of its
// elements up to the first nil.
func luaReply(L *lua.LState, v lua.LValue, r *reply, resp3 bool) {
	switch v := v.(type) {
	case lua.LNumber:
		r.int(int64(v))
	case lua.LString:
		r.bulkString(string(v))
	case lua.LBool:
		switch {
		case resp3 && r.resp3 && bool(v):
			r.b = append(r.b, "#t\r\n"...)
		case resp3 && r.resp3:
			r.b = append(r.b, "#f\r\n"...)
		case resp3 && !bool(v):
			r.int(0)
		case bool(v):
			r.int(1)
		default:
			r.null()
		}
	case *lua.LTable:
		if e, ok := v.RawGetString("err").(lua.LString); ok {
			r.err(oneLine(string(e)))
			return
		}
		if s, ok := v.RawGetString("ok").(lua.LString); ok {
			r.status(oneLine(string(s)))
			return
		}
		if luaResp3Reply(L, v, r, resp3) {
			return
		}
		n := 0
		for v.RawGetInt(n+1) != lua.LNil {
			n++
		}
		r.array(n)
		for i := 1; i <= n; i++ {
			luaReply(L, v.RawGetInt(i), r, resp3)
		}
	default:
		r.null()
	}
}

// luaResp3Reply writes a table that stands for a RESP3 type, as
// parseReply makes them, and reports whether v was one.
func luaResp3Reply(L *lua.LState, v *lua.LTable, r *reply, resp3 bool) bool {
	if m, ok := v.RawGetString("map").(*lua.LTable); ok {
		n := 0
		m.ForEach(func(lua.LValue, lua.LValue) { n++ })
		r.mapLen(n)
		m.ForEach(func(k, val lua.LValue) {
			luaReply(L, k, r, resp3)
			luaReply(L, val, r, resp3)
		})
		return true
	}
	if set, ok := v.RawGetString("set").(*lua.LTable); ok {
		n := 0
		set.ForEach(func(lua.LValue, lua.LValue) { n++ })
		r.setLen(n)
		set.ForEach(func(k, _ lua.LValue) { luaReply(L, k, r, resp3) })
		return true
	}
	if d, ok := v.RawGetString("double").(lua.LNumber); ok {
		text := strconv.FormatFloat(float64(d), 'g', 17, 64)
		if r.resp3 {
			r.b = append(append(append(r.b, ','), text...), '\r', '\n')
		} else {
			r.bulkString(text)
		}
		return true
	}
	if b, ok := v.RawGetString("big_number").(lua.LString); ok {
		if r.resp3 {
			r.b = append(append(append(r.b, '('), b...), '\r', '\n')
		} else {
			r.bulkString(string(b))
		}
		return true
	}
	if vs, ok := v.RawGetString("verbatim_string").(*lua.LTable); ok {
		text, _ := vs.RawGetString("string").(lua.LString)
		r.verbatim(string(text))
		return true
	}
	return false
}
