"""The review queue (``/review``): what waits for a reviewer, across users.

Three lists, for the AIRisk user on screen, a chosen set of users, or (a
reviewer) every user: conversations assigned to me, escalated ones, and
those in review. They come from the database alone. "Flagged, not yet
reviewed" needs each user's whole history: each user's link opens the list
in search mode (``flagged=1&review=new``), where the whole-history scan shows
its progress, can be stopped keeping what it found, and is reused within
``AIRISK_SCAN_TTL``. The scope is in the URL (``users=``), like every page.
"""

from __future__ import annotations

from typing import Any

from flask import g, render_template, request, url_for

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


def _titles(users: list[str] | None) -> dict[str, str]:
    """Return titles of conversations already in a cached scan (token mode)."""
    token = current_token()
    if team_mode() or not token:
        return {}
    history = service().cached_history(token)
    return {row.id: row.title for row in history.rows} if history else {}


def _link(user: str, cid: str) -> str:
    if team_mode():
        return url_for("conversations.detail", uid=user, cid=cid)
    return url_for("conversations.detail", cid=cid)


def queue_page() -> Any:
    """Render the queue for the users in scope."""
    users, users_arg = _scope()
    person = who()
    me = (person[1] or person[0]) if person else ""
    data = store()
    titles = _titles(users)

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
    flagged = []
    for user in users or []:
        if team_mode():
            href = url_for("conversations.index", uid=user, flagged="1", review="new")
        else:
            href = url_for("conversations.index", flagged="1", review="new")
        flagged.append((user, href))
    if users is None and not team_mode():
        flagged.append(("", url_for("conversations.index", flagged="1", review="new")))
    return render_template(
        "reviews/queue.html",
        sections=sections,
        flagged=flagged,
        users_arg=users_arg,
        every_user=users is None and team_mode(),
        reviewer=REVIEWER in roles() and team_mode(),
        me=me,
    )
