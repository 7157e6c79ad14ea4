// ioredis against a dynakv cluster: node ioredis.js HOST:PORT HOST:PORT ...
const Redis = require("ioredis");
const assert = require("assert");

(async () => {
  const clients = process.argv.slice(2).map((a) => {
    const [host, port] = a.split(":");
    return new Redis({ host, port: Number(port), lazyConnect: true, maxRetriesPerRequest: 0 });
  });
  for (const c of clients) await c.connect();
  const a = clients[0], b = clients[clients.length - 1];
  await a.flushall();
  assert.equal(await a.set("io:s", "v1", "EX", 100, "NX"), "OK");
  const ttl = await b.ttl("io:s");
  assert.ok(ttl > 0 && ttl <= 100, `ttl ${ttl}`);
  assert.equal(await b.set("io:s", "v2", "GET"), "v1");
  assert.equal(await a.ttl("io:s"), -1); // SET without KEEPTTL clears it
  assert.equal(await a.mset("io:a", "1", "io:b", "2"), "OK");
  assert.deepEqual(await b.mget("io:a", "io:b", "io:none"), ["1", "2", null]);
  assert.equal(await a.incr("io:n"), 1);
  assert.equal(await b.incrby("io:n", 10), 11);
  assert.equal(await a.decr("io:n"), 10);
  assert.equal(await b.decrby("io:n", 3), 7);
  assert.equal(await a.expire("io:n", 50), 1);
  const t2 = await b.ttl("io:n");
  assert.ok(t2 > 0 && t2 <= 50, `ttl ${t2}`);
  const p = a.pipeline();
  for (let i = 0; i < 100; i++) p.set(`io:p${i}`, i).get(`io:p${i}`);
  const res = await p.exec();
  for (let i = 0; i < 100; i++) assert.equal(res[2 * i + 1][1], String(i));
  const [ctx, values] = await a.call("DGET", "io:a");
  assert.deepEqual(values, ["1"]);
  await b.call("DPUT", "io:a", ctx, "merged");
  const [, after] = await b.call("DGET", "io:a");
  assert.deepEqual(after, ["merged"]);
  await assert.rejects(a.call("DPUT", "io:a", "%%%", "x"), /invalid context/);
  // MULTI/EXEC.
  const tx = await a.multi().set("{io}t", "1").incr("{io}t").get("{io}t").exec();
  assert.deepEqual(tx, [[null, "OK"], [null, 2], [null, "2"]]);
  // Lua: eval, and a command defined from a script (EVALSHA).
  assert.equal(await a.eval("return redis.call('incrby', KEYS[1], ARGV[1])", 1, "io:lua", 5), 5);
  a.defineCommand("incrTwice", { numberOfKeys: 1, lua: "redis.call('incr', KEYS[1]) return redis.call('incr', KEYS[1])" });
  assert.equal(await a.incrTwice("io:lua"), 7);
  // Hashes and sets, written through one node and read through another.
  assert.equal(await a.hset("io:cart", { sku1: "2", sku2: "1" }), 2);
  assert.deepEqual(await b.hgetall("io:cart"), { sku1: "2", sku2: "1" });
  assert.equal(await a.hincrby("io:cart", "sku1", 3), 5);
  assert.equal(await a.sadd("io:tags", "red", "green", "red"), 2);
  assert.deepEqual((await b.smembers("io:tags")).sort(), ["green", "red"]);
  assert.equal(await b.scard("io:tags"), 2);
  await assert.rejects(a.sadd("io:cart", "x"), /WRONGTYPE/);
  // Pub/sub: a subscriber on the last node gets what the first publishes.
  const sub = b.duplicate();
  const received = new Promise((resolve) => sub.on("message", (ch, msg) => resolve([ch, msg])));
  assert.equal(await sub.subscribe("io:news"), 1);
  assert.equal(await a.publish("io:news", "hello"), 1);
  assert.deepEqual(await received, ["io:news", "hello"]);
  sub.disconnect();
  // The cluster client: it reads the slots with CLUSTER SLOTS and sends
  // each command to a replica of its key.
  const seeds = process.argv.slice(2).map((x) => {
    const [host, port] = x.split(":");
    return { host, port: Number(port) };
  });
  const cluster = new Redis.Cluster(seeds, { redisOptions: { maxRetriesPerRequest: 0 } });
  for (let i = 0; i < 100; i++) assert.equal(await cluster.set(`io:cluster:${i}`, String(i)), "OK");
  for (let i = 0; i < 100; i++) assert.equal(await b.get(`io:cluster:${i}`), String(i));
  assert.equal(await cluster.get("io:cluster:7"), "7");
  const nodes = cluster.nodes("master");
  assert.ok(nodes.length === clients.length, `${nodes.length} masters`);
  await cluster.quit();
  for (const c of clients) c.disconnect();
  console.log("ioredis", require("ioredis/package.json").version, "ok");
})().catch((e) => { console.error(e); process.exit(1); });
