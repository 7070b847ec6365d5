"""Review workflow pages: a conversation's state and notes, bulk changes, the queue.

A review is kept per AIRisk user id and conversation id (the user id comes
from the conversation AIRisk returns, so a form cannot name someone else's).
Reviewers (team mode) and a token's holder (token mode) change states and
write notes; members only read. Every POST carries the CSRF token and
answers with a redirect, and every change leaves history and trail rows in
the same transaction as the change itself.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    g,
    redirect,
    request,
    url_for,
)
from markupsafe import Markup
from werkzeug.exceptions import Forbidden

from ..core.rendering import render_markdown
from ..identity import REVIEWER
from ..store import reviews as db
from ..store import trail
from ..store.models import CLEARED, ESCALATED, IN_REVIEW, NEW, STATES
from .audit import actor_event, roles, seen_by, store
from .auth import safe_next, signed_in_token, token_required
from .service import service

bp = Blueprint("reviews", __name__)

#: Most conversations one bulk change touches (one list page at most).
MAX_BULK = 100
#: Longest assignee (an e-mail address) accepted.
MAX_ASSIGNEE = 254


def may_review() -> bool:
    """Return whether this request's person may change reviews."""
    return REVIEWER in roles()


def _reviewer_required() -> trail.Event:
    event = actor_event("review.change")
    if event is None or not may_review():
        raise Forbidden("Only reviewers can change reviews or write notes.")
    return event


def _key(cid: str) -> db.Key:
    """Return (AIRisk user id, conversation id), checking the viewer may see it."""
    # The conversation as AIRisk gives it to this token: an id the token
    # cannot see is AIRisk's 404 here, never a row about someone else.
    conversation = service().conversation(signed_in_token(), cid)
    user = conversation.summary.user_id or g.get("viewing_uid") or ""
    g.trail_user = user or None
    return (user, cid)


def _back(default: str) -> Any:
    return redirect(safe_next(request.form.get("back") or default), code=303)


def _wanted() -> db.Wanted:
    state = request.form.get("state") or None
    if state is not None and state not in STATES:
        abort(400)
    assignee = (request.form.get("assignee") or "").strip()[:MAX_ASSIGNEE]
    due_raw = request.form.get("due")
    due = None
    if due_raw:
        try:
            due = date.fromisoformat(due_raw[:10])
        except ValueError:
            abort(400)
    return db.Wanted(
        state=state,
        assignee=assignee or None,
        due=due,
        clear_assignee="assignee" in request.form and not assignee,
        clear_due="due" in request.form and not due_raw,
    )


@bp.post("/conversations/<cid>/review")
@token_required
def change(cid: str) -> Any:
    """Set one conversation's state, assignee or due date."""
    by = _reviewer_required()
    key = _key(cid)
    db.change(store(), [key], _wanted(), by)
    return _back(url_for("conversations.detail", cid=cid))


@bp.post("/conversations/review")
@token_required
def bulk() -> Any:
    """Set the state of every selected conversation of a list."""
    by = _reviewer_required()
    cids = list(dict.fromkeys(request.form.getlist("cid")))[:MAX_BULK]
    if not cids:
        return _back(url_for("conversations.index"))
    keys = [_key(cid) for cid in cids]
    db.change(store(), keys, _wanted(), by)
    return _back(url_for("conversations.index"))


def _span() -> tuple[str, str] | None:
    first, _, last = (request.form.get("highlight") or "").partition("..")
    if not first:
        return None
    return (first[:128], (last or first)[:128])


@bp.post("/conversations/<cid>/notes")
@token_required
def add_note(cid: str) -> Any:
    """Add a note on the conversation or on its highlighted messages."""
    by = _reviewer_required()
    body = (request.form.get("body") or "").strip()
    if not body:
        abort(400)
    key = _key(cid)
    reason = request.form.get("escalation") == "1"
    db.add_note(store(), key, body, _span(), reason, by)
    if reason:
        db.change(store(), [key], db.Wanted(state=ESCALATED), by)
    return _back(url_for("conversations.detail", cid=cid))


@bp.post("/conversations/<cid>/notes/<int:note_id>")
@token_required
def edit_note(cid: str, note_id: int) -> Any:
    """Change a note (its author only); the earlier text is kept."""
    by = _reviewer_required()
    body = (request.form.get("body") or "").strip()
    if not body:
        abort(400)
    key = _key(cid)
    reason = request.form.get("escalation") == "1"
    if not db.edit_note(store(), key, note_id, body, reason, by):
        raise Forbidden("Only its author can change a note.")
    return _back(url_for("conversations.detail", cid=cid))


def note_html(body: str, number: int) -> Markup:
    """Render a note's Markdown with the messages' sanitizer."""
    return render_markdown(body, anchor_prefix=f"n{number}-", citation_count=0)


def panel(user_id: str, cid: str) -> dict[str, Any]:
    """Return what the conversation page shows of its review."""
    # The same key as a change made from this page (see _key).
    key = (user_id or g.get("viewing_uid") or "", cid)
    data = store()
    notes = db.notes(data, key)
    person = actor_event("review.view")
    # Each note is also shown beside the last message of its range.
    notes_at: dict[str, list[Any]] = {}
    for note in notes:
        if note.last:
            notes_at.setdefault(note.last, []).append(note)
    return {
        "notes_at": notes_at,
        "review": db.review(data, key),
        "history": db.history(data, key),
        "notes": notes,
        "revisions": {
            n.id: db.note_revisions(data, n.id) for n in notes if n.edited_at
        },
        "states": STATES,
        "one_click": (IN_REVIEW, CLEARED, ESCALATED),
        "may_review": may_review(),
        "me": person.subject if person else None,
        "seen_by": seen_by(cid),
        "note_html": note_html,
    }


def row_reviews(rows: list[Any]) -> dict[str, db.Review]:
    """Return the review of each list row, by conversation id (one query)."""
    if not rows:
        return {}
    found = db.reviews(store(), [(row.user_id, row.id) for row in rows])
    return {cid: review for (_, cid), review in found.items()}


def filter_rows(rows: list[Any], state: str, assignee: str) -> list[Any]:
    """Keep the rows in review ``state`` and assigned to ``assignee`` (if set)."""
    data = store()
    users = list({row.user_id for row in rows})
    if state == NEW:
        reviewed = db.keys_where(data, users, states=[s for s in STATES if s != NEW])
        rows = [row for row in rows if (row.user_id, row.id) not in reviewed]
    elif state:
        wanted = db.keys_where(data, users, states=[state])
        rows = [row for row in rows if (row.user_id, row.id) in wanted]
    if assignee:
        mine = db.keys_where(data, users, assignee=assignee)
        rows = [row for row in rows if (row.user_id, row.id) in mine]
    return rows


@bp.get("/review")
@token_required
def queue() -> Any:
    """List conversations to review: assigned to me, escalated, flagged and new."""
    from .queue import queue_page

    return queue_page()


def init_app(app: Flask) -> None:
    """Register the review pages and their template helpers."""
    app.register_blueprint(bp)
    app.jinja_env.globals.update(
        may_review=may_review,
    )


__all__ = ["NEW", "bp", "init_app"]
