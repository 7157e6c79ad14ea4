// node-redis against a dynakv cluster:
//   node node_redis.js MODULE RESP HOST:PORT HOST:PORT ...
// MODULE is the package to load (redis, or an alias of another version);
// RESP is "default" or the protocol to ask for (node-redis 5 speaks RESP2 by
// default; node-redis 6 takes RESP: 3).
const [mod, resp, ...addrs] = process.argv.slice(2);
const { createClient } = require(mod);
const assert = require("assert");

(async () => {
  const opts = resp === "default" ? {} : { RESP: Number(resp) };
  const clients = addrs.map((a) => createClient({ url: `redis://${a}`, ...opts }));
  for (const c of clients) {
    c.on("error", (e) => { console.error("client error", e); process.exit(1); });
    await c.connect();
  }
  const a = clients[0], b = clients[clients.length - 1];
  await a.flushAll();
  assert.equal(await a.set("nr:s", "v1", { EX: 100, NX: true }), "OK");
  const ttl = await b.ttl("nr:s");
  assert.ok(ttl > 0 && ttl <= 100, `ttl ${ttl}`);
  assert.equal(await b.set("nr:s", "v2", { GET: true }), "v1");
  assert.equal(await a.ttl("nr:s"), -1); // SET without KEEPTTL clears it
  assert.equal(await a.mSet({ "nr:a": "1", "nr:b": "2" }), "OK");
  assert.deepEqual(await b.mGet(["nr:a", "nr:b", "nr:none"]), ["1", "2", null]);
  assert.equal(await a.incr("nr:n"), 1);
  assert.equal(await b.incrBy("nr:n", 10), 11);
  assert.equal(await a.decr("nr:n"), 10);
  assert.equal(await b.decrBy("nr:n", 3), 7);
  assert.ok(await a.expire("nr:n", 50));
  const t2 = await b.ttl("nr:n");
  assert.ok(t2 > 0 && t2 <= 50, `ttl ${t2}`);
  const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => [a.set(`nr:p${i}`, String(i)), a.get(`nr:p${i}`)]).flat());
  for (let i = 0; i < 100; i++) assert.equal(replies[2 * i + 1], String(i));
  const [ctx, values] = await a.sendCommand(["DGET", "nr:a"]);
  assert.deepEqual(values, ["1"]);
  await b.sendCommand(["DPUT", "nr:a", ctx, "merged"]);
  const [, after] = await b.sendCommand(["DGET", "nr:a"]);
  assert.deepEqual(after, ["merged"]);
  await assert.rejects(a.sendCommand(["DPUT", "nr:a", "%%%", "x"]), /invalid context/);
  // MULTI/EXEC.
  assert.deepEqual(await a.multi().set("{nr}t", "1").incr("{nr}t").get("{nr}t").exec(), ["OK", 2, "2"]);
  // Lua.
  assert.equal(await a.eval("return redis.call('incrby', KEYS[1], ARGV[1])", { keys: ["nr:lua"], arguments: ["5"] }), 5);
  // Hashes and sets, written through one node and read through another.
  assert.equal(await a.hSet("nr:cart", { sku1: "2", sku2: "1" }), 2);
  assert.deepEqual({ ...(await b.hGetAll("nr:cart")) }, { sku1: "2", sku2: "1" });
  assert.equal(await a.hIncrBy("nr:cart", "sku1", 3), 5);
  assert.equal(await a.sAdd("nr:tags", ["red", "green", "red"]), 2);
  assert.deepEqual([...(await b.sMembers("nr:tags"))].sort(), ["green", "red"]);
  assert.equal(await b.sCard("nr:tags"), 2);
  await assert.rejects(a.sAdd("nr:cart", "x"), /WRONGTYPE/);
  // Pub/sub: a subscriber on the last node gets what the first publishes.
  const sub = b.duplicate();
  sub.on("error", (e) => { console.error("subscriber error", e); process.exit(1); });
  await sub.connect();
  let deliver;
  const received = new Promise((resolve) => { deliver = resolve; });
  await sub.subscribe("nr:news", (msg, ch) => deliver([ch, msg])); // resolves once confirmed
  assert.equal(await a.publish("nr:news", "hello"), 1);
  assert.deepEqual(await received, ["nr:news", "hello"]);
  await sub.quit();
  for (const c of clients) await c.quit();
  console.log("node-redis", require(`${mod}/package.json`).version, "RESP", resp, "ok");
})().catch((e) => { console.error(e); process.exit(1); });
