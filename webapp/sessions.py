"""Server-side sessions that hold an encrypted AIRisk token.

The session interface is our own (on Flask-Session's session class), built
around four rules, each closing a hole found in Flask-Session 0.8 / cachelib
0.17 or by an attack on the dashboard (issue 17):

* **Only a signed-in session is kept server-side.** The token form and the
  theme switch need a CSRF token, and every visit (a 404 too) used to store a
  session for it: 5,000 anonymous requests made each new one rescan the
  session folder. An anonymous session holds nothing but the CSRF secret, so
  it travels in a signed cookie, and a page that signs no one in writes
  nothing to the store.
* **The store is bounded exactly, in O(1) per sign-in, under many
  processes**: a per-client cap (a flood of sign-ins from one address evicts
  that address's own oldest sessions) and a global cap (past it, sign-in is
  refused with a message; no one else is signed out). The filesystem store
  counts under an ``fcntl`` lock, Redis in one Lua script.
* **The store is written only at sign-in, at the idle-timeout touch (only if
  the session still exists) and at sign-out**, never at the end of a request:
  a slow request that loaded the session before a sign-out can never write
  the token back.
* **Records are JSON, never pickle**: a forged record placed in the store
  cannot run code when it is read.

The token itself is stored encrypted (Fernet, key derived from ``SECRET_KEY``,
older keys from ``SECRET_KEY_FALLBACKS`` still decrypt), so a copy of the
session store yields no usable token.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Flask, Request, Response, request, session
from flask.sessions import SessionInterface
from flask_session.base import ServerSideSession
from itsdangerous import BadSignature, URLSafeTimedSerializer
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry
from werkzeug.exceptions import ServiceUnavailable

log = logging.getLogger(__name__)

#: Session keys. Short and meaningless to a reader of the store.
TOKEN = "t"
CREATED = "c"
SEEN = "s"

#: Seconds an anonymous session (the form's CSRF secret, in a cookie) lasts.
_ANONYMOUS_TTL = 3600
#: An anonymous cookie starts with this; a session id never holds a dot.
_ANONYMOUS_PREFIX = "a."
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")
#: A record outlives its session by this long, so the next request can still
#: tell the user why the session ended (inactivity, maximum length).
_END_GRACE = 15 * 60
#: The filesystem store recounts its folder (and drops expired records) at
#: most this often, and at the global cap at most every _SWEEP_AT_CAP.
_SWEEP_EVERY = 3600
_SWEEP_AT_CAP = 30


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


def client_key(name_key: bytes, address: str | None) -> str:
    """Return the name the per-client cap gives ``address``: an HMAC of it.

    An IPv6 client gets a whole /64 (one host usually holds one), so a
    flood cannot step around the cap by rotating addresses in its subnet.
    The store never holds the address itself.
    """
    text = address or "unknown"
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        pass
    else:
        if parsed.version == 6 and parsed.ipv4_mapped is None:
            text = str(ipaddress.ip_network(f"{parsed}/64", strict=False))
        elif parsed.version == 6 and parsed.ipv4_mapped is not None:
            text = str(parsed.ipv4_mapped)
    return hmac.new(name_key, text.encode(), hashlib.sha256).hexdigest()[:32]


class StoreUnavailable(Exception):
    """The session store cannot be reached or refuses writes."""


class SessionLimit(Exception):
    """The store holds SESSION_MAX_SIGNED_IN sessions: no new sign-in now."""


class SafeSessions(SessionInterface):
    """The rules every session backend here follows.

    Subclasses provide ``_read(sid)``, ``_create(sid, data, ttl, client)``,
    ``_replace(sid, data, ttl)``, ``_remove(sid)`` and ``_probe()``, each
    raising :class:`StoreUnavailable` when the store is out of reach or
    refuses the write.
    """

    session_class = ServerSideSession

    def __init__(
        self,
        *,
        idle: timedelta,
        absolute: timedelta,
        max_signed_in: int,
        max_per_client: int,
        name_key: bytes,
    ) -> None:
        self.idle = idle
        self.absolute = absolute
        self.max_signed_in = max_signed_in
        self.max_per_client = max_per_client
        self._name_key = name_key

    # Flask's interface ----------------------------------------------------

    def open_session(self, app: Flask, request: Request) -> ServerSideSession:
        """Open the signed-in session the cookie names, or the anonymous one.

        An unreachable store gives an empty session marked
        ``store_unavailable``.
        """
        raw = request.cookies.get(self.get_cookie_name(app), "")
        if raw.startswith(_ANONYMOUS_PREFIX):
            return self.session_class(self._load_anonymous(app, raw), sid="")
        if _SESSION_ID.fullmatch(raw):
            try:
                data = self._read(raw)
            except StoreUnavailable:
                empty = self.session_class(sid="")
                empty.store_unavailable = True
                return empty
            if data is not None and TOKEN in data:
                return self.session_class(data, sid=raw)
        return self.session_class(sid="")

    def save_session(
        self, app: Flask, session: ServerSideSession, response: Response
    ) -> None:
        """Set the cookie; never write the store (that happened already)."""
        if getattr(session, "store_unavailable", False):
            return
        if session.accessed:
            response.vary.add("Cookie")
        if TOKEN in session:
            if getattr(session, "issued", False):
                max_age = int(self.absolute.total_seconds())
                self._set_cookie(app, response, session.sid, max_age)
            # Otherwise nothing: the store was written when the session
            # changed (sign-in, touch), never late by a slow request.
            return
        if not session.modified:
            return
        data = {k: v for k, v in session.items() if k != "_permanent"}
        if not data:
            # Signed out (or nothing left): drop the cookie.
            response.delete_cookie(
                self.get_cookie_name(app),
                domain=self.get_cookie_domain(app),
                path=self.get_cookie_path(app),
            )
            return
        value = _ANONYMOUS_PREFIX + self._anonymous_serializer(app).dumps(data)
        self._set_cookie(app, response, value, _ANONYMOUS_TTL)

    def _set_cookie(
        self, app: Flask, response: Response, value: str, max_age: int
    ) -> None:
        response.set_cookie(
            self.get_cookie_name(app),
            value,
            max_age=max_age,
            domain=self.get_cookie_domain(app),
            path=self.get_cookie_path(app),
            httponly=self.get_cookie_httponly(app),
            secure=self.get_cookie_secure(app),
            samesite=self.get_cookie_samesite(app),
        )
        response.vary.add("Cookie")

    # What auth.py calls ---------------------------------------------------

    def new_sid(self) -> str:
        """Return a fresh random session id."""
        return secrets.token_urlsafe(32)

    def client_of(self, request: Request) -> str:
        """Return the per-client cap's name for the client of ``request``."""
        # ProxyFix (TRUSTED_PROXIES) has already put the real client here.
        return client_key(self._name_key, request.remote_addr)

    def create(self, session: ServerSideSession, client: str) -> None:
        """Store the just signed-in ``session`` under a fresh id, now.

        :raises SessionLimit: when the store holds its maximum of sessions.
        :raises SessionStoreDown: when the store is out of reach.
        """
        session.sid = self.new_sid()
        data = dict(session)
        try:
            self._create(session.sid, data, self._record_ttl(data), client)
        except StoreUnavailable as exc:
            raise SessionStoreDown() from exc
        session.modified = False
        session.issued = True

    def discard(self, session: ServerSideSession) -> None:
        """Delete ``session`` from the store now."""
        self.remove(session.sid)

    def remove(self, sid: str) -> None:
        """Delete the session ``sid`` (if any) from the store now."""
        if _SESSION_ID.fullmatch(sid or ""):
            self._remove(sid)

    def touch(self, session: ServerSideSession) -> None:
        """Record activity now, writing the store immediately.

        Writing at once (not at the end of the request) means a slow request
        has nothing left to write when it finishes; and the record is only
        replaced if it still exists, so a touch racing a sign-out cannot
        bring the session back.
        """
        session[SEEN] = int(time.time())
        session.modified = False
        data = dict(session)
        try:
            self._replace(session.sid, data, self._record_ttl(data))
        except StoreUnavailable as exc:
            # The activity is not recorded; the page itself can still be shown.
            log.warning("Could not record session activity: %s", exc)

    def ping(self) -> bool:
        """Return whether the store accepts a write (for the readiness check)."""
        try:
            self._probe()
        except StoreUnavailable as exc:
            log.warning("Session store refuses writes: %s", exc)
            return False
        return True

    # Helpers --------------------------------------------------------------

    def _record_ttl(self, data: dict[str, Any]) -> int:
        now = int(time.time())
        absolute_end = int(data.get(CREATED, now)) + int(self.absolute.total_seconds())
        end = max(1, min(int(self.idle.total_seconds()), absolute_end - now))
        return end + _END_GRACE

    def _anonymous_serializer(self, app: Flask) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(
            str(app.secret_key), salt="anonymous session cookie"
        )

    def _load_anonymous(self, app: Flask, raw: str) -> dict[str, Any]:
        try:
            data = self._anonymous_serializer(app).loads(
                raw[len(_ANONYMOUS_PREFIX) :], max_age=_ANONYMOUS_TTL
            )
        except BadSignature:
            return {}
        # Only the CSRF secret may live here: a cookie can never carry a token.
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if k == "csrf_token"}

    def _read(self, sid: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def _create(self, sid: str, data: dict[str, Any], ttl: int, client: str) -> None:
        raise NotImplementedError

    def _replace(self, sid: str, data: dict[str, Any], ttl: int) -> bool:
        raise NotImplementedError

    def _remove(self, sid: str) -> None:
        raise NotImplementedError

    def _probe(self) -> None:
        raise NotImplementedError


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class FileSessions(SafeSessions):
    """Signed-in sessions as JSON files in one folder, counted exactly.

    Layout under ``directory``: ``signed-in/<id>`` (the records),
    ``clients/<client>`` (each client's session ids, oldest first),
    ``state.json`` (how many records exist, when the folder was last
    recounted) and ``lock``. Every change of the count happens under an
    exclusive ``flock`` on ``lock``, so several processes keep it exact;
    reading a session takes no lock. No request lists the folder except a
    recount at most once an hour (or every 30 s while at the cap), which
    also drops records that expired unread.
    """

    def __init__(self, directory: str, **limits: Any) -> None:
        super().__init__(**limits)
        self._records = os.path.join(directory, "signed-in")
        self._clients = os.path.join(directory, "clients")
        self._tmp = os.path.join(directory, "tmp")
        self._state = os.path.join(directory, "state.json")
        self._lock = os.path.join(directory, "lock")
        for folder in (self._records, self._clients, self._tmp):
            os.makedirs(folder, mode=0o700, exist_ok=True)

    # Primitives -----------------------------------------------------------

    def _read(self, sid: str) -> dict[str, Any] | None:
        try:
            record = self._load_record(sid)
        except OSError as exc:
            raise StoreUnavailable(type(exc).__name__) from exc
        if record is None:
            return None
        if record["e"] <= time.time():
            self._remove(sid)
            return None
        data = record["d"]
        return data if isinstance(data, dict) else None

    def _create(self, sid: str, data: dict[str, Any], ttl: int, client: str) -> None:
        try:
            with self._locked():
                now = time.time()
                state = self._load_state()
                try:
                    self._make_room(state, client, now)
                    self._write_record(sid, data, now + ttl)
                    state["n"] += 1
                    self._add_to_client(client, sid, now)
                finally:
                    self._write_json(self._state, state)
        except OSError as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    def _replace(self, sid: str, data: dict[str, Any], ttl: int) -> bool:
        try:
            with self._locked():
                if not os.path.exists(self._record_path(sid)):
                    return False
                self._write_record(sid, data, time.time() + ttl)
                return True
        except OSError as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    def _remove(self, sid: str) -> None:
        try:
            with self._locked():
                state = self._load_state()
                if self._drop(sid, state):
                    self._write_json(self._state, state)
        except OSError as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    def _probe(self) -> None:
        path = os.path.join(self._tmp, "readiness-" + secrets.token_hex(8))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, b"ok")
            finally:
                os.close(fd)
            os.unlink(path)
        except OSError as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    # Under the lock -------------------------------------------------------

    def _make_room(self, state: dict[str, Any], client: str, now: float) -> None:
        """Evict ``client``'s own oldest sessions past its cap; check the total.

        :raises SessionLimit: when the store is full of other clients' sessions.
        """
        if now - state["swept"] > _SWEEP_EVERY or (
            state["n"] >= self.max_signed_in and now - state["swept"] > _SWEEP_AT_CAP
        ):
            self._sweep(state, now)
        mine = [
            entry for entry in self._load_client(client) if self._alive(entry[0], now)
        ]
        while len(mine) >= self.max_per_client:
            oldest, _ = mine.pop(0)
            self._drop(oldest, state)
        self._write_json(self._client_path(client), mine)
        if state["n"] >= self.max_signed_in:
            raise SessionLimit()

    def _alive(self, sid: str, now: float) -> bool:
        record = self._load_record(sid)
        return record is not None and record["e"] > now

    def _drop(self, sid: str, state: dict[str, Any]) -> bool:
        try:
            os.unlink(self._record_path(sid))
        except FileNotFoundError:
            return False
        state["n"] = max(0, state["n"] - 1)
        return True

    def _add_to_client(self, client: str, sid: str, now: float) -> None:
        mine = self._load_client(client)
        mine.append([sid, now])
        self._write_json(self._client_path(client), mine)

    def _sweep(self, state: dict[str, Any], now: float) -> None:
        """Recount the records, dropping expired and unreadable ones."""
        count = 0
        with os.scandir(self._records) as entries:
            for entry in entries:
                record = self._load_record(entry.name)
                if record is None or record["e"] <= now:
                    try:
                        os.unlink(entry.path)
                    except FileNotFoundError:
                        pass
                else:
                    count += 1
        with os.scandir(self._clients) as entries:
            for entry in entries:
                kept = [e for e in self._load_client(entry.name) if self._exists(e[0])]
                if kept:
                    self._write_json(entry.path, kept)
                else:
                    os.unlink(entry.path)
        with os.scandir(self._tmp) as entries:
            for entry in entries:
                # Left by a process that died mid-write.
                if entry.stat().st_mtime < now - 60:
                    os.unlink(entry.path)
        if count != state["n"]:
            log.info("Session store recount: %d records (was %d)", count, state["n"])
        state["n"] = count
        state["swept"] = now

    # Files ------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # flock locks belong to an open file description, so threads of one
        # process exclude each other too (fcntl/lockf locks would not).
        fd = os.open(self._lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _record_path(self, sid: str) -> str:
        if not _SESSION_ID.fullmatch(sid):
            raise ValueError("not a session id")
        return os.path.join(self._records, sid)

    def _client_path(self, client: str) -> str:
        return os.path.join(self._clients, client)

    def _exists(self, sid: str) -> bool:
        return _SESSION_ID.fullmatch(sid) is not None and os.path.exists(
            self._record_path(sid)
        )

    def _load_record(self, sid: str) -> dict[str, Any] | None:
        if not _SESSION_ID.fullmatch(sid):
            return None
        try:
            with open(self._record_path(sid), "rb") as f:
                record = json.loads(f.read())
        except FileNotFoundError:
            return None
        except (ValueError, UnicodeError):
            return None
        if (
            not isinstance(record, dict)
            or not isinstance(record.get("e"), int | float)
            or not isinstance(record.get("d"), dict)
        ):
            return None
        return record

    def _write_record(self, sid: str, data: dict[str, Any], expires: float) -> None:
        self._write_json(self._record_path(sid), {"e": expires, "d": data})

    def _load_state(self) -> dict[str, Any]:
        try:
            with open(self._state, "rb") as f:
                state = json.loads(f.read())
            if isinstance(state.get("n"), int) and isinstance(
                state.get("swept"), int | float
            ):
                return {"n": state["n"], "swept": state["swept"]}
        except FileNotFoundError:
            pass
        except (ValueError, UnicodeError, AttributeError):
            pass
        # First use (or a damaged file): recount at once.
        return {"n": 0, "swept": 0}

    def _load_client(self, client: str) -> list[list[Any]]:
        try:
            with open(self._client_path(client), "rb") as f:
                entries = json.loads(f.read())
        except FileNotFoundError:
            return []
        except (ValueError, UnicodeError):
            return []
        if not isinstance(entries, list):
            return []
        return [
            e
            for e in entries
            if isinstance(e, list) and len(e) == 2 and isinstance(e[0], str)
        ]

    def _write_json(self, path: str, value: Any) -> None:
        # Write a new file and rename it over the old one: a reader sees the
        # old record or the new one, never half of one.
        tmp = os.path.join(self._tmp, secrets.token_hex(12))
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, _dumps(value))
        finally:
            os.close(fd)
        os.replace(tmp, path)


# One atomic step: write the record, drop expired entries from the global
# index, drop this client's sessions that are gone, evict its oldest past its
# cap, then keep the record if the store is below its global cap. Keys named inside the
# script (this client's sessions) are not declared: fine on one Redis, not
# on Redis Cluster.
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
        client_ttl = int(self.absolute.total_seconds()) + _END_GRACE
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


def init_app(app: Flask) -> None:
    """Install the configured session backend and its outage handling."""
    limits: dict[str, Any] = {
        "idle": timedelta(minutes=app.config["SESSION_IDLE_MINUTES"]),
        "absolute": timedelta(hours=app.config["SESSION_ABSOLUTE_HOURS"]),
        "max_signed_in": app.config["SESSION_MAX_SIGNED_IN"],
        "max_per_client": app.config["SESSION_MAX_PER_CLIENT"],
        "name_key": derive_key(str(app.config["SECRET_KEY"]), "session client names"),
    }
    interface: SafeSessions
    if app.config["SESSION_BACKEND"] == "redis":
        # Sessions are needed on every page: a short timeout and no retries,
        # so a Redis that does not answer is a "session store unavailable"
        # page within a second, not a worker held for retries with backoff.
        client = redis_client(
            app.config["REDIS_URL"],
            timeout=app.config["SESSION_REDIS_TIMEOUT"],
            retry=False,
        )
        interface = RedisSessions(client, **limits)
    else:
        directory = app.config["SESSION_DIR"] or os.path.join(
            app.instance_path, "sessions"
        )
        interface = FileSessions(directory, **limits)
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
