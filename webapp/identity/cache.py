"""Cap what is cached per token at the time the token has left (team mode).

A minted token has a known ``expiration``. An answer fetched with it must not
be served after that: the token it was read with no longer works, and the
access it stood for may have been withdrawn. This wrapper lowers the TTL of
every entry under a token's key prefix to the token's time left; tokens it
was not told about keep the configured TTLs (token mode).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from ..airisk.cache import Cache

#: Most token expirations remembered per process (the oldest go first).
_MAX_TOKENS = 10_000


class TokenCappedCache:
    """A :class:`Cache` whose entries never outlive their token."""

    def __init__(self, inner: Cache) -> None:
        self.inner = inner
        self._lock = threading.Lock()
        self._expires: OrderedDict[str, float] = OrderedDict()

    def limit(self, token: str, expires: float) -> None:
        """Remember that ``token`` stops working at ``expires`` (Unix time)."""
        prefix = self.inner.token_key(token)
        with self._lock:
            self._expires[prefix] = expires
            self._expires.move_to_end(prefix)
            while len(self._expires) > _MAX_TOKENS:
                self._expires.popitem(last=False)

    def token_key(self, token: str) -> str:
        """Return the inner cache's key prefix for ``token``."""
        return self.inner.token_key(token)

    def ping(self) -> bool:
        """Return whether the inner cache answers."""
        return self.inner.ping()

    def get(self, key: str) -> Any:
        """Return a cached value, or None."""
        return self.inner.get(key)

    def set(self, key: str, value: Any, *, ttl: float) -> None:
        """Cache ``value`` for ``ttl`` seconds, or less if its token expires."""
        with self._lock:
            expires = self._expires.get(key.split(":", 1)[0])
        if expires is not None:
            ttl = min(ttl, expires - time.time())
            if ttl <= 0:
                return
        self.inner.set(key, value, ttl=ttl)

    def delete_prefix(self, prefix: str) -> None:
        """Drop every entry under ``prefix``."""
        self.inner.delete_prefix(prefix)

    def __getattr__(self, name: str) -> Any:
        # Anything else the inner cache offers (kept in step with it).
        return getattr(self.inner, name)
