"""Server-side sessions that hold an encrypted AIRisk token.

Built on Flask-Session's cachelib (default) and Redis interfaces with three
changes, each closing a trap found in Flask-Session 0.8 / cachelib 0.17:

* Signed-in and anonymous sessions live in separate stores. The token form
  needs a CSRF token, so every anonymous visit creates a session; cachelib
  evicts the *oldest* entries past its threshold, so in one shared store a
  flood of anonymous visits would log real users out.
* The stores serialize with JSON, never pickle: a forged record placed in the
  store cannot run code when it is read.
* A signed-in session is written only when :func:`allow_write` was called
  (token entry, sign-out, the idle-timeout touch). A slow request that loaded
  the session before a sign-out can then never write the token back.

The token itself is stored encrypted (Fernet, key derived from ``SECRET_KEY``,
older keys from ``SECRET_KEY_FALLBACKS`` still decrypt), so a copy of the
session store yields no usable token.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from datetime import timedelta
from typing import IO, Any

from cachelib.file import FileSystemCache
from cachelib.serializers import FileSystemSerializer
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Flask, Request, Response, g, request, session
from flask_session.base import ServerSideSession
from flask_session.cachelib import CacheLibSessionInterface
from flask_session.cachelib.cachelib import CacheLibSession
from flask_session.redis import RedisSessionInterface
from flask_session.redis.redis import RedisSession
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry
from werkzeug.exceptions import ServiceUnavailable

#: Session keys. Short and meaningless to a reader of the store.
TOKEN = "t"
CREATED = "c"
SEEN = "s"

_ANONYMOUS_TTL = 3600


class JSONSerializer(FileSystemSerializer):
    """cachelib file serializer that reads and writes JSON objects only."""

    def dump(self, value: Any, f: IO[bytes], protocol: int = 0) -> None:
        """Write ``value`` as JSON (``protocol`` is pickle's, and unused)."""
        f.write(json.dumps(value, separators=(",", ":")).encode())

    def load(self, f: IO[bytes]) -> Any:
        """Read a JSON object (a session) or integer (cachelib's entry count).

        Anything else reads as missing, so a forged record is no session.
        """
        try:
            value = json.loads(f.read())
        except ValueError:
            return None
        return value if isinstance(value, dict | int) else None


class JSONFileSystemCache(FileSystemCache):
    """cachelib's file cache without pickle."""

    serializer = JSONSerializer()


class TokenCipher:
    """Encrypt secrets at rest with keys derived from ``SECRET_KEY`` and fallbacks.

    Tokens in the session store use the default ``purpose``; other data at
    rest (the Redis cache's values) passes its own, so each use has its own
    key.
    """

    def __init__(
        self,
        secret: str,
        fallbacks: list[str] | tuple[str, ...] = (),
        *,
        purpose: str = "session token encryption",
    ):
        keys = [
            Fernet(base64.urlsafe_b64encode(derive_key(s, purpose)))
            for s in (secret, *fallbacks)
        ]
        self._fernet = MultiFernet(keys)

    def encrypt(self, token: str) -> str:
        """Return ``token`` encrypted and authenticated."""
        return self.seal(token.encode()).decode()

    def decrypt(self, sealed: str) -> str | None:
        """Return the token, or None if no current key opens ``sealed``."""
        try:
            opened = self.unseal(sealed.encode())
            return None if opened is None else opened.decode()
        except (ValueError, UnicodeError):
            return None

    def seal(self, data: bytes) -> bytes:
        """Return ``data`` encrypted and authenticated."""
        return self._fernet.encrypt(data)

    def unseal(self, sealed: bytes) -> bytes | None:
        """Return the data, or None if ``sealed`` is forged or no key opens it."""
        try:
            return self._fernet.decrypt(sealed)
        except (InvalidToken, ValueError):
            return None

    def __repr__(self) -> str:
        return "TokenCipher(<keys hidden>)"


def derive_key(secret: str, purpose: str) -> bytes:
    """Return a 32-byte key for ``purpose``, derived from ``secret`` (HKDF)."""
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"airisk-viewer",
        info=purpose.encode(),
    )
    return hkdf.derive(secret.encode())


def allow_write() -> None:
    """Let this request write the signed-in session (token entry, sign-out)."""
    g._session_write_allowed = True


class StoreUnavailable(Exception):
    """The session store cannot be reached (Redis down, disk unreadable)."""


class SafeSessions:
    """The rules every session backend here follows (mixed into Flask-Session).

    Subclasses provide ``_read(store_id)``, ``_write(store_id, data, ttl)``
    and ``_remove(store_id)``, each raising :class:`StoreUnavailable` when the
    store is out of reach.
    """

    idle: timedelta
    absolute: timedelta
    session_class: type[ServerSideSession]

    # Flask-Session hooks, in terms of the three primitives ------------------

    def _retrieve_session_data(self, store_id: str) -> dict[str, Any] | None:
        return self._read(store_id)

    def _delete_session(self, store_id: str) -> None:
        self._remove(store_id)

    def _upsert_session(
        self, session_lifetime: timedelta, session: ServerSideSession, store_id: str
    ) -> None:
        data = dict(session)
        ttl = self._signed_in_ttl(data) if TOKEN in data else _ANONYMOUS_TTL
        self._write(store_id, data, ttl)

    def open_session(self, app: Flask, request: Request) -> ServerSideSession:
        """Open the session; an unreachable store gives an empty, marked one."""
        try:
            return super().open_session(app, request)  # type: ignore[misc]
        except StoreUnavailable:
            session = self.session_class(sid=self.new_sid(), permanent=True)
            session.store_unavailable = True
            return session

    def save_session(
        self, app: Flask, session: ServerSideSession, response: Response
    ) -> None:
        """Save as Flask-Session does, but never write a signed-in session late."""
        if getattr(session, "store_unavailable", False):
            return
        if (
            session.modified
            and session.get(TOKEN)
            and not g.get("_session_write_allowed", False)
        ):
            session.modified = False
        try:
            super().save_session(app, session, response)  # type: ignore[misc]
        except StoreUnavailable:
            # The page is already rendered; the next request will show the
            # "session store unavailable" page.
            pass

    # Our additions --------------------------------------------------------

    def new_sid(self) -> str:
        """Return a fresh random session id."""
        return secrets.token_urlsafe(32)

    def discard(self, session: ServerSideSession) -> None:
        """Delete ``session`` from the store now."""
        self._remove(self._get_store_id(session.sid))  # type: ignore[attr-defined]

    def touch(self, session: ServerSideSession) -> None:
        """Record activity now, writing the store immediately.

        Writing at once (not at the end of the request) means a slow request
        has nothing left to write when it finishes.
        """
        session[SEEN] = int(time.time())
        store_id = self._get_store_id(session.sid)  # type: ignore[attr-defined]
        self._write(store_id, dict(session), self._signed_in_ttl(dict(session)))
        session.modified = False

    def ping(self) -> bool:
        """Return whether the store answers (for the readiness check)."""
        try:
            self._read(self._get_store_id("readiness-probe"))  # type: ignore[attr-defined]
        except StoreUnavailable:
            return False
        return True

    def _signed_in_ttl(self, data: dict[str, Any]) -> int:
        now = int(time.time())
        absolute_end = int(data.get(CREATED, now)) + int(self.absolute.total_seconds())
        return max(1, min(int(self.idle.total_seconds()), absolute_end - now))

    def _read(self, store_id: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def _write(self, store_id: str, data: dict[str, Any], ttl: int) -> None:
        raise NotImplementedError

    def _remove(self, store_id: str) -> None:
        raise NotImplementedError


class FileSessions(SafeSessions, CacheLibSessionInterface):
    """Sessions in two folders of JSON files: signed-in and anonymous.

    cachelib evicts the oldest entries past its threshold, so anonymous
    sessions (one per visit to the token form) get a folder of their own and
    can never push a signed-in session out.
    """

    session_class = CacheLibSession

    def __init__(
        self,
        app: Flask,
        directory: str,
        *,
        idle: timedelta,
        absolute: timedelta,
        max_signed_in: int,
        max_anonymous: int,
    ) -> None:
        self.anonymous_cache = JSONFileSystemCache(
            os.path.join(directory, "anonymous"), threshold=max_anonymous, mode=0o600
        )
        signed_in = JSONFileSystemCache(
            os.path.join(directory, "signed-in"), threshold=max_signed_in, mode=0o600
        )
        super().__init__(app, client=signed_in, permanent=True)
        self.idle = idle
        self.absolute = absolute

    def _read(self, store_id: str) -> dict[str, Any] | None:
        try:
            data = self.cache.get(store_id)
            if data is None:
                data = self.anonymous_cache.get(store_id)
        except OSError as exc:
            raise StoreUnavailable(type(exc).__name__) from exc
        return data if isinstance(data, dict) else None

    def _write(self, store_id: str, data: dict[str, Any], ttl: int) -> None:
        try:
            if TOKEN in data:
                self.cache.set(store_id, data, timeout=ttl)
                # A session that just signed in must not linger as anonymous.
                self.anonymous_cache.delete(store_id)
            else:
                self.anonymous_cache.set(store_id, data, timeout=ttl)
        except OSError as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    def _remove(self, store_id: str) -> None:
        try:
            self.cache.delete(store_id)
            self.anonymous_cache.delete(store_id)
        except OSError as exc:
            raise StoreUnavailable(type(exc).__name__) from exc


class RedisSessions(SafeSessions, RedisSessionInterface):
    """Sessions in Redis (shared by every instance), as JSON, never pickle.

    Flask-Session's Redis backend falls back to ``pickle.loads`` when a value
    is not msgpack; reading JSON ourselves means a forged value placed in
    Redis is at most an unreadable session.
    """

    session_class = RedisSession

    def __init__(
        self, app: Flask, client: Redis, *, idle: timedelta, absolute: timedelta
    ) -> None:
        super().__init__(app, client=client, permanent=True)
        self.idle = idle
        self.absolute = absolute

    def _read(self, store_id: str) -> dict[str, Any] | None:
        try:
            raw = self.client.get(store_id)
        except RedisError as exc:
            raise StoreUnavailable(type(exc).__name__) from exc
        if not raw:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def _write(self, store_id: str, data: dict[str, Any], ttl: int) -> None:
        try:
            self.client.set(store_id, json.dumps(data, separators=(",", ":")), ex=ttl)
        except RedisError as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    def _remove(self, store_id: str) -> None:
        try:
            self.client.delete(store_id)
        except RedisError as exc:
            raise StoreUnavailable(type(exc).__name__) from exc


def init_app(app: Flask) -> None:
    """Install the configured session backend and its outage handling."""
    idle = timedelta(minutes=app.config["SESSION_IDLE_MINUTES"])
    absolute = timedelta(hours=app.config["SESSION_ABSOLUTE_HOURS"])
    interface: SafeSessions
    if app.config["SESSION_BACKEND"] == "redis":
        interface = RedisSessions(
            app, redis_client(app.config["REDIS_URL"]), idle=idle, absolute=absolute
        )
    else:
        directory = app.config["SESSION_DIR"] or os.path.join(
            app.instance_path, "sessions"
        )
        interface = FileSessions(
            app,
            directory,
            idle=idle,
            absolute=absolute,
            max_signed_in=app.config["SESSION_MAX_SIGNED_IN"],
            max_anonymous=app.config["SESSION_MAX_ANONYMOUS"],
        )
    app.session_interface = interface

    @app.before_request
    def _refuse_without_store() -> None:

        if (
            getattr(session, "store_unavailable", False)
            and request.blueprint != "health"
        ):
            raise SessionStoreDown()


def redis_client(url: str, *, timeout: float = 2, retry: bool = True) -> Redis:
    """Return a Redis client for ``url`` (redis:// or rediss:// with password).

    ``timeout`` bounds connecting and each answer, in seconds; without
    ``retry``, a failed or timed-out command is not tried again (redis-py
    retries three times with backoff by default).
    """
    # Short timeouts: a session store that does not answer must turn into a
    # "session store unavailable" page quickly, not a hung worker.
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


class SessionStoreDown(ServiceUnavailable):
    """The session store is out of reach; shown as a 503 page."""

    title = "Session store unavailable"
    description = (
        "The dashboard cannot reach its session store right now. Nothing was "
        "lost; try again in a moment."
    )
