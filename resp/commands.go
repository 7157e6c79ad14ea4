package resp

import (
	"sort"
	"time"
)

// flags describe a command, for COMMAND and for the pipeline scheduler.
type flags uint16

const (
	flagWrite flags = 1 << iota
	flagReadonly
	flagFast
	flagAdmin
	// flagNoAuth commands run before AUTH.
	flagNoAuth
	// flagBarrier commands change the connection's state or read the whole
	// keyspace, so in a pipeline they run after everything before them and
	// before everything after them.
	flagBarrier
	// flagPubSub marks the pub/sub commands, as Redis's COMMAND shows.
	flagPubSub
)

var flagNames = []struct {
	f    flags
	name string
}{
	{flagWrite, "write"}, {flagReadonly, "readonly"}, {flagAdmin, "admin"},
	{flagNoAuth, "no_auth"}, {flagFast, "fast"}, {flagPubSub, "pubsub"},
}

// handler runs one command. It may run concurrently with other commands of
// the same connection (never with one on the same key), so it touches the
// client only through client's methods, except barrier commands.
type handler func(s *Server, c *client, args [][]byte, r *reply)

// command is one entry of the command table: everything the server needs to
// know about a command, declared once.
type command struct {
	name   string // lowercase
	parent string // the container command of a subcommand
	// arity is Redis's: n > 0 means exactly n arguments (the name counts),
	// n < 0 at least -n.
	arity int
	flags flags
	// first, last and step locate the keys among the arguments, as in
	// COMMAND's reply; last < 0 counts from the end. first == 0: no keys.
	first, last, step int
	group, summary    string
	since             string
	run               handler
	sub               map[string]*command
	// observe learns of every run: the command's stats, and the metrics
	// hook when metrics are on (Options.Observe).
	observe func(took time.Duration, errPrefix string)
	stats   cmdStats
}

func (c *command) fullName() string {
	if c.parent != "" {
		return c.parent + "|" + c.name
	}
	return c.name
}

func (c *command) arityOK(n int) bool {
	if c.arity >= 0 {
		return n == c.arity
	}
	return n >= -c.arity
}

// keys returns the key arguments of args.
func (c *command) keys(args [][]byte) [][]byte {
	if c.first == 0 || c.first >= len(args) {
		return nil
	}
	last := c.last
	if last < 0 {
		last += len(args)
	}
	if c.step == 1 {
		return args[c.first:min(last+1, len(args))] // most commands: no copy
	}
	var keys [][]byte
	for i := c.first; i <= last && i < len(args); i += c.step {
		keys = append(keys, args[i])
	}
	return keys
}

// def is the shorthand the table is written in.
type def struct {
	name              string
	arity             int
	flags             flags
	first, last, step int
	group, since      string
	summary           string
	run               handler
	sub               []def
}

const (
	groupConnection   = "connection"
	groupServer       = "server"
	groupString       = "string"
	groupGeneric      = "generic"
	groupDynamo       = "dynamo"
	groupCluster      = "cluster"
	groupPubSub       = "pubsub"
	groupTransactions = "transactions"
	groupScripting    = "scripting"
)

// commandDefs is the command table.
func commandDefs() []def {
	return []def{
		{name: "ping", arity: -1, flags: flagFast, group: groupConnection, since: "1.0.0", summary: "Returns the server's liveliness response.", run: cmdPing},
		{name: "echo", arity: 2, flags: flagFast, group: groupConnection, since: "1.0.0", summary: "Returns the given string.", run: cmdEcho},
		{name: "quit", arity: -1, flags: flagFast | flagNoAuth | flagBarrier, group: groupConnection, since: "1.0.0", summary: "Closes the connection.", run: cmdQuit},
		{name: "select", arity: 2, flags: flagFast | flagBarrier, group: groupConnection, since: "1.0.0", summary: "Changes the selected database; only database 0 exists.", run: cmdSelect},
		{name: "hello", arity: -1, flags: flagFast | flagNoAuth | flagBarrier, group: groupConnection, since: "6.0.0", summary: "Handshakes with the server and picks the protocol, RESP2 or RESP3.", run: cmdHello},
		{name: "auth", arity: -2, flags: flagFast | flagNoAuth | flagBarrier, group: groupConnection, since: "1.0.0", summary: "Authenticates the connection.", run: cmdAuth},
		{name: "client", arity: -2, flags: flagBarrier, group: groupConnection, since: "2.4.0", summary: "A container for client connection commands.", sub: []def{
			{name: "setname", arity: 3, flags: flagBarrier, since: "2.6.9", summary: "Sets the connection name.", run: cmdClientSetName},
			{name: "getname", arity: 2, flags: flagBarrier, since: "2.6.9", summary: "Returns the name of the connection.", run: cmdClientGetName},
			{name: "id", arity: 2, flags: flagBarrier, since: "5.0.0", summary: "Returns the unique client ID of the connection.", run: cmdClientID},
			{name: "setinfo", arity: 4, flags: flagBarrier, since: "7.2.0", summary: "Sets information specific to the client or connection.", run: cmdClientSetInfo},
			{name: "info", arity: 2, flags: flagBarrier, since: "6.2.0", summary: "Returns information about the connection.", run: cmdClientInfo},
			{name: "list", arity: -2, flags: flagBarrier | flagAdmin, since: "2.4.0", summary: "Lists open connections.", run: cmdClientList},
			{name: "kill", arity: -3, flags: flagBarrier | flagAdmin, since: "2.4.0", summary: "Closes the connections that match an address, an id or other filters.", run: cmdClientKill},
			{name: "pause", arity: -3, flags: flagBarrier | flagAdmin, since: "3.0.0", summary: "Holds this node's clients' commands (or writes) for a time.", run: cmdClientPause},
			{name: "unpause", arity: 2, flags: flagBarrier | flagAdmin, since: "6.2.0", summary: "Lifts CLIENT PAUSE.", run: cmdClientUnpause},
			{name: "reply", arity: 3, flags: flagBarrier, since: "3.2.0", summary: "Turns the connection's replies on, off, or off for the next command.", run: cmdClientReply},
			{name: "no-evict", arity: 3, flags: flagBarrier, since: "7.0.0", summary: "Accepted: dynakv never evicts clients.", run: cmdClientNoEvict},
			{name: "no-touch", arity: 3, flags: flagBarrier, since: "7.2.0", summary: "Accepted: dynakv does not track key access.", run: cmdClientNoEvict},
			{name: "help", arity: 2, flags: flagBarrier, since: "5.0.0", summary: "Returns helpful text about the different subcommands.", run: cmdClientHelp},
		}},
		{name: "subscribe", arity: -2, flags: flagPubSub | flagBarrier, group: groupPubSub, since: "2.0.0", summary: "Listens for messages published to channels, on any node.", run: cmdSubscribe(kindChannel, "subscribe")},
		{name: "psubscribe", arity: -2, flags: flagPubSub | flagBarrier, group: groupPubSub, since: "2.0.0", summary: "Listens for messages published to channels that match patterns, on any node.", run: cmdSubscribe(kindPattern, "psubscribe")},
		{name: "ssubscribe", arity: -2, flags: flagPubSub | flagBarrier, group: groupPubSub, since: "7.0.0", summary: "Listens for messages published to shard channels, on any node.", run: cmdSubscribe(kindShard, "ssubscribe")},
		{name: "unsubscribe", arity: -1, flags: flagPubSub | flagBarrier, group: groupPubSub, since: "2.0.0", summary: "Stops listening to messages posted to channels.", run: cmdUnsubscribe(kindChannel, "unsubscribe")},
		{name: "punsubscribe", arity: -1, flags: flagPubSub | flagBarrier, group: groupPubSub, since: "2.0.0", summary: "Stops listening to messages published to channels that match patterns.", run: cmdUnsubscribe(kindPattern, "punsubscribe")},
		{name: "sunsubscribe", arity: -1, flags: flagPubSub | flagBarrier, group: groupPubSub, since: "7.0.0", summary: "Stops listening to messages posted to shard channels.", run: cmdUnsubscribe(kindShard, "sunsubscribe")},
		{name: "publish", arity: 3, flags: flagPubSub | flagFast, group: groupPubSub, since: "2.0.0", summary: "Posts a message to a channel, for subscribers on every node.", run: cmdPublish},
		{name: "spublish", arity: 3, flags: flagPubSub | flagFast, group: groupPubSub, since: "7.0.0", summary: "Posts a message to a shard channel, for subscribers on every node.", run: cmdPublish},
		{name: "pubsub", arity: -2, group: groupPubSub, since: "2.8.0", summary: "A container for Pub/Sub commands.", sub: []def{
			{name: "channels", arity: -2, flags: flagPubSub, since: "2.8.0", summary: "Returns this node's active channels.", run: cmdPubSubChannels},
			{name: "shardchannels", arity: -2, flags: flagPubSub, since: "7.0.0", summary: "Returns this node's active shard channels.", run: cmdPubSubChannels},
			{name: "numsub", arity: -2, flags: flagPubSub, since: "2.8.0", summary: "Returns a count of this node's subscribers to channels.", run: cmdPubSubNumSub},
			{name: "shardnumsub", arity: -2, flags: flagPubSub, since: "7.0.0", summary: "Returns the count of this node's subscribers of shard channels.", run: cmdPubSubNumSub},
			{name: "numpat", arity: 2, flags: flagPubSub, since: "2.8.0", summary: "Returns a count of this node's unique pattern subscriptions.", run: cmdPubSubNumPat},
			{name: "help", arity: 2, since: "6.2.0", summary: "Returns helpful text about the different subcommands.", run: cmdPubSubHelp},
		}},
		{name: "monitor", arity: 1, flags: flagBarrier | flagAdmin, group: groupServer, since: "1.0.0", summary: "Streams every command this node runs.", run: cmdMonitor},
		{name: "multi", arity: 1, flags: flagFast | flagBarrier, group: groupTransactions, since: "1.2.0", summary: "Starts a transaction.", run: cmdMulti},
		{name: "exec", arity: 1, flags: flagBarrier, group: groupTransactions, since: "1.2.0", summary: "Runs the queued commands of a transaction, unless a watched key changed.", run: cmdExec},
		{name: "discard", arity: 1, flags: flagFast | flagBarrier, group: groupTransactions, since: "2.0.0", summary: "Discards a transaction.", run: cmdDiscard},
		{name: "watch", arity: -2, flags: flagFast | flagBarrier, first: 1, last: -1, step: 1, group: groupTransactions, since: "2.2.0", summary: "Watches keys: EXEC aborts if one changes before it.", run: cmdWatch},
		{name: "unwatch", arity: 1, flags: flagFast | flagBarrier, group: groupTransactions, since: "2.2.0", summary: "Forgets the watched keys.", run: cmdUnwatch},
		{name: "eval", arity: -3, flags: flagBarrier, group: groupScripting, since: "2.6.0", summary: "Runs a Lua script at the leader of its keys' slot.", run: cmdEval},
		{name: "evalsha", arity: -3, flags: flagBarrier, group: groupScripting, since: "2.6.0", summary: "Runs a cached Lua script at the leader of its keys' slot.", run: cmdEval},
		{name: "eval_ro", arity: -3, flags: flagBarrier | flagReadonly, group: groupScripting, since: "7.0.0", summary: "Runs a read-only Lua script.", run: cmdEval},
		{name: "evalsha_ro", arity: -3, flags: flagBarrier | flagReadonly, group: groupScripting, since: "7.0.0", summary: "Runs a cached read-only Lua script.", run: cmdEval},
		{name: "script", arity: -2, group: groupScripting, since: "2.6.0", summary: "A container for Lua scripts management commands.", sub: []def{
			{name: "load", arity: 3, since: "2.6.0", summary: "Loads a Lua script into this node's cache.", run: cmdScriptLoad},
			{name: "exists", arity: -3, since: "2.6.0", summary: "Reports whether scripts are in this node's cache.", run: cmdScriptExists},
			{name: "flush", arity: -2, since: "2.6.0", summary: "Empties this node's script cache.", run: cmdScriptFlush},
			{name: "help", arity: 2, since: "5.0.0", summary: "Returns helpful text about the different subcommands.", run: cmdScriptHelp},
		}},
		{name: "reset", arity: 1, flags: flagFast | flagNoAuth | flagBarrier, group: groupConnection, since: "6.2.0", summary: "Resets the connection: no name, and a new AUTH when a password is set.", run: cmdReset},
		{name: "command", arity: -1, group: groupServer, since: "2.8.13", summary: "Returns detailed information about all commands.", run: cmdCommand, sub: []def{
			{name: "count", arity: 2, since: "2.8.13", summary: "Returns a count of commands.", run: cmdCommandCount},
			{name: "docs", arity: -2, since: "7.0.0", summary: "Returns documentary information about one, multiple or all commands.", run: cmdCommandDocs},
			{name: "info", arity: -2, since: "2.8.13", summary: "Returns information about one, multiple or all commands.", run: cmdCommandInfo},
			{name: "list", arity: -2, since: "7.0.0", summary: "Returns a list of command names.", run: cmdCommandList},
			{name: "getkeys", arity: -4, since: "2.8.13", summary: "Extracts the key names from an arbitrary command.", run: cmdCommandGetKeys},
			{name: "help", arity: 2, since: "5.0.0", summary: "Returns helpful text about the different subcommands.", run: cmdCommandHelp},
		}},
		{name: "config", arity: -2, group: groupServer, since: "2.0.0", summary: "A container for server configuration commands.", sub: []def{
			{name: "get", arity: -3, flags: flagAdmin, since: "2.0.0", summary: "Returns the effective values of configuration parameters.", run: cmdConfigGet},
			{name: "set", arity: -4, flags: flagAdmin, since: "2.0.0", summary: "Sets the slow log's parameters; the rest is in config.toml.", run: cmdConfigSet},
			{name: "resetstat", arity: 2, flags: flagAdmin, since: "2.0.0", summary: "Resets the statistics INFO shows and the slow log.", run: cmdConfigResetStat},
			{name: "help", arity: 2, since: "5.0.0", summary: "Returns helpful text about the different subcommands.", run: cmdConfigHelp},
		}},
		{name: "info", arity: -1, flags: flagBarrier, group: groupServer, since: "1.0.0", summary: "Returns information and statistics about the server.", run: cmdInfo},
		{name: "dbsize", arity: 1, flags: flagReadonly | flagFast | flagBarrier, group: groupServer, since: "1.0.0", summary: "Returns the number of keys in the cluster.", run: cmdDBSize},
		{name: "time", arity: 1, flags: flagFast, group: groupServer, since: "2.6.0", summary: "Returns the server time.", run: cmdTime},
		{name: "lastsave", arity: 1, flags: flagFast, group: groupServer, since: "1.0.0", summary: "Returns when the node started or last checkpointed, Unix seconds: every write is logged as it is acknowledged.", run: cmdLastSave},
		{name: "role", arity: 1, flags: flagFast, group: groupServer, since: "2.8.12", summary: "Returns the replication role: a master with no Redis-style replicas.", run: cmdRole},
		{name: "wait", arity: 3, flags: flagBarrier, group: groupGeneric, since: "3.0.0", summary: "Waits until the connection's last write is on that many replicas besides the first, or the timeout.", run: cmdWait},
		{name: "slowlog", arity: -2, flags: flagAdmin, group: groupServer, since: "2.2.12", summary: "Returns, counts or resets the log of slow commands: SLOWLOG GET|LEN|RESET|HELP.", run: cmdSlowlog},
		{name: "latency", arity: -2, flags: flagAdmin, group: groupServer, since: "2.8.13", summary: "The latency monitor, off as Redis's default has it: LATENCY LATEST|HISTORY|RESET|DOCTOR|HELP.", run: cmdLatency},
		{name: "memory", arity: -2, group: groupServer, since: "4.0.0", summary: "A container for memory diagnostics commands.", sub: []def{
			{name: "usage", arity: -3, flags: flagReadonly, first: 2, last: 2, step: 1, since: "4.0.0", summary: "Returns the bytes a key and its value take in one replica's store.", run: cmdMemoryUsage},
			{name: "help", arity: 2, since: "4.0.0", summary: "Returns helpful text about the different subcommands.", run: cmdMemoryHelp},
		}},
		{name: "object", arity: -2, group: groupGeneric, since: "2.2.3", summary: "Inspects a key's value: OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT|HELP.", run: cmdObject},
		{name: "randomkey", arity: 1, flags: flagReadonly, group: groupGeneric, since: "1.0.0", summary: "Returns a random key of the cluster.", run: cmdRandomKey},

		{name: "get", arity: 2, flags: flagReadonly | flagFast, first: 1, last: 1, step: 1, group: groupString, since: "1.0.0", summary: "Returns the string value of a key.", run: cmdGet},
		{name: "set", arity: -3, flags: flagWrite, first: 1, last: 1, step: 1, group: groupString, since: "1.0.0", summary: "Sets the string value of a key, ignoring its type.", run: cmdSet},
		{name: "mget", arity: -2, flags: flagReadonly | flagFast, first: 1, last: -1, step: 1, group: groupString, since: "1.0.0", summary: "Atomically returns the string values of one or more keys.", run: cmdMGet},
		{name: "mset", arity: -3, flags: flagWrite, first: 1, last: -1, step: 2, group: groupString, since: "1.0.1", summary: "Sets the string values of one or more keys (not atomically across keys).", run: cmdMSet},
		{name: "del", arity: -2, flags: flagWrite, first: 1, last: -1, step: 1, group: groupGeneric, since: "1.0.0", summary: "Deletes one or more keys.", run: cmdDel},
		{name: "unlink", arity: -2, flags: flagWrite | flagFast, first: 1, last: -1, step: 1, group: groupGeneric, since: "4.0.0", summary: "Deletes one or more keys.", run: cmdDel},
		{name: "setnx", arity: 3, flags: flagWrite | flagFast, first: 1, last: 1, step: 1, group: groupString, since: "1.0.0", summary: "Sets a key's value only when the key doesn't exist.", run: cmdSetNX},
		{name: "setex", arity: 4, flags: flagWrite, first: 1, last: 1, step: 1, group: groupString, since: "2.0.0", summary: "Sets a key's value and expiry in seconds.", run: cmdSetEx},
		{name: "psetex", arity: 4, flags: flagWrite, first: 1, last: 1, step: 1, group: groupString, since: "2.6.0", summary: "Sets a key's value and expiry in milliseconds.", run: cmdSetEx},
		{name: "getset", arity: 3, flags: flagWrite | flagFast, first: 1, last: 1, step: 1, group: groupString, since: "1.0.0", summary: "Returns the previous value of a key after setting it to a new one.", run: cmdGetSet},
		{name: "getdel", arity: 2, flags: flagWrite | flagFast, first: 1, last: 1, step: 1, group: groupString, since: "6.2.0", summary: "Returns a key's value after deleting the key.", run: cmdGetDel},
		{name: "getex", arity: -2, flags: flagWrite | flagFast, first: 1, last: 1, step: 1, group: groupString, since: "6.2.0", summary: "Returns a key's value after optionally setting its expiry.", run: cmdGetEx},
		{name: "append", arity: 3, flags: flagWrite | flagFast, first: 1, last: 1, step: 1, group: groupString, since: "2.0.0", summary: "Appends a string to a key's value; creates the key if needed.", run: cmdAppend},
		{name: "setrange", arity: 4, flags: flagWrite, first: 1, last: 1, step: 1, group: groupString, since: "2.2.0", summary: "Overwrites part of a string at an offset, padding with zero bytes; creates the key if needed.", run: cmdSetRange},
		{name: "getrange", arity: 4, flags: flagReadonly, first: 1, last: 1, step: 1, group: groupString, since: "2.4.0", summary: "Returns a substring of a key's string, counted from the end when negative.", run: cmdGetRange},
		{name: "substr", arity: 4, flags: flagReadonly, first: 1, last: 1, step: 1, group: groupString, since: "1.0.0", summary: "Returns a substring of a key's string (GETRANGE's old name).", run: cmdGetRange},
		{name: "lcs", arity: -3, flags: flagReadonly, first: 1, last: 2, step: 1, group: groupString, since: "7.0.0", summary: "Finds the longest common subsequence of two strings, its length or its matching ranges.", run: cmdLCS},
		{name: "strlen", arity: 2, flags: flagReadonly | flagFast, first: 1, last: 1, step: 1, group: groupString, since: "2.2.0", summary: "Returns the length of a key's value.", run: cmdStrlen},
		{name: "incr", arity: 2, flags: flagWrite | flagFast, first: 1, last: 1, step: 1, group: groupString, since: "1.0.0", summary: "Increments a convergent counter by one.", run: cmdIncr},
		{name: "decr", arity: 2, flags: flagWrite | flagFast, first: 1, last: 1, step: 1, group: groupString, since: "1.0.0", summary: "Decrements a convergent counter by one.", run: cmdIncr},
		{name: "incrby", arity: 3, flags: flagWrite | flagFast, first: 1, last: 1, step: 1, group: groupString, since: "1.0.0", summary: "Increments a convergent counter by a number.", run: cmdIncr},
		{name: "decrby", arity: 3, flags: flagWrite | flagFast, first: 1, last: 1, step: 1, group: groupString, since: "1.0.0", summary: "Decrements a convergent counter by a number.", run: cmdIncr},
		{name: "incrbyfloat", arity: 3, flags: flagWrite | flagFast, first: 1, last: 1, step: 1, group: groupString, since: "2.6.0", summary: "Increments a key's number by a float (read-modify-write, not convergent).", run: cmdIncrByFloat},
		{name: "expire", arity: -3, flags: flagWrite | flagFast, first: 1, last: 1, step: 1, group: groupGeneric, since: "1.0.0", summary: "Sets a key's expiry in seconds.", run: cmdExpire},
		{name: "pexpire", arity: -3, flags: flagWrite | flagFast, first: 1, last: 1, step: 1, group: groupGeneric, since: "2.6.0", summary: "Sets a key's expiry in milliseconds.", run: cmdExpire},
		{name: "expireat", arity: -3, flags: flagWrite | flagFast, first: 1, last: 1, step: 1, group: groupGeneric, since: "1.2.0", summary: "Sets a key's expiry to a Unix time in seconds.", run: cmdExpire},
		{name: "pexpireat", arity: -3, flags: flagWrite | flagFast, first: 1, last: 1, step: 1, group: groupGeneric, since: "2.6.0", summary: "Sets a key's expiry to a Unix time in milliseconds.", run: cmdExpire},
		{name: "persist", arity: 2, flags: flagWrite | flagFast, first: 1, last: 1, step: 1, group: groupGeneric, since: "2.2.0", summary: "Removes a key's expiry.", run: cmdPersist},
		{name: "ttl", arity: 2, flags: flagReadonly | flagFast, first: 1, last: 1, step: 1, group: groupGeneric, since: "1.0.0", summary: "Returns a key's time to live in seconds.", run: cmdTTL},
		{name: "pttl", arity: 2, flags: flagReadonly | flagFast, first: 1, last: 1, step: 1, group: groupGeneric, since: "2.6.0", summary: "Returns a key's time to live in milliseconds.", run: cmdTTL},
		{name: "expiretime", arity: 2, flags: flagReadonly | flagFast, first: 1, last: 1, step: 1, group: groupGeneric, since: "7.0.0", summary: "Returns a key's expiry as a Unix time in seconds.", run: cmdTTL},
		{name: "pexpiretime", arity: 2, flags: flagReadonly | flagFast, first: 1, last: 1, step: 1, group: groupGeneric, since: "7.0.0", summary: "Returns a key's expiry as a Unix time in milliseconds.", run: cmdTTL},
		{name: "type", arity: 2, flags: flagReadonly | flagFast, first: 1, last: 1, step: 1, group: groupGeneric, since: "1.0.0", summary: "Returns a key's type: string, or none.", run: cmdType},
		{name: "scan", arity: -2, flags: flagReadonly | flagBarrier, group: groupGeneric, since: "2.8.0", summary: "Iterates over the cluster's keys; the cursor resumes across partitions and nodes.", run: cmdScan},
		{name: "keys", arity: 2, flags: flagReadonly | flagBarrier, group: groupGeneric, since: "1.0.0", summary: "Returns every key of the cluster that matches a pattern.", run: cmdKeys},
		{name: "flushall", arity: -1, flags: flagWrite | flagBarrier, group: groupServer, since: "1.0.0", summary: "Removes every key of the cluster.", run: cmdFlushAll},
		{name: "flushdb", arity: -1, flags: flagWrite | flagBarrier, group: groupServer, since: "1.0.0", summary: "Removes every key of the cluster (there is one database).", run: cmdFlushAll},
		{name: "msetnx", arity: -3, flags: flagWrite | flagBarrier, first: 1, last: -1, step: 2, group: groupString, since: "1.0.1", summary: "Sets several keys of one slot, only if none exists, at the slot's leader.", run: cmdMSetNX},
		{name: "rename", arity: 3, flags: flagWrite | flagBarrier, first: 1, last: 2, step: 1, group: groupGeneric, since: "1.0.0", summary: "Renames a key within its slot, at the slot's leader.", run: cmdRename},
		{name: "renamenx", arity: 3, flags: flagWrite | flagBarrier | flagFast, first: 1, last: 2, step: 1, group: groupGeneric, since: "1.0.0", summary: "Renames a key within its slot if the new name is free.", run: cmdRename},
		{name: "copy", arity: -3, flags: flagWrite | flagBarrier, first: 1, last: 2, step: 1, group: groupGeneric, since: "6.2.0", summary: "Copies a key's value within its slot, at the slot's leader.", run: cmdCopy},
		{name: "touch", arity: -2, flags: flagReadonly | flagFast, first: 1, last: -1, step: 1, group: groupGeneric, since: "3.2.1", summary: "Counts the given keys that exist (access times are not tracked).", run: cmdExists},
		{name: "exists", arity: -2, flags: flagReadonly | flagFast, first: 1, last: -1, step: 1, group: groupGeneric, since: "1.0.0", summary: "Determines whether one or more keys exist.", run: cmdExists},

		{name: "dget", arity: -2, flags: flagReadonly, first: 1, last: 1, step: 1, group: groupDynamo, since: "0.1.0", summary: "Returns a key's causal context and every sibling value: DGET key [R n].", run: cmdDGet},
		{name: "dput", arity: -4, flags: flagWrite, first: 1, last: 1, step: 1, group: groupDynamo, since: "0.1.0", summary: "Writes a value under a causal context and returns the new context: DPUT key context value [W n].", run: cmdDPut},
		{name: "dyn.members", arity: 1, flags: flagReadonly, group: groupCluster, since: "0.1.0", summary: "Lists every node: id, client, peer and gossip addresses, state.", run: cmdDynMembers},
		{name: "dyn.preflist", arity: 2, flags: flagReadonly, first: 1, last: 1, step: 1, group: groupCluster, since: "0.1.0", summary: "Returns the N nodes that own a key, in preference order, each up or down.", run: cmdDynPreflist},
		{name: "dyn.ring", arity: 1, flags: flagReadonly, group: groupCluster, since: "0.1.0", summary: "Returns the ring epoch, then each node's partition count.", run: cmdDynRing},
		{name: "dyn.transfers", arity: 1, flags: flagReadonly, group: groupCluster, since: "0.2.0", summary: "Returns the transfers of the ring change in progress: node, state, partitions, done, objects copied, objects expected, ms.", run: cmdDynTransfers},
		{name: "dyn.hints", arity: 1, flags: flagReadonly, group: groupCluster, since: "0.2.0", summary: "Returns the hints this node keeps for each unreachable node: target, hints, bytes, age of the oldest in seconds.", run: cmdDynHints},
		{name: "dyn.leave", arity: 1, flags: flagAdmin, group: groupCluster, since: "0.1.0", summary: "Hands this node's partitions to the others, then leaves the ring and stops.", run: cmdDynLeave},
		{name: "dyn.forget", arity: 2, flags: flagAdmin, group: groupCluster, since: "0.1.0", summary: "Removes a dead node from the ring for good; its replicas are rebuilt elsewhere.", run: cmdDynForget},
		{name: "dyn.checkpoint", arity: 1, flags: flagAdmin, group: groupCluster, since: "0.1.0", summary: "Writes a consistent backup of this node's data while it serves; returns its directory.", run: cmdDynCheckpoint},
		{name: "dyn.repair", arity: 1, flags: flagAdmin, group: groupCluster, since: "0.1.0", summary: "Starts a Merkle exchange of every partition this node holds with each other replica.", run: cmdDynRepair},
		{name: "cluster", arity: -2, group: groupCluster, since: "3.0.0", summary: "A container for Redis Cluster commands: the ring described as slots.", sub: []def{
			{name: "slots", arity: 2, flags: flagReadonly, since: "3.0.0", summary: "Returns the runs of slots with their replicas, the first one up as master.", run: cmdClusterSlots},
			{name: "shards", arity: 2, flags: flagReadonly, since: "7.0.0", summary: "Returns each node as the master of the runs of slots it heads.", run: cmdClusterShards},
			{name: "nodes", arity: 2, flags: flagReadonly, since: "3.0.0", summary: "Returns each node and the runs of slots it heads, in Redis's format.", run: cmdClusterNodes},
			{name: "myid", arity: 2, flags: flagReadonly, since: "3.0.0", summary: "Returns this node's cluster id.", run: cmdClusterMyID},
			{name: "myshardid", arity: 2, flags: flagReadonly, since: "7.2.0", summary: "Returns this node's shard id (each node is its own shard).", run: cmdClusterMyID},
			{name: "info", arity: 2, flags: flagReadonly, since: "3.0.0", summary: "Returns information about the cluster.", run: cmdClusterInfo},
			{name: "keyslot", arity: 3, flags: flagReadonly, since: "3.0.0", summary: "Returns the hash slot of a key.", run: cmdClusterKeySlot},
			{name: "countkeysinslot", arity: 3, flags: flagReadonly, since: "3.0.0", summary: "Returns the number of keys in a hash slot.", run: cmdClusterCountKeysInSlot},
			{name: "getkeysinslot", arity: 4, flags: flagReadonly, since: "3.0.0", summary: "Returns keys of a hash slot.", run: cmdClusterGetKeysInSlot},
			{name: "help", arity: 2, since: "5.0.0", summary: "Returns helpful text about the different subcommands.", run: cmdClusterHelp},
		}},
		{name: "readonly", arity: 1, flags: flagFast, group: groupCluster, since: "3.0.0", summary: "Accepted for cluster clients: any node serves reads.", run: cmdOK},
		{name: "readwrite", arity: 1, flags: flagFast, group: groupCluster, since: "3.0.0", summary: "Accepted for cluster clients: any node serves writes.", run: cmdOK},
		{name: "asking", arity: 1, flags: flagFast, group: groupCluster, since: "3.0.0", summary: "Accepted for cluster clients; no node redirects.", run: cmdOK},
		{name: "ddel", arity: -3, flags: flagWrite, first: 1, last: 1, step: 1, group: groupDynamo, since: "0.1.0", summary: "Deletes the siblings a causal context has seen: DDEL key context [W n].", run: cmdDDel},
	}
}

// commandTable builds the lookup table from commandDefs.
func commandTable() map[string]*command {
	table := make(map[string]*command)
	for _, d := range append(commandDefs(), containerDefs()...) {
		table[d.name] = d.build("", d.group)
	}
	return table
}

func (d def) build(parent, group string) *command {
	c := &command{
		name: d.name, parent: parent, arity: d.arity, flags: d.flags,
		first: d.first, last: d.last, step: d.step,
		group: group, summary: d.summary, since: d.since, run: d.run,
	}
	if len(d.sub) > 0 {
		c.sub = make(map[string]*command)
		for _, sd := range d.sub {
			c.sub[sd.name] = sd.build(d.name, group)
		}
	}
	return c
}

// sortedCommands returns the table's commands by name.
func (s *Server) sortedCommands() []*command {
	out := make([]*command, 0, len(s.commands))
	for _, c := range s.commands {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func sortedSubs(c *command) []*command {
	out := make([]*command, 0, len(c.sub))
	for _, sc := range c.sub {
		out = append(out, sc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}
