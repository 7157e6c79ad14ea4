"""redis-py against a dynakv cluster: python3 redis_py.py HOST:PORT HOST:PORT ..."""
import sys

import redis

addrs = sys.argv[1:]
clients = [redis.Redis(host=a.split(":")[0], port=int(a.split(":")[1]), decode_responses=True) for a in addrs]
a, b = clients[0], clients[-1]

a.flushall()
assert a.set("py:s", "v1", ex=100, nx=True) is True
assert 0 < b.ttl("py:s") <= 100
assert b.set("py:s", "v2", get=True) == "v1"
assert a.ttl("py:s") == -1  # SET without KEEPTTL clears it
assert a.mset({"py:a": "1", "py:b": "2"}) is True
assert b.mget("py:a", "py:b", "py:none") == ["1", "2", None]
assert a.incr("py:n") == 1
assert b.incrby("py:n", 10) == 11   # redis-py sends INCRBY
assert a.decr("py:n") == 10
assert b.decrby("py:n", 3) == 7     # and DECRBY
assert a.expire("py:n", 50) is True
assert 0 < b.ttl("py:n") <= 50
assert a.persist("py:n") is True and b.ttl("py:n") == -1
pipe = a.pipeline(transaction=False)
for i in range(100):
    pipe.set(f"py:p{i}", i)
    pipe.get(f"py:p{i}")
out = pipe.execute()
assert out[1::2] == [str(i) for i in range(100)], out[:6]
ctx, values = a.execute_command("DGET", "py:a")
assert values == ["1"], values
new = b.execute_command("DPUT", "py:a", ctx, "merged")
ctx2, values = b.execute_command("DGET", "py:a")
assert values == ["merged"], values
try:
    a.execute_command("DPUT", "py:a", "%%%", "x")
    raise AssertionError("a malformed context was accepted")
except redis.ResponseError as e:
    assert str(e) == "invalid context", str(e)
# A pipeline is a MULTI/EXEC transaction by default.
tx = a.pipeline()
tx.set("{py}t", "1").incr("{py}t").get("{py}t")
assert tx.execute() == [True, 2, "2"]
# A Lock acquires with SET NX PX and releases with a Lua script (EVALSHA).
lock = a.lock("py:lock", timeout=10)
assert lock.acquire(blocking=False)
assert not b.lock("py:lock", timeout=10).acquire(blocking=False)
lock.release()
assert b.get("py:lock") is None
assert a.eval("return redis.call('incrby', KEYS[1], ARGV[1])", 1, "py:lua", 5) == 5
# Hashes and sets, written through one node and read through another.
assert a.hset("py:cart", mapping={"sku1": "2", "sku2": "1"}) == 2
assert b.hgetall("py:cart") == {"sku1": "2", "sku2": "1"}
assert a.hincrby("py:cart", "sku1", 3) == 5
assert b.hget("py:cart", "sku1") == "5"
assert a.hdel("py:cart", "sku2") == 1 and b.hkeys("py:cart") == ["sku1"]
assert a.sadd("py:tags", "red", "green", "red") == 2
assert b.smembers("py:tags") == {"red", "green"}
assert b.sismember("py:tags", "red") and b.scard("py:tags") == 2
assert a.srem("py:tags", "red", "green") == 2 and b.exists("py:tags") == 0
try:
    a.sadd("py:cart", "x")
    raise AssertionError("SADD on a hash was accepted")
except redis.ResponseError as e:
    assert str(e).startswith("WRONGTYPE"), str(e)
# Pub/sub: a subscriber on the last node gets what the first publishes.
ps = b.pubsub()
ps.subscribe("py:news")
ps.psubscribe("py:n*")
while True:  # the two confirmations
    m = ps.get_message(timeout=5)
    if m and m["type"] == "psubscribe":
        break
assert a.publish("py:news", "hello") == 2
got = []
while len(got) < 2:
    m = ps.get_message(timeout=5)
    assert m is not None, got
    if m["type"] in ("message", "pmessage"):
        got.append((m["type"], m["channel"], m["data"]))
assert sorted(got) == [("message", "py:news", "hello"), ("pmessage", "py:news", "hello")], got
ps.close()
print("redis-py", redis.__version__, "ok")
