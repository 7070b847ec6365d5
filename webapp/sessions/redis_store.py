"""The Redis session store, shared by every instance."""

from __future__ import annotations

import json
import time
from typing import Any

from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from .base import SafeSessions, SessionLimit, StoreUnavailable, _dumps

# One atomic step: write the record, drop expired entries from the global
# index, drop this client's sessions that are gone, evict its oldest past its
# cap, then keep the record if the store is below its global cap. Keys named
# inside the script (this client's sessions) are not declared: fine on one
# Redis, not on Redis Cluster.
_CREATE_SCRIPT = """
local record, index, client = KEYS[1], KEYS[2], KEYS[3]
local value, ttl, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local per_client, total = tonumber(ARGV[4]), tonumber(ARGV[5])
local client_ttl = tonumber(ARGV[6])
-- The record first: Redis checks its memory limit at a script's first write,
-- so a Redis that refuses writes refuses the whole sign-in.
redis.call('SET', record, value, 'EX', ttl)
redis.call('ZREMRANGEBYSCORE', index, '-inf', now)
for _, key in ipairs(redis.call('ZRANGE', client, 0, -1)) do
  if redis.call('EXISTS', key) == 0 then
    redis.call('ZREM', client, key)
    redis.call('ZREM', index, key)
  end
end
while redis.call('ZCARD', client) >= per_client do
  local oldest = redis.call('ZRANGE', client, 0, 0)[1]
  redis.call('DEL', oldest)
  redis.call('ZREM', client, oldest)
  redis.call('ZREM', index, oldest)
end
if redis.call('ZCARD', index) >= total then
  redis.call('DEL', record)
  return 0
end
redis.call('ZADD', index, now + ttl, record)
redis.call('ZADD', client, now, record)
redis.call('EXPIRE', client, client_ttl)
return 1
"""


class RedisSessions(SafeSessions):
    """Signed-in sessions in Redis (shared by every instance), as JSON.

    ``session:<id>`` holds a record (with its TTL); ``session-index`` scores
    every record by its expiry, so counting is ``ZCARD`` and dropping what
    expired is a range delete; ``session-client:<client>`` lists one
    client's records by creation. Sign-out deletes one key and one index
    entry: nothing scans the keyspace.

    Flask-Session's Redis backend falls back to ``pickle.loads`` when a value
    is not msgpack; reading JSON ourselves means a forged value placed in
    Redis is at most an unreadable session.
    """

    prefix = "session:"
    index = "session-index"
    clients = "session-client:"
    probe_key = "session-readiness-probe"

    def __init__(self, client: Redis, **limits: Any) -> None:
        super().__init__(**limits)
        self.client = client
        self._create_script = client.register_script(_CREATE_SCRIPT)

    def _read(self, sid: str) -> dict[str, Any] | None:
        try:
            raw = self.client.get(self.prefix + sid)
        except RedisError as exc:
            raise StoreUnavailable(type(exc).__name__) from exc
        if not raw:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def _create(self, sid: str, data: dict[str, Any], ttl: int, client: str) -> None:
        client_ttl = int(self.absolute.total_seconds())
        try:
            created = self._create_script(
                keys=[self.prefix + sid, self.index, self.clients + client],
                args=[
                    _dumps(data),
                    ttl,
                    int(time.time()),
                    self.max_per_client,
                    self.max_signed_in,
                    client_ttl,
                ],
            )
        except RedisError as exc:
            raise StoreUnavailable(type(exc).__name__) from exc
        if not created:
            raise SessionLimit()

    def _replace(self, sid: str, data: dict[str, Any], ttl: int) -> bool:
        key = self.prefix + sid
        try:
            with self.client.pipeline() as pipe:
                pipe.set(key, _dumps(data), ex=ttl, xx=True)
                pipe.zadd(self.index, {key: int(time.time()) + ttl}, xx=True)
                replaced, _ = pipe.execute()
        except RedisError as exc:
            raise StoreUnavailable(type(exc).__name__) from exc
        return bool(replaced)

    def _remove(self, sid: str) -> None:
        key = self.prefix + sid
        try:
            with self.client.pipeline() as pipe:
                pipe.delete(key)
                pipe.zrem(self.index, key)
                pipe.execute()
        except RedisError as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    def _probe(self) -> None:
        # A write, not a PING: a Redis at its memory limit with the
        # noeviction policy answers PING and refuses every sign-in.
        try:
            self.client.set(self.probe_key, b"1", px=10_000)
        except RedisError as exc:
            raise StoreUnavailable(type(exc).__name__) from exc


def redis_client(url: str, *, timeout: float = 2, retry: bool = True) -> Redis:
    """Return a Redis client for ``url`` (redis:// or rediss:// with password).

    ``timeout`` bounds connecting and each answer, in seconds; without
    ``retry``, a failed or timed-out command is not tried again (redis-py
    retries three times with backoff by default).
    """
    options: dict[str, Any] = {}
    if not retry:
        options["retry"] = Retry(NoBackoff(), 0)
    return Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=15,
        **options,
    )
