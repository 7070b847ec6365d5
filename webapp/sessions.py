"""Server-side sessions that hold an encrypted AIRisk token.

Built on Flask-Session's cachelib interface with three changes, each closing a
trap found in Flask-Session 0.8 / cachelib 0.17:

* Signed-in and anonymous sessions live in separate stores. The token form
  needs a CSRF token, so every anonymous visit creates a session; cachelib
  evicts the *oldest* entries past its threshold, so in one shared store a
  flood of anonymous visits would log real users out.
* The stores serialize with JSON, never pickle: a forged file placed in the
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
import time
from datetime import timedelta
from typing import IO, Any

from cachelib.file import FileSystemCache
from cachelib.serializers import FileSystemSerializer
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Flask, Response, g
from flask_session.cachelib import CacheLibSessionInterface
from flask_session.cachelib.cachelib import CacheLibSession

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
    """Encrypt tokens for the session store with keys derived from secrets."""

    def __init__(self, secret: str, fallbacks: list[str] | tuple[str, ...] = ()):
        keys = [Fernet(_derive_key(s)) for s in (secret, *fallbacks)]
        self._fernet = MultiFernet(keys)

    def encrypt(self, token: str) -> str:
        """Return ``token`` encrypted and authenticated."""
        return self._fernet.encrypt(token.encode()).decode()

    def decrypt(self, sealed: str) -> str | None:
        """Return the token, or None if no current key opens ``sealed``."""
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except (InvalidToken, ValueError, UnicodeError):
            return None

    def __repr__(self) -> str:
        return "TokenCipher(<keys hidden>)"


def _derive_key(secret: str) -> bytes:
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"airisk-viewer",
        info=b"session token encryption",
    )
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode()))


def allow_write() -> None:
    """Let this request write the signed-in session (token entry, sign-out)."""
    g._session_write_allowed = True


class ViewerSessionInterface(CacheLibSessionInterface):
    """Flask-Session cachelib sessions, split by sign-in state, JSON on disk."""

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
        signed_in = os.path.join(directory, "signed-in")
        anonymous = os.path.join(directory, "anonymous")
        self.anonymous_cache = JSONFileSystemCache(
            anonymous, threshold=max_anonymous, mode=0o600
        )
        super().__init__(
            app,
            client=JSONFileSystemCache(signed_in, threshold=max_signed_in, mode=0o600),
            permanent=True,
        )
        self.idle = idle
        self.absolute = absolute

    # Flask-Session hooks --------------------------------------------------

    def _retrieve_session_data(self, store_id: str) -> dict[str, Any] | None:
        data = self.cache.get(store_id)
        if data is None:
            data = self.anonymous_cache.get(store_id)
        return data

    def _delete_session(self, store_id: str) -> None:
        self.cache.delete(store_id)
        self.anonymous_cache.delete(store_id)

    def _upsert_session(
        self, session_lifetime: timedelta, session: CacheLibSession, store_id: str
    ) -> None:
        data = dict(session)
        if TOKEN not in data:
            self.anonymous_cache.set(store_id, data, timeout=_ANONYMOUS_TTL)
            return
        self.cache.set(store_id, data, timeout=self._signed_in_ttl(data))
        # A session that just signed in must not linger as anonymous too.
        self.anonymous_cache.delete(store_id)

    def save_session(
        self, app: Flask, session: CacheLibSession, response: Response
    ) -> None:
        """Save as Flask-Session does, but never write a signed-in session late."""
        if (
            session.modified
            and session.get(TOKEN)
            and not g.get("_session_write_allowed", False)
        ):
            session.modified = False
        super().save_session(app, session, response)

    # Our additions --------------------------------------------------------

    def new_sid(self) -> str:
        """Return a fresh random session id."""
        return str(self._generate_sid(self.sid_length))

    def discard(self, session: CacheLibSession) -> None:
        """Delete ``session`` from both stores now."""
        self._delete_session(self._get_store_id(session.sid))

    def touch(self, session: CacheLibSession) -> None:
        """Record activity now, writing the store immediately.

        Writing at once (not at the end of the request) means a slow request
        has nothing left to write when it finishes.
        """
        session[SEEN] = int(time.time())
        self._upsert_session(timedelta(0), session, self._get_store_id(session.sid))
        session.modified = False

    def _signed_in_ttl(self, data: dict[str, Any]) -> int:
        now = int(time.time())
        absolute_end = int(data.get(CREATED, now)) + int(self.absolute.total_seconds())
        return max(1, min(int(self.idle.total_seconds()), absolute_end - now))
