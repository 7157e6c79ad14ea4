package resp

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dynakv/dynakv/coord"

	"github.com/dynakv/dynakv/replica"
	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// Lua scripts: EVAL, EVALSHA, their read-only forms and SCRIPT, run by
// gopher-lua with Redis's redis.* API and conversions. A script's keys
// must share a slot; it runs at the slot's leader under the slot's lock,
// as a transaction does (multi.go), so scripts and transactions on a slot
// take turns. redis.call goes through the command table, the same path a
// client's command takes; a script may read keys of any slot but write
// only its own. A script has no os, io, loadfile or dofile, and is
// stopped after Options.ScriptTimeout.

// scriptCache holds the compiled scripts of this node by SHA1, as
// SCRIPT LOAD and EVAL leave them.
type scriptCache struct {
	mu      sync.Mutex
	scripts map[string]*script
}

type script struct {
	src   string
	proto *lua.FunctionProto
}

// sha1hex is a script's name: the SHA1 of its source, in lowercase hex.
func sha1hex(s string) string {
	h := sha1.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// load compiles src (once) and caches it under its SHA1.
func (sc *scriptCache) load(src string) (string, *script, error) {
	sha := sha1hex(src)
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sp := sc.scripts[sha]; sp != nil {
		return sha, sp, nil
	}
	chunk, err := parse.Parse(strings.NewReader(src), "user_script")
	if err != nil {
		return sha, nil, fmt.Errorf("ERR Error compiling script (new function): %s", oneLine(err.Error()))
	}
	proto, err := lua.Compile(chunk, "user_script")
	if err != nil {
		return sha, nil, fmt.Errorf("ERR Error compiling script (new function): %s", oneLine(err.Error()))
	}
	if sc.scripts == nil {
		sc.scripts = map[string]*script{}
	}
	sp := &script{src: src, proto: proto}
	sc.scripts[sha] = sp
	return sha, sp, nil
}

func (sc *scriptCache) get(sha string) *script {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.scripts[strings.ToLower(sha)]
}

func (sc *scriptCache) flush() {
	sc.mu.Lock()
	sc.scripts = nil
	sc.mu.Unlock()
}

func oneLine(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }

const errNoScript = "NOSCRIPT No matching script. Please use EVAL."

// cmdEval serves EVAL, EVALSHA, EVAL_RO and EVALSHA_RO.
func cmdEval(s *Server, c *client, args [][]byte, r *reply) {
	name := strings.ToLower(string(args[0]))
	readOnly := strings.HasSuffix(name, "_ro")
	var sp *script
	if strings.HasPrefix(name, "evalsha") {
		if sp = s.scripts.get(string(args[1])); sp == nil {
			r.err(errNoScript)
			return
		}
	} else {
		var err error
		if _, sp, err = s.scripts.load(string(args[1])); err != nil {
			r.err(err.Error())
			return
		}
	}
	numKeys, err := strconv.ParseInt(string(args[2]), 10, 64)
	switch {
	case err != nil:
		r.err(errNotInteger)
		return
	case numKeys < 0:
		r.err("ERR Number of keys can't be negative")
		return
	case numKeys > int64(len(args)-3):
		r.err("ERR Number of keys can't be greater than number of args")
		return
	}
	keys, argv := args[3:3+numKeys], args[3+numKeys:]
	tx := &transaction{slot: -1}
	for _, k := range keys {
		if !tx.sameSlot(k) {
			r.err(errCrossSlot)
			return
		}
	}
	if c.inExec || tx.slot < 0 || s.opts.ForwardExec == nil {
		// Inside a transaction the slot's lock is held already; a
		// script without keys has no slot to run at.
		s.evalHere(r.ctx, c, sp, tx.slot, keys, argv, readOnly, r)
		return
	}
	// Forwarded as one EVAL with its source: the leader may not have it.
	eval := append([][]byte{[]byte("eval"), []byte(sp.src), args[2]}, args[3:]...)
	if readOnly {
		eval[0] = []byte("eval_ro")
	}
	tx.cmds, tx.specs = [][][]byte{eval}, []*command{s.lookup(eval[0])}
	s.execAtLeader(c, tx, nil, true, r)
}

// evalHere runs a script on this node, holding the lock of its slot's
// stripe unless the caller holds it.
func (s *Server) evalHere(ctx context.Context, c *client, sp *script, slot int, keys, argv [][]byte, readOnly bool, r *reply) {
	if slot >= 0 && !c.inExec {
		mu := &s.slotLocks[slot%len(s.slotLocks)]
		mu.Lock()
		defer mu.Unlock()
	}
	// The script's writes go to the other replicas together when it ends
	// (a group of EXEC's when it runs inside one).
	pl, g, start := r.pl, (*coord.Group)(nil), len(r.b)
	if !c.inExec && slot >= 0 && !readOnly {
		var err error
		if g, err = s.coord.NewGroup(keys[0]); err != nil {
			fail(r, err)
			return
		}
		if g != nil {
			pl = g.Pipelined()
		}
	}
	defer func() {
		if err := s.coord.Commit(ctx, g); err != nil {
			r.b = r.b[:start]
			fail(r, err)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, s.opts.ScriptTimeout)
	defer cancel()
	vm, _ := s.luaVMs.Get().(*luaVM)
	if vm == nil {
		vm = newLuaVM()
	}
	L := vm.L
	vm.run = &scriptRun{s: s, c: c, ctx: ctx, pl: pl, slot: slot, readOnly: readOnly}
	vm.globals.RawSetString("KEYS", stringsTable(L, keys))
	vm.globals.RawSetString("ARGV", stringsTable(L, argv))
	L.SetContext(ctx)
	L.Push(L.NewFunctionFromProto(sp.proto))
	err := L.PCall(0, 1, nil)
	switch {
	case err == nil:
		luaReply(L, L.Get(-1), r, vm.run.resp3)
	case ctx.Err() != nil:
		r.err(fmt.Sprintf("BUSY the script ran past its time limit of %d ms and was stopped", s.opts.ScriptTimeout.Milliseconds()))
	default:
		var apiErr *lua.ApiError
		switch {
		case errors.As(err, &apiErr) && apiErr.Object != nil && apiErr.Object.Type() == lua.LTTable:
			luaReply(L, apiErr.Object, r, vm.run.resp3) // an error table raised by redis.call or error()
		case apiErr != nil && apiErr.Object != nil:
			r.err("ERR " + oneLine(apiErr.Object.String())) // the message, without Go's stack trace
		default:
			r.err("ERR " + oneLine(err.Error()))
		}
	}
	if ctx.Err() == nil && vm.reset() {
		s.luaVMs.Put(vm)
	}
}

// luaVM is a sandboxed interpreter kept for the next script: opening the
// libraries and building the sandbox costs more than most scripts. The
// globals table refuses new globals and reads of undeclared ones, and the
// libraries and redis are read-only, as in Redis 7, so one script leaves
// nothing behind for the next; reset restores what a script could still
// replace (a global it assigned).
type luaVM struct {
	L        *lua.LState
	globals  *lua.LTable
	baseline map[string]lua.LValue
	run      *scriptRun // the running script, for redis.call
}

func newLuaVM() *luaVM {
	// The data stack grows on demand up to what a call of 8 000 unpacked
	// arguments needs (Redis's LUAI_MAXCSTACK).
	L := lua.NewState(lua.Options{SkipOpenLibs: true, MinimizeStackMemory: true,
		RegistrySize: 1024, RegistryMaxSize: 64 * 1024, RegistryGrowStep: 1024})
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}, {lua.StringLibName, lua.OpenString}, {lua.MathLibName, lua.OpenMath}} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	vm := &luaVM{L: L, globals: L.G.Global, baseline: map[string]lua.LValue{}}
	for _, name := range []string{"dofile", "loadfile", "module", "require", "_printregs", "newproxy", "_GOPHER_LUA_VERSION"} {
		vm.globals.RawSetString(name, lua.LNil)
	}
	vm.globals.RawSetString("print", L.NewFunction(func(*lua.LState) int { return 0 }))
	vm.globals.RawSetString("redis", readOnly(L, vm.api(L)))
	for _, name := range []string{"string", "table", "math"} {
		vm.globals.RawSetString(name, readOnly(L, vm.globals.RawGetString(name)))
	}
	vm.globals.ForEach(func(k, v lua.LValue) {
		if name, ok := k.(lua.LString); ok {
			vm.baseline[string(name)] = v
		}
	})
	mt := L.NewTable()
	mt.RawSetString("__newindex", L.NewFunction(func(L *lua.LState) int {
		L.RaiseError("Attempt to modify a readonly table")
		return 0
	}))
	mt.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		L.RaiseError("Script attempted to access nonexistent global variable '%s'", L.CheckString(2))
		return 0
	}))
	L.SetMetatable(vm.globals, mt)
	return vm
}

// readOnly returns a proxy of t that reads through to it and refuses
// writes.
func readOnly(L *lua.LState, t lua.LValue) *lua.LTable {
	proxy, mt := L.NewTable(), L.NewTable()
	mt.RawSetString("__index", t)
	mt.RawSetString("__newindex", L.NewFunction(func(L *lua.LState) int {
		L.RaiseError("Attempt to modify a readonly table")
		return 0
	}))
	mt.RawSetString("__metatable", lua.LFalse)
	L.SetMetatable(proxy, mt)
	return proxy
}

// reset readies the VM for the next script: the stack emptied, KEYS and
// ARGV gone, every global as it was built. It reports false for a VM not
// worth keeping.
func (vm *luaVM) reset() bool {
	vm.L.SetTop(0)
	vm.L.RemoveContext()
	vm.run = nil
	var extra []lua.LValue
	vm.globals.ForEach(func(k, _ lua.LValue) {
		if name, ok := k.(lua.LString); !ok || vm.baseline[string(name)] == nil {
			extra = append(extra, k)
		}
	})
	for _, k := range extra {
		vm.globals.RawSet(k, lua.LNil)
	}
	for name, v := range vm.baseline {
		vm.globals.RawSetString(name, v)
	}
	return vm.L.GetMetatable(vm.globals) != lua.LNil
}

// scriptRun is one script's run: what redis.call needs.
type scriptRun struct {
	s        *Server
	c        *client
	ctx      context.Context
	pl       *coord.Pipelined // the group collecting the script's writes
	slot     int
	readOnly bool
	// resp3 is set by redis.setresp(3): the script's commands answer in
	// RESP3, converted to Lua as Redis does, and its booleans are
	// RESP3 booleans.
	resp3 bool
}

// api is the script's redis table; its calls run as the VM's current
// script.
func (vm *luaVM) api(L *lua.LState) *lua.LTable {
	t := L.NewTable()
	L.SetFuncs(t, map[string]lua.LGFunction{
		"call":  func(L *lua.LState) int { return vm.run.call(L, true) },
		"pcall": func(L *lua.LState) int { return vm.run.call(L, false) },
		"error_reply": func(L *lua.LState) int {
			L.Push(statusTable(L, "err", L.CheckString(1)))
			return 1
		},
		"status_reply": func(L *lua.LState) int {
			L.Push(statusTable(L, "ok", L.CheckString(1)))
			return 1
		},
		"sha1hex": func(L *lua.LState) int {
			L.Push(lua.LString(sha1hex(L.CheckString(1))))
			return 1
		},
		"log":                func(L *lua.LState) int { return 0 },
		"replicate_commands": func(L *lua.LState) int { L.Push(lua.LTrue); return 1 },
		"set_repl":           func(L *lua.LState) int { return 0 },
		"breakpoint":         func(L *lua.LState) int { L.Push(lua.LFalse); return 1 },
		"debug":              func(L *lua.LState) int { return 0 },
		"setresp": func(L *lua.LState) int {
			switch L.CheckInt(1) {
			case 2:
				vm.run.resp3 = false
			case 3:
				vm.run.resp3 = true
			default:
				L.Error(statusTable(L, "err", "ERR RESP version must be 2 or 3."), 1)
			}
			return 0
		},
		"acl_check_cmd": func(L *lua.LState) int { L.Push(lua.LTrue); return 1 },
	})
	for i, name := range []string{"LOG_DEBUG", "LOG_VERBOSE", "LOG_NOTICE", "LOG_WARNING"} {
		t.RawSetString(name, lua.LNumber(i))
	}
	for name, v := range map[string]int{"REPL_NONE": 0, "REPL_AOF": 1, "REPL_REPLICA": 2, "REPL_SLAVE": 2, "REPL_ALL": 3} {
		t.RawSetString(name, lua.LNumber(v))
	}
	return t
}

// notInScripts are the commands a script may not run, as in Redis.
var notInScripts = map[string]bool{
	"multi": true, "exec": true, "discard": true, "watch": true, "unwatch": true,
	"eval": true, "evalsha": true, "eval_ro": true, "evalsha_ro": true, "script": true,
	"subscribe": true, "psubscribe": true, "ssubscribe": true, "unsubscribe": true,
	"punsubscribe": true, "sunsubscribe": true, "quit": true, "reset": true, "auth": true,
	"hello": true, "client": true, "select": true, "wait": true, "monitor": true,
}

// call runs redis.call (raise) or redis.pcall (return the error table).
func (x *scriptRun) call(L *lua.LState, raise bool) int {
	n := L.GetTop()
	fail := func(msg string) int {
		if raise {
			L.Error(statusTable(L, "err", msg), 1)
			return 0
		}
		L.Push(statusTable(L, "err", msg))
		return 1
	}
	if n == 0 {
		return fail("ERR Please specify at least one argument for this redis lib call")
	}
	args := make([][]byte, n)
	for i := 1; i <= n; i++ {
		switch v := L.Get(i).(type) {
		case lua.LString:
			args[i-1] = []byte(string(v))
		case lua.LNumber:
			// As Redis formats them: C's %.17g.
			args[i-1] = []byte(strconv.FormatFloat(float64(v), 'g', 17, 64))
		default:
			return fail("ERR Lua redis lib command arguments must be strings or integers")
		}
	}
	spec := x.s.lookup(args[0])
	if spec != nil && spec.sub != nil && len(args) > 1 {
		spec = lookupIn(spec.sub, args[1])
	}
	switch {
	case spec == nil:
		return fail("ERR Unknown Redis command called from script")
	case notInScripts[spec.name] || notInScripts[spec.parent]:
		return fail("ERR This Redis command is not allowed from script")
	case !spec.arityOK(len(args)):
		return fail("ERR Wrong number of args calling Redis command from script")
	case spec.flags&flagWrite != 0 && x.readOnly:
		return fail("ERR Write commands are not allowed from read-only scripts.")
	}
	if spec.flags&flagWrite != 0 && x.slot >= 0 {
		// A script that declares its keys runs at their slot's leader and
		// writes there only; one that declares none runs where it
		// arrives, unordered with others, as every command would.
		for _, k := range spec.keys(args) {
			if int(replica.Slot(k)) != x.slot {
				return fail("ERR Script attempted to access a key that does not hash to the slot of its KEYS; " +
					"declare every key it writes in KEYS, in one slot")
			}
		}
	}
	r := &reply{ctx: x.ctx, pl: x.pl, resp3: x.resp3}
	x.s.run(spec, x.c, args, r)
	v, rest, ok := parseReply(L, r.b)
	if !ok || len(rest) != 0 {
		return fail("ERR internal error: unexpected reply to a script's command")
	}
	if t, isTable := v.(*lua.LTable); isTable && raise && t.RawGetString("err") != lua.LNil {
		L.Error(t, 1)
		return 0
	}
	L.Push(v)
	return 1
}

// cmdScriptLoad serves SCRIPT LOAD: the script compiled and cached on
// this node, its SHA1 answered.
func cmdScriptLoad(s *Server, c *client, args [][]byte, r *reply) {
	sha, _, err := s.scripts.load(string(args[2]))
	if err != nil {
		r.err(err.Error())
		return
	}
	r.bulkString(sha)
}

func cmdScriptExists(s *Server, c *client, args [][]byte, r *reply) {
	r.array(len(args) - 2)
	for _, sha := range args[2:] {
		if s.scripts.get(string(sha)) != nil {
			r.int(1)
		} else {
			r.int(0)
		}
	}
}

func cmdScriptFlush(s *Server, c *client, args [][]byte, r *reply) {
	if len(args) == 3 && !strings.EqualFold(string(args[2]), "async") && !strings.EqualFold(string(args[2]), "sync") {
		r.err("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
		return
	}
	s.scripts.flush()
	r.ok()
}

func cmdScriptHelp(s *Server, c *client, args [][]byte, r *reply) {
	r.helpLines("SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
		"EXISTS <sha1> [<sha1> ...]", "    Return information about the existence of the scripts in the script cache.",
		"FLUSH [ASYNC|SYNC]", "    Flush the Lua scripts cache. Very dangerous on replicas.",
		"LOAD <script>", "    Load a script into the scripts cache without executing it.",
		"HELP", "    Print this help.")
}

// scriptTimeout is how long a script may run when Options do not say.
const scriptTimeout = 5 * time.Second
