"""The review queue (``/review``): what waits for a reviewer, across users.

Three lists, for the AIRisk user on screen, a chosen set of users, or (a
reviewer) every user: conversations assigned to me, escalated ones, and
those in review. They come from the database alone. "Flagged, not yet
reviewed" needs each user's whole history: a scan made within
``AIRISK_SCAN_TTL`` (finished or stopped) is read here; otherwise the user's
link opens the list in search mode (``flagged=1&review=new``), where the
scan shows its progress and can be stopped keeping what it found. The queue
itself starts no scan and mints no token. The scope is in the URL
(``users=``), like every page.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, g, render_template, request, url_for

from ..airisk import valid_id
from ..identity import REVIEWER
from ..store import reviews as db
from ..store.models import ESCALATED, IN_REVIEW
from .audit import roles, store, who
from .auth import current_token, team_mode
from .service import service

#: Most users one queue names explicitly.
MAX_USERS = 50


def _scope() -> tuple[list[str] | None, str]:
    """Return the AIRisk users in scope (None: all) and the ``users`` value."""
    raw = request.args.get("users", "").strip()
    here = g.get("viewing_uid") or g.get("trail_user")
    if REVIEWER in roles() and team_mode():
        if raw == "all":
            return None, "all"
        chosen = [u for u in raw.replace(",", " ").split() if valid_id(u)][:MAX_USERS]
        if chosen:
            return chosen, " ".join(chosen)
    if here:
        return [here], ""
    if not team_mode():
        # Token mode: the token's own history, whichever user that is.
        return None, ""
    return [], ""


def _token_of(user: str) -> str | None:
    """Return a token for ``user`` already at hand (never mints one)."""
    if not team_mode():
        return current_token()
    from ..identity.state import load_state, token_from

    state = load_state()
    margin = float(current_app.config["AIRISK_TOKEN_MARGIN"])
    return token_from(state, user, margin) if state else None


def _flagged(user: str, token: str | None) -> dict[str, Any]:
    """Return a user's flagged, not-yet-reviewed conversations from a cached scan.

    Only a scan already made (within AIRISK_SCAN_TTL) is read: the queue
    starts no scan; its link opens the list, where the scan runs with
    progress and a Stop.
    """
    from .reviews import filter_rows

    if team_mode():
        href = url_for("conversations.index", uid=user, flagged="1", review="new")
    else:
        href = url_for("conversations.index", flagged="1", review="new")
    history = service().cached_history(token) if token else None
    rows = None
    if history is not None:
        rows = filter_rows([r for r in history.rows if r.flagged], "new", "")
    return {
        "user": user,
        "href": href,
        "rows": rows,
        "history": history,
        "titles": {row.id: row.title for row in history.rows} if history else {},
    }


def _link(user: str, cid: str) -> str:
    if team_mode():
        return url_for("conversations.detail", uid=user, cid=cid)
    return url_for("conversations.detail", cid=cid)


def _flagged_sections(users: list[str] | None) -> list[dict[str, Any]]:
    if users is not None:
        return [_flagged(user, _token_of(user)) for user in users[:MAX_USERS]]
    if not team_mode():
        # Token mode: the token's own history, whoever it belongs to.
        section = _flagged("", current_token())
        return [section]
    from ..identity.state import load_state
    from .airisk_oauth import users as tenant_users

    state = load_state()
    everyone = tenant_users(state) if state else []
    return [_flagged(u.id, _token_of(u.id)) for u in everyone[:MAX_USERS]]


def queue_page() -> Any:
    """Render the queue for the users in scope."""
    users, users_arg = _scope()
    person = who()
    me = (person[1] or person[0]) if person else ""
    data = store()
    flagged = _flagged_sections(users)
    titles: dict[str, str] = {}
    for section in flagged:
        titles.update(section["titles"])

    def listed(found: dict[db.Key, db.Review]) -> list[dict[str, Any]]:
        items = [
            {
                "user": user,
                "cid": cid,
                "title": titles.get(cid),
                "review": review,
                "href": _link(user, cid),
            }
            for (user, cid), review in found.items()
        ]
        return sorted(
            items, key=lambda i: (i["review"].due is None, i["review"].due, i["cid"])
        )

    scoped = users if users is None or users else []
    sections = [
        ("Assigned to me", listed(db.keys_where(data, scoped, assignee=me))),
        ("Escalated", listed(db.keys_where(data, scoped, states=[ESCALATED]))),
        ("In review", listed(db.keys_where(data, scoped, states=[IN_REVIEW]))),
    ]
    return render_template(
        "reviews/queue.html",
        sections=sections,
        flagged=flagged,
        users_arg=users_arg,
        every_user=users is None and team_mode(),
        reviewer=REVIEWER in roles() and team_mode(),
        me=me,
    )
