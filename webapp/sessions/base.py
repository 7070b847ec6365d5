"""The session rules every backend follows, the token cipher, and the errors.

See the package docstring for the rules and why each exists.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import re
import secrets
import time
from datetime import timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Flask, Request, Response
from flask.sessions import SessionInterface
from flask_session.base import ServerSideSession
from itsdangerous import BadSignature, URLSafeTimedSerializer
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
        # The record ends with the session: the token is kept at rest no
        # longer than it can be used. Why it ended is told by the sign-in
        # time cookie (auth), not by keeping the record.
        return max(1, min(int(self.idle.total_seconds()), absolute_end - now))

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
        # Only the CSRF secret, and in team mode the SSO sign-in in progress
        # (Authlib's state, nonce and PKCE verifier; the page to return to),
        # may live here: a cookie can never carry a token.
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if _ANONYMOUS_KEYS.fullmatch(k)}

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


#: What an anonymous session cookie may hold (see _load_anonymous).
_ANONYMOUS_KEYS = re.compile(r"csrf_token|sso_next|_state_sso_[A-Za-z0-9_-]{1,128}")


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class SessionStoreDown(ServiceUnavailable):
    """The session store is out of reach; shown as a 503 page."""

    title = "Session store unavailable"
    description = (
        "The dashboard cannot reach its session store right now. Nothing was "
        "lost; try again in a moment."
    )
