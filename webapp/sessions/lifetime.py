"""How long a signed-in session lives: its start, its timeouts, its end.

A session starts under a brand-new id (:func:`start`), is touched at most
once a minute while in use, ends after ``SESSION_IDLE_MINUTES`` idle or
``SESSION_ABSOLUTE_HOURS`` in all (:func:`session_secret`), and its record is
deleted at sign-out (:func:`end`). What the session seals (a pasted token,
or a team state) is the caller's business: this module only encrypts it, and
tells the hook registered with :func:`on_end` which secret ended, so the
pages can forget what they cached for its tokens.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import cast

from flask import Flask, after_this_request, current_app, g, request, session
from flask_session.base import ServerSideSession
from flask_wtf.csrf import generate_csrf
from werkzeug.wrappers import Response

from .base import CREATED, SEEN, TOKEN, SafeSessions, SessionLimit, TokenCipher

#: Seconds between two idle-timeout touches of a session in use.
TOUCH_EVERY = 60
#: A cookie holding only the sign-in time. The session store expires an idle
#: record by itself, so without it a returning user could not be told that
#: they were signed out after inactivity rather than never signed in.
SIGNED_IN_AT = "signed_in_at"
#: Where the app keeps the hook called with a session's secret as it ends.
_ON_END = "airisk_session_ended"


def on_end(app: Flask, hook: Callable[[str], None]) -> None:
    """Call ``hook`` with a session's decrypted secret whenever it ends."""
    app.extensions[_ON_END] = hook


def _store() -> SafeSessions:
    return cast(SafeSessions, current_app.session_interface)


def _cipher() -> TokenCipher:
    return cast(TokenCipher, current_app.extensions["airisk_cipher"])


def _session() -> ServerSideSession:
    return cast(ServerSideSession, session)


def _ended(secret: str) -> None:
    hook = current_app.extensions.get(_ON_END)
    if hook is not None:
        hook(secret)


def session_secret() -> str | None:
    """Return what the signed-in session seals, or None; ends timed-out sessions.

    The reason a session ended is left in ``g.session_end_reason``.
    """
    if "session_secret" in g:
        return cast("str | None", g.session_secret)
    token = None
    sealed = session.get(TOKEN)
    if sealed:
        now = int(time.time())
        created = int(session.get(CREATED, 0))
        seen = int(session.get(SEEN, 0))
        idle = _store().idle.total_seconds()
        absolute = _store().absolute.total_seconds()
        if now - created > absolute:
            end(reason="absolute")
        elif now - seen > idle:
            end(reason="idle")
        else:
            token = _cipher().decrypt(sealed)
            if token is None:
                # Encrypted with a key that is no longer configured.
                end(reason="expired")
            elif now - seen > TOUCH_EVERY:
                _store().touch(_session())
    g.session_secret = token
    return token


def start(secret: str, *, remember: bool = True) -> None:
    """Seal ``secret`` in a brand-new session (new id, new CSRF token).

    With ``remember``, a cookie keeps the sign-in time, so a session the
    store expired on its own can still be explained (:func:`ended_by_the_store`).

    :raises SessionLimit: when the store is full of other clients' sessions.
    """
    # Session ids are rotated by hand (Flask-Session's regenerate() does
    # nothing on an empty session and session.clear() keeps the id): fill
    # the session, store it under a fresh id, then drop the old record.
    previous, previous_sid = dict(session), _session().sid
    session.clear()
    now = int(time.time())
    session[TOKEN] = _cipher().encrypt(secret)
    session[CREATED] = now
    session[SEEN] = now
    g.pop("csrf_token", None)
    generate_csrf()
    try:
        _store().create(_session(), _store().client_of(request))
    except SessionLimit:
        # Nothing is kept; the browser stays as it was, and so do the forms
        # on the page that says so (their CSRF token is the previous one).
        session.clear()
        session.update(previous)
        _session().sid = previous_sid
        session.modified = False
        g.pop("csrf_token", None)
        raise
    _store().remove(previous_sid)
    if remember:
        _remember_sign_in(now)


def end(reason: str | None = None) -> None:
    """Delete the server-side session; the ``on_end`` hook forgets its tokens."""
    sealed = session.get(TOKEN)
    if sealed:
        secret = _cipher().decrypt(sealed)
        if secret:
            _ended(secret)
    _store().discard(_session())
    session.clear()
    g.airisk_token = None
    g.session_secret = None
    g.team_state = None
    g.session_end_reason = reason
    _forget_sign_in()


def end_record_only() -> None:
    """Delete the session record when the response has already started.

    Used mid-stream (headers sent, cookie can no longer change): the record
    is gone, so the cookie the browser keeps points at nothing.
    """
    secret = session_secret()
    if secret:
        _ended(secret)
    _store().discard(_session())


def ended_by_the_store() -> str | None:
    """Return why a session the store has already expired ended, if it did."""
    raw = request.cookies.get(SIGNED_IN_AT, "")
    if not raw.isascii() or not raw.isdigit():
        return None
    _forget_sign_in()
    signed_in_for = time.time() - int(raw)
    return "absolute" if signed_in_for > _store().absolute.total_seconds() else "idle"


def _remember_sign_in(now: int) -> None:
    config = current_app.config

    @after_this_request
    def set_cookie(response: Response) -> Response:
        response.set_cookie(
            SIGNED_IN_AT,
            str(now),
            max_age=int(_store().absolute.total_seconds()),
            secure=config["SESSION_COOKIE_SECURE"],
            httponly=True,
            samesite="Lax",
        )
        return response


def _forget_sign_in() -> None:
    if SIGNED_IN_AT not in request.cookies:
        return

    @after_this_request
    def delete_cookie(response: Response) -> Response:
        response.delete_cookie(
            SIGNED_IN_AT,
            secure=current_app.config["SESSION_COOKIE_SECURE"],
            httponly=True,
            samesite="Lax",
        )
        return response
