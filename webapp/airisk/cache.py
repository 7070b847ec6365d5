"""Caches of upstream answers, keyed per token: in-process or in Redis."""

from __future__ import annotations

import hashlib
import hmac
import logging
import pickle
import secrets
import threading
import time
from collections import OrderedDict
from typing import Any, Generic, Protocol, TypeVar

log = logging.getLogger(__name__)

V = TypeVar("V")

#: Seconds a Redis cache that failed or did not answer in time is skipped.
SKIP_SECONDS = 5.0
#: Least lifetime of a token's key index in Redis, in milliseconds.
_INDEX_MS = 3600 * 1000


def keyed_name(key: bytes, token: str) -> str:
    """Return a name for ``token`` in cache keys: an HMAC of it under ``key``.

    A plain hash would let anyone who can read the cache confirm a guessed
    token and tell whose entries are whose; without ``key`` this is neither.
    """
    data = token.encode("utf-8", "surrogatepass")
    return hmac.new(key, data, hashlib.sha256).hexdigest()


class Sealer(Protocol):
    """Authenticated encryption of bytes (the sessions' TokenCipher)."""

    def seal(self, data: bytes) -> bytes:
        """Return ``data`` encrypted and authenticated."""

    def unseal(self, sealed: bytes) -> bytes | None:
        """Return the data, or None if ``sealed`` is forged or unreadable."""


class TTLCache(Generic[V]):
    """A thread-safe mapping whose entries expire, bounded by least recent use."""

    def __init__(self, maxsize: int) -> None:
        self._maxsize = maxsize
        # Lives in this process only: a per-process key is enough.
        self._name_key = secrets.token_bytes(32)
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def token_key(self, token: str) -> str:
        """Return the key prefix of ``token``'s entries; it does not reveal it."""
        return keyed_name(self._name_key, token)

    def ping(self) -> bool:
        """Return True: memory always answers."""
        return True

    def get(self, key: str) -> V | None:
        """Return the live value for ``key``, or None."""
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                return None
            expires, value = entry
            if expires < time.monotonic():
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return value

    def set(self, key: str, value: V, *, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds."""
        if ttl <= 0:
            return
        with self._lock:
            self._items[key] = (time.monotonic() + ttl, value)
            self._items.move_to_end(key)
            while len(self._items) > self._maxsize:
                self._items.popitem(last=False)

    def delete(self, key: str) -> None:
        """Forget ``key``."""
        with self._lock:
            self._items.pop(key, None)

    def delete_prefix(self, prefix: str) -> None:
        """Forget every key that starts with ``prefix``."""
        with self._lock:
            for key in [k for k in self._items if k.startswith(prefix)]:
                del self._items[key]


class Cache(Protocol):
    """What the service layer needs of a cache."""

    def token_key(self, token: str) -> str:
        """Return the key prefix of ``token``'s entries; it does not reveal it."""

    def ping(self) -> bool:
        """Return whether the cache answers (for the readiness check)."""

    def get(self, key: str) -> Any:
        """Return the live value for ``key``, or None."""

    def set(self, key: str, value: Any, *, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds."""

    def delete_prefix(self, prefix: str) -> None:
        """Forget every key that starts with ``prefix``."""


class RedisCache:
    """A cache shared by every instance, in Redis.

    Keys name a token by :func:`keyed_name` under ``name_key`` (derived from
    SECRET_KEY, so every instance agrees), never by the token or a plain hash
    of it. Values are pickled, then encrypted and authenticated by ``sealer``
    (the sessions' Fernet cipher under a key of its own): a copy of Redis
    shows no conversation text, and a value forged in Redis fails
    authentication and is never unpickled.

    The cache is optional: a Redis that fails, or does not answer within the
    client's (short) timeout, is skipped for :data:`SKIP_SECONDS`, so pages
    are fetched from AIRisk at once instead of each waiting on a hung Redis.
    """

    def __init__(
        self,
        client: Any,
        sealer: Sealer,
        name_key: bytes,
        prefix: str = "airisk-cache:",
    ) -> None:
        self._client = client
        self._sealer = sealer
        self._name_key = name_key
        self._prefix = prefix
        self._skip_until = 0.0

    def token_key(self, token: str) -> str:
        """Return the key prefix of ``token``'s entries; it does not reveal it."""
        return keyed_name(self._name_key, token)

    def _skipping(self) -> bool:
        return time.monotonic() < self._skip_until

    def _failed(self, exc: Exception) -> None:
        # Redis errors, timeouts included: degrade to a miss, and skip the
        # cache for a while so the next pages do not wait on it too.
        self._skip_until = time.monotonic() + SKIP_SECONDS
        log.warning(
            "Redis cache unavailable (%s): skipped for %.0f s",
            type(exc).__name__,
            SKIP_SECONDS,
        )

    def ping(self) -> bool:
        """Return whether Redis answers within the client's timeout."""
        try:
            self._client.ping()
        except Exception as exc:
            self._failed(exc)
            return False
        self._skip_until = 0.0
        return True

    def get(self, key: str) -> Any:
        """Return the live value for ``key``, or None."""
        if self._skipping():
            return None
        try:
            raw = self._client.get(self._prefix + key)
        except Exception as exc:
            self._failed(exc)
            return None
        if not raw:
            return None
        payload = self._sealer.unseal(raw)
        if payload is None:
            log.warning("Dropping a cache entry that does not authenticate")
            return None
        return pickle.loads(payload)  # authenticated: written by us

    def set(self, key: str, value: Any, *, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds."""
        if ttl <= 0 or self._skipping():
            return
        sealed = self._sealer.seal(
            pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        )
        px = max(1, int(ttl * 1000))
        index = self._index_key(key.split(":", 1)[0])
        try:
            with self._client.pipeline(transaction=False) as pipe:
                pipe.set(self._prefix + key, sealed, px=px)
                # The token's list of its keys, so sign-out deletes them
                # without scanning the keyspace. A string (APPEND), so the
                # cache holds one value type; it outlives its entries.
                pipe.append(index, (self._prefix + key + "\n").encode())
                pipe.pexpire(index, max(px, _INDEX_MS))
                pipe.execute()
        except Exception as exc:
            self._failed(exc)

    def delete_prefix(self, prefix: str) -> None:
        """Forget every key that starts with ``prefix`` (a token's key prefix)."""
        # Tried even while skipping: sign-out should drop what it can. One
        # read of the token's index, one delete: no SCAN over every key
        # (with 300k keys that took 5.6 s per sign-out).
        try:
            listed = self._client.getdel(self._index_key(prefix.rstrip(":")))
            wanted = (self._prefix + prefix).encode()
            keys = {k for k in (listed or b"").split(b"\n") if k.startswith(wanted)}
            if keys:
                self._client.delete(*keys)
        except Exception as exc:
            self._failed(exc)

    def _index_key(self, token_key: str) -> str:
        return f"{self._prefix}index:{token_key}"
