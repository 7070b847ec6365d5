"""Mint AIRisk tokens for a team session, as the dashboard's OAuth2 API client.

The dashboard holds the AIRisk API client's credentials and never shows them
to a browser. For each AIRisk user a signed-in person may view (and once for
the generic token that lists users) it runs AIRisk's documented OAuth2 flow:

- ``AIRISK_OAUTH2_FLOW=server``: the dashboard requests the authorize URL
  itself, reads ``code`` and ``state`` from the redirect without following it,
  and exchanges the code (what the vendor's live client does);
- ``AIRISK_OAUTH2_FLOW=browser``: the person's browser is sent to AIRisk and
  comes back to ``/airisk/callback`` with the code. The ``state`` is random,
  kept in the server-side session, single use and valid for five minutes.

Tokens are kept per session with their ``expiration`` and replaced
``AIRISK_TOKEN_MARGIN`` seconds before it.
"""

from __future__ import annotations

import logging
import secrets
from urllib.parse import urlencode

from flask import Blueprint, current_app, g, redirect, request
from werkzeug.wrappers import Response

from ..airisk import (
    AIRiskUser,
    AuthorizationDenied,
    ClientCredentials,
    MintedToken,
    StateMismatch,
)
from ..identity.cache import TokenCappedCache
from ..identity.state import (
    GENERIC,
    Minted,
    Pending,
    TeamState,
    load_state,
    now,
    save_state,
    token_from,
)
from .auth import redirect_to_token_page, safe_next
from .service import service

log = logging.getLogger(__name__)

bp = Blueprint("airisk_oauth", __name__)

#: Seconds a browser-flow ``state`` stays valid.
STATE_TTL = 300
#: Most browser-flow authorize requests a session may have open at once.
_MAX_PENDING = 8
#: Seconds the user list (ListUsers) is reused per generic token.
USERS_TTL = 300
#: Browser flow: seconds a token fetched through the browser is used whatever
#: its expiration says (near, or past by AIRisk's clock): the pages it was
#: fetched for must use it, or each sends the browser to AIRisk again, a loop.
#: If AIRisk refuses it, the 401 handler re-mints once, then shows a page.
BROWSER_GRACE = 10


class BrowserMintNeeded(Exception):
    """Browser flow: the browser must go to AIRisk for a code first."""

    def __init__(self, location: str) -> None:
        super().__init__("browser must fetch an AIRisk code")
        self.location = location


def credentials() -> ClientCredentials:
    """Return the dashboard's AIRisk API client from the configuration."""
    config = current_app.config
    return ClientCredentials(
        config["AIRISK_CLIENT_ID"],
        config["AIRISK_CLIENT_SECRET"],
        config["AIRISK_REDIRECT_URI"],
    )


def _label(user: str) -> str:
    # Logs name the kind of token and the AIRisk user id, never the token.
    return "generic" if user == GENERIC else f"user {user}"


def token_for(state: TeamState, user: str) -> str:
    """Return a live token for ``user`` (GENERIC: the application token).

    :raises BrowserMintNeeded: in the browser flow, when none is at hand.
    :raises OAuthFailed: and its subclasses, when AIRisk issues none.
    """
    margin = float(current_app.config["AIRISK_TOKEN_MARGIN"])
    token = token_from(state, user, margin)
    if token is not None:
        _cap(token, state.tokens[user].expires)
        return token
    if current_app.config["AIRISK_OAUTH2_FLOW"] == "browser":
        fresh = state.tokens.get(user)
        if fresh is not None and 0 <= now() - fresh.at < BROWSER_GRACE:
            return fresh.token
        raise BrowserMintNeeded(_browser_authorize(state, user))
    client = service().client
    creds = credentials()
    user_id = None if user == GENERIC else user
    code = client.authorize(creds, state=secrets.token_urlsafe(24), user_id=user_id)
    return _keep(state, user, client.exchange_code(creds, code.code, user_id=user_id))


def _keep(state: TeamState, user: str, minted: MintedToken) -> str:
    old = state.tokens.get(user)
    if old is not None:
        # No cached page may outlive the token it was fetched with.
        service().forget(old.token)
    expires = minted.expiration.timestamp()
    state.tokens[user] = Minted(minted.access_token, expires, now())
    save_state(state)
    _cap(minted.access_token, expires)
    log.info(
        "Minted an AIRisk %s token for %s (%d s left)",
        _label(user),
        state.subject,
        int(expires - now()),
    )
    return minted.access_token


def _cap(token: str, expires: float) -> None:
    cache = service().cache
    if isinstance(cache, TokenCappedCache):
        cache.limit(token, expires)


def drop_token(state: TeamState, user: str) -> None:
    """Forget the session's token for ``user`` and what was cached with it."""
    minted = state.tokens.pop(user, None)
    if minted is not None:
        service().forget(minted.token)
    save_state(state)


def users(state: TeamState) -> list[AIRiskUser]:
    """Return the tenant's users (ListUsers with the generic token), cached."""
    token = token_for(state, GENERIC)
    cache = service().cache
    key = f"{cache.token_key(token)}:users"
    found = cache.get(key)
    if found is None:
        # A 401 from here is the generic token's, not the viewed user's: the
        # 401 handler must replace this one (see team.handle_token_rejected).
        g.refused_user = GENERIC
        found = tuple(service().client.list_users(token))
        del g.refused_user
        cache.set(key, found, ttl=USERS_TTL)
    return list(found)


def _browser_authorize(state: TeamState, user: str) -> str:
    """Remember a fresh state for ``user`` and return AIRisk's authorize URL."""
    moment = now()
    for key, pending in list(state.pending.items()):
        if pending.expires <= moment:
            del state.pending[key]
    while len(state.pending) >= _MAX_PENDING:
        del state.pending[next(iter(state.pending))]
    nonce = secrets.token_urlsafe(24)
    target = request.full_path if request.query_string else request.path
    state.pending[nonce] = Pending(user, safe_next(target), moment + STATE_TTL)
    save_state(state)
    creds = credentials()
    params = {
        "client_id": creds.client_id,
        "redirect_uri": creds.redirect_uri,
        "state": nonce,
    }
    if user != GENERIC:
        params["userid"] = user
    base = current_app.config["AIRISK_BASE_URL"].rstrip("/")
    return f"{base}/api/oauth2?{urlencode(params)}"


def redirect_to_airisk(error: BrowserMintNeeded) -> Response:
    """Send the browser to AIRisk's authorize URL (browser flow)."""
    return redirect(error.location, code=303)


@bp.get("/airisk/callback")
def callback() -> Response:
    """Take AIRisk's code back (browser flow) and return to the page asked for.

    :raises StateMismatch: for a state this session did not send, or sent
        too long ago, or already used.
    :raises AuthorizationDenied: if AIRisk sent an error instead of a code.
    """
    state = load_state()
    if state is None:
        return redirect_to_token_page()
    nonce = request.args.get("state", "")
    pending = state.pending.pop(nonce, None)
    if pending is not None:
        # Single use: spent before anything else can fail.
        save_state(state)
    if pending is None or pending.expires <= now():
        raise StateMismatch("oauth2 callback: unknown, used or expired state")
    if "error" in request.args:
        raise AuthorizationDenied("oauth2 callback: redirect carries an error")
    code = request.args.get("code", "")
    if not code:
        raise StateMismatch("oauth2 callback: no code")
    user_id = None if pending.user == GENERIC else pending.user
    minted = service().client.exchange_code(credentials(), code, user_id=user_id)
    _keep(state, pending.user, minted)
    g.pop("airisk_token", None)
    return redirect(pending.next, code=303)
