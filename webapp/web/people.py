"""Team mode: whose history a request shows, and whether the person may see it.

Every history page (list, search, conversation, exports, insights) has a
per-user address, ``/u/<AIRisk user id>/...``, so a link works for everyone
allowed to open it. Before such a view runs, :func:`gate` decides:

- a member may open only their own AIRisk user (matched by verified e-mail);
  another user's link is a 403 page with no data;
- a reviewer may open any AIRisk user that ListUsers lists;
- the token for that user is minted (or reused) and handed to the view
  through :func:`webapp.web.auth.current_token`.

An address without ``/u/<id>`` (a token-mode link, the home page) goes to the
person's own user, or for a reviewer to the last user viewed or the picker.
"""

from __future__ import annotations

import logging
from typing import Any, cast

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
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import Forbidden as HTTPForbidden
from werkzeug.exceptions import NotFound as HTTPNotFound
from werkzeug.wrappers import Response

from ..airisk import AIRiskUser, valid_id
from ..identity import AUDITOR
from ..identity.state import TeamState, load_state, save_state
from .airisk_oauth import token_for, users
from .auth import redirect_to_token_page, sign_out

log = logging.getLogger(__name__)

bp = Blueprint("people", __name__)

#: The views whose data belongs to one AIRisk user: each also answers under
#: ``/u/<uid>`` and needs a token minted for that user.
PER_USER = frozenset(
    {
        "conversations.index",
        "conversations.detail",
        "conversations.export_list",
        "conversations.export",
        "insights.index",
        "insights.data",
        "insights.chart_csv",
        "reviews.change",
        "reviews.bulk",
        "reviews.add_note",
        "reviews.edit_note",
        "reviews.queue",
    }
)
_MAX_PICKER_QUERY = 200
#: Most people the picker lists at once; a search narrows a large tenant.
MAX_LISTED = 200


class NotYourHistory(HTTPForbidden):
    """A member opened another AIRisk user's address."""


class NoSuchUser(HTTPNotFound):
    """A reviewer opened an address of a user AIRisk does not list."""


def per_user_endpoints(app: Flask) -> set[str]:
    """Return the per-user endpoints that exist in ``app``."""
    return {rule.endpoint for rule in app.url_map.iter_rules()} & PER_USER


def add_user_routes(app: Flask) -> None:
    """Serve each per-user view also under ``/u/<uid>``."""
    for rule in list(app.url_map.iter_rules()):
        if rule.endpoint in PER_USER:
            app.add_url_rule(
                "/u/<uid>" + rule.rule,
                endpoint=rule.endpoint,
                view_func=app.view_functions[rule.endpoint],
                methods=rule.methods,
            )

    @app.url_value_preprocessor
    def _take_uid(endpoint: str | None, values: dict[str, Any] | None) -> None:
        # Views do not know about the AIRisk user; the gate does.
        if values is not None and "uid" in values:
            g.viewing_uid = values.pop("uid")

    @app.url_defaults
    def _keep_uid(endpoint: str, values: dict[str, Any]) -> None:
        # Links between history pages stay on the user being viewed.
        if endpoint in PER_USER and "uid" not in values and g.get("viewing_uid"):
            values["uid"] = g.viewing_uid


def _user_named(state: TeamState, uid: str) -> AIRiskUser | None:
    return next((user for user in users(state) if user.id == uid), None)


def _match(state: TeamState) -> None:
    """Match the person's verified e-mail to an AIRisk user, once per session."""
    if state.email_verified and state.email:
        wanted = state.email.casefold()
        found = [u for u in users(state) if u.email.casefold() == wanted]
        # Two AIRisk users with one e-mail: acting as either could be wrong.
        state.own_user = found[0].id if len(found) == 1 else None
        state.matches = len(found)
    state.matched = True
    save_state(state)
    log.info(
        "SSO person %s matched AIRisk user %s", state.subject, state.own_user or "none"
    )


def _no_account(state: TeamState) -> ResponseReturnValue:
    from .errors import render_error

    email = state.email or "(none)"
    if not state.email_verified:
        message = (
            f"Your sign-in service does not say that your e-mail address, {email}, "
            "is verified, so the dashboard cannot match it to an AIRisk user. "
            "Ask your administrator to verify it."
        )
    elif state.matches > 1:
        message = (
            f"{state.matches} AIRisk users have the e-mail address {email}, so "
            "the dashboard cannot tell which one is you. Ask your AIRisk "
            "administrator to give each account its own address."
        )
    else:
        message = (
            f"No AIRisk user has the e-mail address {email} (the address your "
            "company's sign-in service gave). Ask your AIRisk administrator to "
            "create your account or correct its e-mail address."
        )
    sign_out()
    return render_error(403, "No AIRisk account for you", message)


def gate() -> ResponseReturnValue | None:
    """Before a team-mode request: sign-in, e-mail match, per-user access."""
    endpoint = request.endpoint or ""
    if endpoint not in PER_USER and endpoint != "people.index":
        return None
    state = load_state()
    if state is None:
        return redirect_to_token_page(g.get("session_end_reason"))
    if not state.matched:
        _match(state)
    if not state.is_reviewer and state.own_user is None:
        return _no_account(state)
    if endpoint not in PER_USER:
        return None
    uid = g.get("viewing_uid")
    if uid is None:
        return _to_default_user(state, endpoint)
    if not state.is_reviewer and uid != state.own_user:
        log.warning(
            "Refused: member %s opened AIRisk user %s's address",
            state.subject,
            uid if valid_id(uid) else "(not an id)",
        )
        raise NotYourHistory()
    if state.is_reviewer:
        viewed = _user_named(state, uid) if valid_id(uid) else None
        if viewed is None:
            raise NoSuchUser()
        g.viewing_name = viewed.display_name
        if state.viewing != uid:
            state.viewing = uid
            save_state(state)
        log.info("Reviewer %s views AIRisk user %s", state.subject, uid)
    g.airisk_token = token_for(state, uid)
    return None


def _to_default_user(state: TeamState, endpoint: str) -> Response:
    uid = state.own_user if not state.is_reviewer else state.viewing
    if uid is None:
        return redirect(url_for("people.index"), code=303)
    # The query string goes along as sent: passed to url_for, a key such as
    # "_method" or "endpoint" would be its own argument (a 500), "_external"
    # or "_anchor" would change the address, and a repeated key would be lost.
    target = url_for(endpoint, **(request.view_args or {}), uid=uid)
    query = request.query_string.decode("utf-8", "replace")
    return redirect(f"{target}?{query}" if query else target, code=303)


def viewing_name() -> str | None:
    """Return the display name of the AIRisk user on screen (reviewers)."""
    # The gate looked it up: drawing a header (of an error page too) must not
    # call AIRisk, whose failure would then fail the error page itself.
    return cast("str | None", g.get("viewing_name"))


@bp.get("/people")
def index() -> ResponseReturnValue:
    """List AIRisk users for a reviewer to pick from (``q`` filters)."""
    state = load_state()
    assert state is not None  # the gate let the request through
    if not state.is_reviewer:
        raise HTTPForbidden()
    query = request.args.get("q", "")[:_MAX_PICKER_QUERY].strip()
    wanted = query.casefold()
    everyone = sorted(users(state), key=lambda u: u.display_name.casefold())
    shown = [
        user
        for user in everyone
        if not wanted
        or wanted in user.display_name.casefold()
        or wanted in user.email.casefold()
        or wanted in user.user_name.casefold()
    ]
    return render_template(
        "people/index.html",
        users=shown[:MAX_LISTED],
        matching=len(shown),
        total=len(everyone),
        query=query,
        viewing=state.viewing,
    )


def handle_not_yours(error: NotYourHistory) -> ResponseReturnValue:
    """Explain that this history belongs to someone else; show no data."""
    from .errors import render_error

    # The page's own links must not lead back to the other person's history.
    g.viewing_uid = None
    state = load_state()
    who = f"{state.name} ({state.email})" if state else "you"
    return render_error(
        403,
        "This is not your conversation history",
        f"This link opens another person's AIRisk conversations. You are signed "
        f"in as {who}, a member: members can open only their own history. "
        "Reviewers can open anyone's; ask one if you need to see it.",
    )


def handle_no_such_user(error: NoSuchUser) -> ResponseReturnValue:
    """Say that AIRisk lists no user with this id."""
    from .errors import render_error

    return render_error(
        404,
        "No such AIRisk user",
        "AIRisk lists no user with the id in this address. Pick someone from "
        "the list of users instead.",
    )


def header() -> dict[str, Any] | None:
    """Return who is signed in and whose history is on screen, for the header."""
    if current_app.config["AUTH_MODE"] != "team":
        return None
    state = load_state()
    if state is None:
        return None
    return {
        "name": state.name or state.email,
        "email": state.email,
        "reviewer": state.is_reviewer,
        "auditor": AUDITOR in state.roles,
        "viewing": viewing_name() if request.endpoint in PER_USER else None,
    }
