"""Team-mode sign-in with the company's SSO (OpenID Connect, through Authlib).

Authlib's Flask client does the protocol: discovery, the authorization-code
flow with PKCE and a nonce, the code exchange, and the ID token's checks
(signature against the provider's JWKS, issuer, audience, expiry, nonce).
This module decides what a verified ID token means here: who the person is
and whether they are a reviewer (``REVIEWER_GROUPS``).

Before sign-in the session is the anonymous, signed cookie (see
:mod:`webapp.sessions`); Authlib keeps the flow's state, nonce and PKCE
verifier there under ``_state_sso_<state>``, for ten minutes. A state is also
recorded server-side once used, so a replayed callback is refused even with
the old cookie.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from flask import (
    Blueprint,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from joserfc.errors import JoseError
from werkzeug.wrappers import Response

from ..airisk import valid_id
from ..identity.state import TeamState, load_state, roles_for
from ..sessions import SessionLimit, lifetime
from .auth import safe_next
from .service import service

log = logging.getLogger(__name__)

bp = Blueprint("sso", __name__)

#: Where each app keeps its own Authlib registry (one per app: tests and
#: the demo may run several apps with different providers in one process).
_EXTENSION = "airisk_sso"

#: Seconds a sign-in may take between leaving for the SSO page and coming back.
FLOW_TTL = 600
#: Where the page to return to waits during the sign-in (anonymous cookie).
NEXT_KEY = "sso_next"
#: Seconds a used state is remembered, to refuse a replayed callback.
_USED_STATE_TTL = FLOW_TTL
#: Seconds an HTTP call to the SSO provider may take.
_TIMEOUT = 10


class SSOFailed(Exception):
    """Sign-in with SSO did not succeed; the message is safe to show."""

    status = 400
    title = "Sign-in did not complete"

    def __init__(self, detail: str, message: str, status: int = 400) -> None:
        # ``detail`` is for the log only: the kind of failure, never a token.
        super().__init__(detail)
        self.detail = detail
        self.message = message
        self.status = status


def init_app(app: Any) -> None:
    """Register the SSO provider with Authlib."""
    oauth = OAuth(app)
    app.extensions[_EXTENSION] = oauth
    issuer = str(app.config["OIDC_ISSUER"]).rstrip("/")
    oauth.register(
        "sso",
        client_id=app.config["OIDC_CLIENT_ID"],
        client_secret=app.config["OIDC_CLIENT_SECRET"],
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={
            "scope": app.config["OIDC_SCOPES"],
            "code_challenge_method": "S256",
            "default_timeout": _TIMEOUT,
        },
    )
    cast(Any, oauth.sso).framework.expires_in = FLOW_TTL


def client() -> Any:
    """Return this app's Authlib client of the SSO provider."""
    return current_app.extensions[_EXTENSION].sso


@bp.get("/sso/login")
def login() -> Response:
    """Send the browser to the SSO provider's sign-in page."""
    target = safe_next(request.args.get("next"))
    if load_state() is not None:
        return redirect(target, code=303)
    session[NEXT_KEY] = target
    callback = url_for("sso.callback", _external=True)
    try:
        return cast(Response, client().authorize_redirect(callback))
    except (requests.RequestException, ValueError, AuthlibBaseError) as exc:
        raise _unreachable(exc) from exc


def _unreachable(exc: Exception) -> SSOFailed:
    return SSOFailed(
        f"SSO provider unreachable or unusable: {type(exc).__name__}",
        "The company's sign-in service did not answer. Try again in a moment.",
        status=503,
    )


def _state_key(value: str) -> str:
    return "sso-state:" + hashlib.sha256(value.encode()).hexdigest()


def _refuse_spent_state(value: str) -> None:
    """Refuse a state whose sign-in already finished."""
    if service().cache.get(_state_key(value)) is not None:
        raise SSOFailed(
            "SSO callback replayed (state already used)", _START_AGAIN, status=400
        )


def _spend_state(value: str) -> None:
    """Remember that ``value``'s sign-in finished, so a replay is refused.

    Called only after the provider accepted the code: a callback with a
    made-up code is anonymous and must write nothing server-side (anyone
    could fill the cache with states from /sso/login). The provider refuses
    a code used twice, which covers two callbacks racing past the check.
    """
    service().cache.set(_state_key(value), True, ttl=_USED_STATE_TTL)


_START_AGAIN = (
    "This sign-in answer was already used, has expired, or belongs to another "
    "browser. Start again from the dashboard."
)


def _verified_claims() -> dict[str, Any]:
    """Run Authlib's callback checks and return the ID token's claims.

    :raises SSOFailed: for an error from the provider, a state this browser
        did not start, or an ID token that fails any check.
    """
    if "error" in request.args:
        code = request.args.get("error", "")
        shown = code if code.replace("_", "").isalpha() and len(code) < 64 else "?"
        raise SSOFailed(
            f"SSO provider answered error={shown}",
            "The company's sign-in service did not sign you in. Try again; "
            "if it keeps happening, ask an administrator.",
            status=403,
        )
    state = request.args.get("state", "")
    started = session.get(f"_state_sso_{state}") if state else None
    if not isinstance(started, dict):
        raise SSOFailed("SSO callback with an unknown state", _START_AGAIN)
    # Authlib keeps an expiry with the state but does not check it when the
    # state lives in the session; a sign-in left open too long starts again.
    if not float(started.get("exp") or 0) > time.time():
        raise SSOFailed("SSO callback with an expired state", _START_AGAIN)
    _refuse_spent_state(state)
    try:
        token = client().authorize_access_token()
    except (JoseError, ValueError) as exc:
        raise SSOFailed(
            f"SSO ID token refused: {type(exc).__name__}",
            "The company's sign-in service sent an identity the dashboard "
            "cannot trust (its signature, issuer, audience or age is wrong). "
            "You are not signed in.",
            status=403,
        ) from exc
    except AuthlibBaseError as exc:
        error = getattr(exc, "error", type(exc).__name__)
        raise SSOFailed(f"SSO sign-in failed: {error}", _START_AGAIN) from exc
    except requests.RequestException as exc:
        raise _unreachable(exc) from exc
    _spend_state(state)
    claims = token.get("userinfo")
    if not claims or not claims.get("sub"):
        raise SSOFailed(
            "SSO answer has no ID token",
            "The company's sign-in service did not say who you are.",
            status=403,
        )
    return dict(claims)


@bp.get("/sso/callback")
def callback() -> Response:
    """Finish the SSO sign-in and start a dashboard session."""
    target = safe_next(session.get(NEXT_KEY))
    claims = _verified_claims()
    groups = claims.get(current_app.config["OIDC_GROUPS_CLAIM"]) or []
    if isinstance(groups, str):
        groups = groups.split()
    state = TeamState(
        subject=str(claims["sub"]),
        email=str(claims.get("email") or ""),
        email_verified=claims.get("email_verified") is True,
        name=str(claims.get("name") or claims.get("preferred_username") or ""),
        roles=roles_for(
            [str(group) for group in groups if isinstance(group, str)],
            current_app.config["REVIEWER_GROUPS"] or [],
            current_app.config["AUDITOR_GROUPS"] or [],
        ),
    )
    start_session(state)
    log.info(
        "SSO sign-in: %s (%s) as %s", state.subject, state.email, "+".join(state.roles)
    )
    return redirect(_with_anchor(target), code=303)


def _with_anchor(target: str) -> str:
    """Put back the ``#m-<id>`` of a shared message link.

    The browser drops a link's fragment during the sign-in (the provider's
    form is a POST), but ``?at=<id>`` names the same message.
    """
    at = parse_qs(urlsplit(target).query).get("at", [""])[0]
    if at and valid_id(at) and "#" not in target:
        return f"{target}#m-{at}"
    return target


def start_session(state: TeamState) -> None:
    """Store ``state`` in a brand-new server-side session (new id, new CSRF).

    :raises SessionLimit: when the store is full of other clients' sessions.
    """
    lifetime.start(state.to_json(), remember=False)
    for key in ("session_secret", "team_state", "airisk_token"):
        g.pop(key, None)


def end_sso_session() -> Response:
    """Send the browser to the provider's end-session page, then back here."""
    back = url_for("sso.signed_out", _external=True)
    try:
        metadata = client().load_server_metadata()
    except (requests.RequestException, ValueError) as exc:
        log.warning("SSO provider unreachable at sign-out: %s", type(exc).__name__)
        return redirect(url_for("sso.signed_out"), code=303)
    end = metadata.get("end_session_endpoint")
    if not end:
        return redirect(url_for("sso.signed_out"), code=303)
    # client_id instead of id_token_hint: no token travels in a URL.
    logout = client().create_logout_url(
        post_logout_redirect_uri=back, client_id=current_app.config["OIDC_CLIENT_ID"]
    )
    return redirect(logout["url"], code=303)


@bp.get("/sso/signed-out")
def signed_out() -> ResponseReturnValue:
    """Say the person is signed out of the dashboard (and of SSO)."""
    return render_template("sso/signed_out.html")


def provider_origin(issuer: str) -> str:
    """Return the scheme://host[:port] of ``issuer`` (for the CSP)."""
    parts = urlsplit(issuer)
    return f"{parts.scheme}://{parts.netloc}"


def handle_sso_failed(error: SSOFailed) -> ResponseReturnValue:
    """Show a page for a failed SSO sign-in; log the reason for the admin."""
    from .errors import render_error

    log.warning("SSO sign-in refused: %s", error.detail)
    return render_error(error.status, error.title, error.message)


def handle_session_limit(error: SessionLimit) -> ResponseReturnValue:
    """Explain that the dashboard holds as many sessions as it may."""
    from .errors import render_error

    return render_error(
        503,
        "Too many people are signed in",
        "The dashboard has as many people signed in as it is set up to hold. "
        "Try again later; an administrator can raise SESSION_MAX_SIGNED_IN.",
    )
