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

import os
from datetime import timedelta
from typing import Any

from flask import Flask, request, session

from .base import (
    CREATED,
    SEEN,
    TOKEN,
    SafeSessions,
    SessionLimit,
    SessionStoreDown,
    StoreUnavailable,
    TokenCipher,
    client_key,
    derive_key,
)
from .files import FileSessions
from .redis_store import RedisSessions, redis_client

__all__ = [
    "CREATED",
    "SEEN",
    "TOKEN",
    "FileSessions",
    "RedisSessions",
    "SafeSessions",
    "SessionLimit",
    "SessionStoreDown",
    "StoreUnavailable",
    "TokenCipher",
    "client_key",
    "derive_key",
    "init_app",
    "redis_client",
]


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
