"""Token entry and sign-out, and the one accessor views use for the token.

How long a session lives (its rotation at sign-in, its timeouts, the deletion
of its record) is :mod:`webapp.sessions.lifetime`'s; the AIRisk service views
use is :mod:`webapp.web.service`'s.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import HiddenField, PasswordField
from wtforms.validators import InputRequired, Length

from ..airisk import AIRiskError, TokenRejected, WrongBaseURL
from ..airisk.errors import Forbidden, RateLimited, UpstreamTimeout
from ..identity.state import all_tokens
from ..sessions import SessionLimit, lifetime
from ..sessions.lifetime import session_secret
from .service import service

bp = Blueprint("auth", __name__)

F = TypeVar("F", bound=Callable[..., Any])

#: Why the token page is shown; the query string carries only these keys.
REASONS = {
    "expired": "AIRisk no longer accepts your access token. Enter a new one to "
    "continue where you were.",
    "idle": "You were signed out after a period of inactivity.",
    "absolute": "Your session reached its maximum length. Enter your token again.",
    "signed_out": "You are signed out. The token was removed from the dashboard.",
}

_MAX_TOKEN_LENGTH = 8192


class TokenForm(FlaskForm):
    """The token entry form; Flask-WTF adds and checks the CSRF token."""

    token = PasswordField(
        "AIRisk access token",
        validators=[
            InputRequired("Paste your AIRisk access token."),
            Length(max=_MAX_TOKEN_LENGTH, message="That is too long to be a token."),
        ],
    )
    next = HiddenField()


def safe_next(target: str | None) -> str:
    """Return ``target`` if it is a path on this site, else the home page."""
    default = url_for("conversations.index")
    if not target or len(target) > 2048:
        return default
    # Browsers treat "\" as "/" and drop tabs and newlines, so "/\evil" and
    # "/\t/evil" are really "//evil": refuse them before parsing.
    if any(ch in target for ch in "\\\r\n\t") or any(ord(ch) < 32 for ch in target):
        return default
    if not target.startswith("/") or target.startswith("//"):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def team_mode() -> bool:
    """Return whether people sign in with SSO (AUTH_MODE=team)."""
    return bool(current_app.config["AUTH_MODE"] == "team")


def current_token() -> str | None:
    """Return the signed-in token, or None; ends timed-out sessions.

    In team mode it is the token minted for the AIRisk user in the URL, which
    the team gate (:mod:`webapp.web.people`) set before the view ran.
    The reason a session ended is left in ``g.session_end_reason``.
    """
    if "airisk_token" in g:
        return cast("str | None", g.airisk_token)
    secret = session_secret()
    # A team session seals the team state, not a token.
    token = None if team_mode() else secret
    g.airisk_token = token
    return token


def signed_in_token() -> str:
    """Return the token of a request that passed :func:`token_required`."""
    token = current_token()
    assert token is not None  # token_required let the request through
    return token


def token_hint() -> str | None:
    """Return the masked token suffix shown in the header, if signed in."""
    if team_mode():
        # The header names the SSO person instead; minted tokens stay hidden.
        return None
    token = current_token()
    if not token:
        return None
    return "\u2026" + token[-4:] if len(token) >= 12 else "\u2026"


#: Seconds before a pasted token's own expiry at which pages start to warn.
_EXPIRY_WARNING = 15 * 60


def token_expiry_minutes() -> int | None:
    """Return the minutes left if the pasted token says it expires soon.

    Only a token that carries its expiry (a JWT's ``exp``, read without
    checking the signature: it decides a notice, nothing else) is known to
    expire; an opaque token, or a minted one in team mode, is not announced.
    """
    if team_mode():
        return None
    token = current_token()
    expiry = _jwt_expiry(token) if token else None
    if expiry is None:
        return None
    left = expiry - time.time()
    if not 0 < left <= _EXPIRY_WARNING:
        return None
    return max(1, int(left // 60))


def _jwt_expiry(token: str) -> float | None:
    parts = token.split(".")
    if len(parts) != 3 or len(parts[1]) > 8192:
        return None
    try:
        claims = json.loads(
            base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        )
    except (ValueError, binascii.Error):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        return None
    return float(exp)


def token_required(view: F) -> F:
    """Send visitors without a token to the token page, then back here."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_token() is None:
            reason = g.get("session_end_reason") or lifetime.ended_by_the_store()
            return redirect_to_token_page(reason)
        return view(*args, **kwargs)

    return cast(F, wrapped)


def redirect_to_token_page(reason: str | None = None) -> Response:
    """Redirect to the token page, remembering where the user was."""
    target = request.full_path if request.query_string else request.path
    args: dict[str, Any] = {}
    if request.method == "GET" and target != url_for("conversations.index"):
        args["next"] = target
    if reason in REASONS:
        args["reason"] = reason
    endpoint = "sso.login" if team_mode() else "auth.token"
    return redirect(url_for(endpoint, **args), code=303)


def sign_in(token: str) -> None:
    """Store ``token`` in a brand-new session (new id, new CSRF token).

    :raises SessionLimit: when the store is full of other clients' sessions.
    """
    lifetime.start(token)
    g.airisk_token = token


def sign_out(reason: str | None = None) -> None:
    """Delete the server-side session and forget what was cached for it."""
    lifetime.end(reason)


def _forget_tokens(secret: str) -> None:
    """Forget what was cached for the AIRisk tokens a session's secret holds."""
    for token in _tokens_of(secret):
        service().forget(token)


@bp.record_once
def _on_register(state: BlueprintSetupState) -> None:
    lifetime.on_end(cast(Flask, state.app), _forget_tokens)


def _tokens_of(secret: str) -> list[str]:
    """Return the AIRisk tokens a session's sealed secret holds or names."""
    return all_tokens(secret) if team_mode() else [secret]


def sign_out_store_only() -> None:
    """Delete the session record when the response has already started.

    Used mid-stream (headers sent, cookie can no longer change): the record
    is gone, so the cookie the browser keeps points at nothing. In team mode
    only the rejected minted token goes; the next page mints another.
    """
    if team_mode():
        from .team import drop_viewed_token

        drop_viewed_token()
        return
    lifetime.end_record_only()


@bp.route("/token", methods=["GET", "POST"])
def token() -> ResponseReturnValue:
    """Show the token form; on POST check the token and sign in."""
    if team_mode():
        return redirect(url_for("sso.login", next=request.args.get("next")), 303)
    form = TokenForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    status = 200
    error = None
    if form.validate_on_submit():
        candidate = _clean_token(form.token.data or "")
        if candidate is None:
            error = (
                "That does not look like a token: it contains spaces or "
                "characters a token cannot have. Copy the token again."
            )
            status = 400
        else:
            refusal = _refusal(candidate)
            if refusal is None:
                try:
                    sign_in(candidate)
                except SessionLimit:
                    status, error = 503, _FULL
                else:
                    return redirect(safe_next(form.next.data), code=303)
            else:
                status, error = refusal
    elif request.method == "POST":
        status = 400
    return (
        render_template(
            "auth/token.html",
            form=form,
            error=error,
            reason=REASONS.get(request.args.get("reason", "")),
        ),
        status,
    )


@bp.post("/logout")
def logout() -> Response:
    """Sign out: delete the server-side session and go to the token page."""
    sign_out()
    if team_mode():
        from .sso import end_sso_session

        return end_sso_session()
    return redirect(url_for("auth.token", reason="signed_out"), code=303)


_FULL = (
    "The dashboard has as many people signed in as it is set up to hold. "
    "Try again later; an administrator can raise SESSION_MAX_SIGNED_IN."
)
_GENERIC = (
    "This is an application (generic) token: AIRisk accepts it, but it "
    "belongs to no user, so it cannot read conversation history. Paste a "
    "user token instead, the one AIRisk issues to your own account (your "
    "AIRisk administrator can create one for you). In a team deployment you "
    "do not paste a token at all: the dashboard gets user tokens itself."
)
_NO_ANSWER = "AIRisk did not answer; try again in a moment. Nothing was kept."


def _refusal(candidate: str) -> tuple[int, str] | None:
    """Return why AIRisk did not accept ``candidate`` (status, message), or None.

    A token is accepted only once AIRisk has listed conversations with it:
    while AIRisk is unreachable, slow or failing, any made-up string would
    otherwise sign in.
    """
    try:
        service().check_token(candidate)
    except TokenRejected:
        return 401, (
            "AIRisk rejected this token. Check that you copied all of it "
            "and that it has not expired."
        )
    except WrongBaseURL as exc:
        # No token can work until the address is fixed.
        return 502, exc.message
    except Forbidden:
        return 403, _GENERIC
    except RateLimited:
        return 429, (
            "AIRisk asked the dashboard to slow down, so the token could not "
            "be checked. Wait a moment, then try again. Nothing was kept."
        )
    except UpstreamTimeout:
        return 504, _NO_ANSWER
    except AIRiskError as error:
        return error.status, _NO_ANSWER
    return None


def _clean_token(raw: str) -> str | None:
    token = raw.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    # A header value must be printable ASCII; anything else was not copied
    # from AIRisk (and would fail deep inside http.client).
    if not token or any(not 33 <= ord(ch) <= 126 for ch in token):
        return None
    return token
