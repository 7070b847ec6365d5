"""Caches of upstream answers, keyed per token: in-process or in Redis."""

from __future__ import annotations

import hashlib
import hmac
import logging
import pickle
import threading
import time
from collections import OrderedDict
from typing import Any, Generic, Protocol, TypeVar

log = logging.getLogger(__name__)

V = TypeVar("V")


def token_key(token: str) -> str:
    """Return a cache key for ``token`` that does not reveal it."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class TTLCache(Generic[V]):
    """A thread-safe mapping whose entries expire, bounded by least recent use."""

    def __init__(self, maxsize: int) -> None:
        self._maxsize = maxsize
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

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

    def get(self, key: str) -> Any:
        """Return the live value for ``key``, or None."""

    def set(self, key: str, value: Any, *, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds."""

    def delete_prefix(self, prefix: str) -> None:
        """Forget every key that starts with ``prefix``."""


class RedisCache:
    """A cache shared by every instance, in Redis.

    Values are pickled *and signed* (HMAC-SHA256 with a key derived from
    SECRET_KEY): a value someone forged in Redis fails the signature check
    and is never unpickled. Redis being down makes the cache a miss, never
    an error: the page is then simply fetched from AIRisk.
    """

    def __init__(self, client: Any, secret: str, prefix: str = "airisk-cache:") -> None:
        self._client = client
        self._key = hashlib.sha256(b"airisk-viewer cache\0" + secret.encode()).digest()
        self._prefix = prefix

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()

    def get(self, key: str) -> Any:
        """Return the live value for ``key``, or None."""
        try:
            raw = self._client.get(self._prefix + key)
        except Exception as exc:  # redis errors: degrade to a miss
            log.warning("Redis cache unavailable: %s", type(exc).__name__)
            return None
        if not raw or len(raw) < 32:
            return None
        signature, payload = raw[:32], raw[32:]
        if not hmac.compare_digest(signature, self._sign(payload)):
            log.warning("Dropping a cache entry with a bad signature")
            return None
        return pickle.loads(payload)  # signed by us: not attacker-controlled

    def set(self, key: str, value: Any, *, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds."""
        if ttl <= 0:
            return
        payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self._client.set(
                self._prefix + key,
                self._sign(payload) + payload,
                px=max(1, int(ttl * 1000)),
            )
        except Exception as exc:  # redis errors: the cache is optional
            log.warning("Redis cache unavailable: %s", type(exc).__name__)

    def delete_prefix(self, prefix: str) -> None:
        """Forget every key that starts with ``prefix``."""
        try:
            keys = list(self._client.scan_iter(match=self._prefix + prefix + "*"))
            if keys:
                self._client.delete(*keys)
        except Exception as exc:
            log.warning("Redis cache unavailable: %s", type(exc).__name__)
