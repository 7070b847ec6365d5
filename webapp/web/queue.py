"""The review queue (``/review``): what waits for a reviewer, across users.

Three lists, for the AIRisk user on screen, a chosen set of users, or (a
reviewer) every user: conversations assigned to me, escalated ones, and
those in review. They come from the database alone. "Flagged, not yet
reviewed" needs each user's whole history: a scan made within
``AIRISK_SCAN_TTL`` (finished or stopped) is read here. With ``scan=1`` the
queue scans each user in scope in turn (in team mode with a token minted for
that user; in token mode the token's own history), streaming the progress of
the one running with a Stop (``partial=1&stop=<job>&stopuser=<user>``) that
keeps what was found, labelled partial. A scan within ``AIRISK_SCAN_TTL`` is
reused, so a repeat costs no AIRisk call. The scope is in the URL
(``users=``, ``scan=``), like every page; a member's scope is only ever
their own history.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from flask import Response, current_app, g, render_template, request, url_for

from ..airisk import valid_id
from ..airisk.scans import ScanProgress
from ..airisk.service import History
from ..identity import REVIEWER
from ..store import reviews as db
from ..store.models import ESCALATED, IN_REVIEW
from .audit import roles, store, who
from .auth import current_token, team_mode
from .scanning import STOP_WAIT, result_or_stream, stream_scan
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


def _flagged(
    user: str, token: str | None, stopped: History | None = None
) -> dict[str, Any]:
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
    history = stopped or (service().cached_history(token) if token else None)
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


def _targets(users: list[str] | None) -> list[str]:
    """Return the AIRisk users whose histories the queue covers ("": the token's)."""
    if users is not None:
        return users[:MAX_USERS]
    if not team_mode():
        # Token mode: the token's own history, whoever it belongs to.
        return [""]
    from ..identity.state import load_state
    from .airisk_oauth import users as tenant_users

    state = load_state()
    everyone = tenant_users(state) if state else []
    return [u.id for u in everyone[:MAX_USERS]]


def _scan_token(user: str) -> str | None:
    """Return a token to scan ``user``'s history with, minting one in team mode."""
    if not team_mode():
        return current_token()
    from ..identity.state import load_state
    from .airisk_oauth import token_for

    state = load_state()
    return token_for(state, user) if state else None


def _stop(targets: list[str]) -> tuple[str, History | None]:
    """Stop the scan the Stop link names; return its user and what it found.

    Only a user in scope can be named, so a Stop never reaches (or reads)
    another user's scan.
    """
    stop_id = request.args.get("stop", "")
    user = request.args.get("stopuser", "")
    if not stop_id or user not in targets:
        return "", None
    token = _token_of(user)
    if token is None:
        return "", None
    stopped = service().stop(token, stop_id)
    if stopped is None:
        return user, None  # another process: it leaves its partial scan cached
    if stopped.wait_done(STOP_WAIT) and isinstance(stopped.result, History):
        return user, stopped.result
    # Still waiting on AIRisk: show what it found up to now.
    now = datetime.now(UTC)
    return user, History(tuple(stopped.rows), stopped.pages, False, now, False)


def _scan(targets: list[str], users_arg: str) -> Response | None:
    """Scan each user in turn; stream the first scan still running, if any.

    Each streamed page refreshes to this URL when its scan is done, which
    then finds that user's scan in the cache and goes on to the next.
    """
    for number, user in enumerate(targets, 1):
        token = _scan_token(user)
        if token is None:
            continue
        found = service().scan_job(token)
        served = result_or_stream(
            found,
            wait=False,
            stream=functools.partial(_stream, user, number, len(targets), users_arg),
        )
        if isinstance(served, Response):
            return served
    return None


def _queue_url(users_arg: str, **args: Any) -> str:
    """Return the queue's URL for the same scope with ``args`` added."""
    if users_arg:
        args["users"] = users_arg
    return url_for("reviews.queue", **args)


def _stream(
    user: str,
    number: int,
    count: int,
    users_arg: str,
    first: ScanProgress,
    steps: Iterator[ScanProgress],
    job_id: str,
) -> Response:
    """Stream one user's scan, flagged and unreviewed rows as they come."""
    from .reviews import filter_rows

    done_url = _queue_url(users_arg, scan="1")
    stop_url = _queue_url(users_arg, partial="1", stop=job_id, stopuser=user)
    page = render_template(
        "reviews/queue_scan.html",
        user=user,
        number=number,
        count=count,
        stop_url=stop_url,
    )

    def progress(step: ScanProgress) -> str:
        flagged = [r for r in step.new_rows if r.flagged]
        rows = filter_rows(flagged, "new", "") if flagged else []
        return render_template(
            "reviews/queue_scan_progress.html",
            progress=step,
            matches=[(row, _link(user, row.id)) for row in rows],
        )

    return stream_scan(
        page,
        first,
        steps,
        progress=progress,
        folder="conversations",
        done_url=done_url,
    )


def queue_page() -> Any:
    """Render the queue for the users in scope."""
    users, users_arg = _scope()
    person = who()
    me = (person[1] or person[0]) if person else ""
    data = store()
    targets = _targets(users)
    stopped_user, stopped = _stop(targets)
    partial = request.args.get("partial") == "1" or bool(stopped_user)
    if request.args.get("scan") == "1" and not partial:
        streamed = _scan(targets, users_arg)
        if streamed is not None:
            return streamed
    flagged = [
        _flagged(
            user,
            _token_of(user),
            stopped if user == stopped_user else None,
        )
        for user in targets
    ]
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
        scan_url=_queue_url(users_arg, scan="1"),
        partial=partial,
    )
