"""Wire team mode (``AUTH_MODE=team``) into the app: SSO, minting, per-user URLs.

Token mode is untouched: nothing here is registered unless the setting asks
for it.
"""

from __future__ import annotations

import logging

from flask import Flask, g, redirect, request
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from ..airisk import TokenRejected
from ..identity.cache import TokenCappedCache
from ..identity.state import GENERIC, load_state, now, save_state
from ..sessions import SessionLimit
from . import airisk_oauth, people, sso
from .service import service

log = logging.getLogger(__name__)

#: Seconds within which a second 401 for the same AIRisk user, right after a
#: re-mint, is an error page rather than another re-mint (no loop).
REMINT_WINDOW = 60


def init_app(app: Flask) -> None:
    """Register team mode's routes, gate, error handlers and header."""
    upstream = app.extensions["airisk"]
    upstream.cache = TokenCappedCache(upstream.cache)
    sso.init_app(app)
    app.register_blueprint(sso.bp)
    app.register_blueprint(airisk_oauth.bp)
    app.register_blueprint(people.bp)
    people.add_user_routes(app)
    app.before_request(people.gate)
    app.register_error_handler(airisk_oauth.BrowserMintNeeded, _to_airisk)
    app.register_error_handler(sso.SSOFailed, sso.handle_sso_failed)
    app.register_error_handler(SessionLimit, sso.handle_session_limit)
    app.register_error_handler(people.NotYourHistory, people.handle_not_yours)
    app.register_error_handler(people.NoSuchUser, people.handle_no_such_user)
    # Registered after webapp.errors' handler, so this one wins for team mode.
    app.register_error_handler(TokenRejected, handle_token_rejected)
    app.context_processor(lambda: {"team": people.header()})
    origin = sso.provider_origin(str(app.config["OIDC_ISSUER"]))

    @app.after_request
    def _allow_sso_sign_out(response: Response) -> Response:
        # Sign-out is a form POST answered by a redirect to the provider's
        # end-session page; CSP's form-action covers that redirect.
        policy = response.headers.get("Content-Security-Policy")
        if policy and "form-action 'self'" in policy:
            response.headers["Content-Security-Policy"] = policy.replace(
                "form-action 'self'", f"form-action 'self' {origin}"
            )
        return response


def _to_airisk(error: airisk_oauth.BrowserMintNeeded) -> Response:
    return airisk_oauth.redirect_to_airisk(error)


def handle_token_rejected(error: TokenRejected) -> ResponseReturnValue:
    """Re-mint once after a 401 and return to the same URL; then an error page."""
    from .errors import handle_token_rejected as token_mode_handler
    from .errors import render_error

    state = load_state()
    if state is None:
        return token_mode_handler(error)
    user = g.pop("refused_user", None)
    if user is None:
        user = g.get("viewing_uid") or GENERIC
    minted = state.tokens.pop(user, None)
    if minted is not None:
        service().forget(minted.token)
    moment = now()
    last = state.reminted_after_401.get(user)
    if last is not None and moment - last < REMINT_WINDOW:
        save_state(state)
        log.error(
            "AIRisk refused a freshly minted token for %s (%s): check the API "
            "client's permissions in AIRisk",
            "generic" if user == GENERIC else f"user {user}",
            error.detail,
        )
        return render_error(
            502,
            "AIRisk refuses the dashboard's access",
            "AIRisk did not accept the access token the dashboard just obtained "
            "for this user, twice in a row. Try again later; an administrator "
            "can find the reason in the dashboard's log.",
        )
    state.reminted_after_401[user] = moment
    save_state(state)
    log.info("AIRisk answered 401 (%s); minting a new token once", error.detail)
    target = request.full_path if request.query_string else request.path
    return redirect(target, code=303)


def drop_viewed_token() -> None:
    """Forget the token of the AIRisk user on screen (AIRisk refused it)."""
    state = load_state()
    if state is not None:
        airisk_oauth.drop_token(state, g.get("viewing_uid") or GENERIC)
