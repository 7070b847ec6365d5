"""The access trail, as pages write and auditors read it.

Every request that shows conversation data (list, search, conversation,
exports, insights, their JSON twins), every switch of the AIRisk user being
viewed, and every sign-in and sign-out leaves one trail row, written in one
transaction after the view ran and before a byte of its answer is sent. If
the database does not answer, the answer is a 503 page instead of the data:
a view that cannot be recorded is not shown. Auditors read the trail at
``/audit`` (filters, CSV and JSON export).
"""

from __future__ import annotations

import csv
import dataclasses
import importlib
import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, cast

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    make_response,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from werkzeug.exceptions import Forbidden

from ..identity import AUDITOR, MEMBER, REVIEWER
from ..store import Store, StoreUnavailable, trail
from .auth import current_token, team_mode

log = logging.getLogger(__name__)

bp = Blueprint("audit", __name__)

#: Endpoint -> the trail action of a request that showed its data.
VIEWS = {
    "conversations.index": "list.view",
    "conversations.detail": "conversation.view",
    "conversations.export_list": "list.export",
    "conversations.export": "conversation.export",
    "insights.index": "insights.view",
    "insights.data": "insights.view",
    "insights.chart_csv": "insights.export",
    "reviews.queue": "queue.view",
    "audit.index": "audit.view",
    "audit.export": "audit.export",
}
#: Rows per page of /audit.
PAGE = 100
#: Most rows one export of the trail holds.
MAX_EXPORT = 100_000


def store() -> Store:
    """Return the app's database."""
    return cast(Store, current_app.extensions["store"])


def enabled() -> bool:
    """Return whether the trail is kept (AUDIT_TRAIL)."""
    return bool(current_app.config["AUDIT_TRAIL"])


def _team_state() -> Any:
    from ..identity.state import load_state

    return load_state()


def who() -> tuple[str, str | None] | None:
    """Return (subject, e-mail) of the person behind this request, if signed in.

    Team mode: the SSO subject and e-mail. Token mode knows no person, only a
    token: ``token:`` and its last four characters (never more of it).
    """
    if team_mode():
        state = _team_state()
        return (state.subject, state.email or None) if state else None
    token = current_token()
    if not token:
        return None
    # Four characters of a very short token would be much of it.
    return "token:" + (token[-4:] if len(token) >= 8 else "?"), None


def roles() -> frozenset[str]:
    """Return the roles of the person behind this request."""
    if team_mode():
        state = _team_state()
        return frozenset(state.roles) if state else frozenset()
    # Whoever holds a token reviews what it shows; token mode has no auditors.
    return frozenset({MEMBER, REVIEWER}) if current_token() else frozenset()


def actor_event(action: str, **fields: Any) -> trail.Event | None:
    """Return a trail event of this request's person (None if not signed in)."""
    person = who()
    if person is None:
        return None
    fields.setdefault("acting_as", g.get("viewing_uid") or g.get("trail_user"))
    return trail.Event(
        subject=person[0],
        email=person[1],
        action=action,
        client=request.remote_addr,
        request_id=g.get("request_id"),
        **fields,
    )


def record(action: str, **fields: Any) -> None:
    """Queue a trail row for this request (written once, after the view)."""
    event = actor_event(action, **fields)
    if event is not None:
        g.setdefault("trail_events", []).append(event)


def _target() -> str | None:
    args = {k: v for k, v in request.args.items(multi=True) if k != "refresh"}
    if not args:
        return None
    return "&".join(f"{k}={v}" for k, v in args.items())


def _before() -> None:
    endpoint = request.endpoint or ""
    if endpoint == "auth.logout" or endpoint == "sso.signed_out":
        # The view ends the session: remember who it was first.
        g.trail_leaving = who()
    elif team_mode() and endpoint in VIEWS:
        state = _team_state()
        g.trail_viewing_before = state.viewing if state else None


def _after(response: Response) -> Response:
    if not enabled():
        return response
    endpoint = request.endpoint or ""
    action = VIEWS.get(endpoint)
    if action and response.status_code == 200:
        if endpoint == "conversations.index" and "q" in request.args:
            action = "search.view"
        uid = g.get("viewing_uid")
        if uid and "trail_viewing_before" in g and uid != g.trail_viewing_before:
            record("user.switch", acting_as=uid, target=uid)
        cid = (request.view_args or {}).get("cid")
        record(action, conversation=cid, target=_target())
    elif endpoint in {"auth.token", "sso.callback"} and response.status_code in {
        302,
        303,
    }:
        record("sign-in")
    elif endpoint == "auth.logout" and g.get("trail_leaving"):
        subject, email = g.trail_leaving
        g.setdefault("trail_events", []).append(
            trail.Event(
                subject=subject,
                email=email,
                action="sign-out",
                client=request.remote_addr,
                request_id=g.get("request_id"),
            )
        )
    signatures = g.pop("trail_signatures", [])
    if signatures:
        events = g.get("trail_events", [])
        if len(events) == 1:
            # The request's own row names the signature: still one row.
            only = events[0]
            target = "; ".join(filter(None, [only.target, *signatures]))
            g.trail_events = [dataclasses.replace(only, target=target)]
        else:
            for signature in signatures:
                record("export.signed", target=signature)
    g.trail_written = True
    events = g.pop("trail_events", [])
    if not events:
        return response
    try:
        trail.append(store(), events)
    except StoreUnavailable as exc:
        log.error("Access trail not written, answer withheld: %s", exc)
        return make_response(database_down())
    return response


def record_export_signature(digest: str, kind: str, who: str, target: str) -> None:
    """Record the digest a signed export carries (the evidence export hook).

    Called inside the view for an export built at once: the digest joins the
    export's trail row. A streamed export is signed when its last byte is
    written, after that row: then it gets an ``export.signed`` row of its own.
    """
    if not enabled():
        return
    signature = f"{kind} sha256:{digest}"
    if not g.get("trail_written"):
        g.setdefault("trail_signatures", []).append(signature)
        return
    event = actor_event(
        "export.signed",
        target=signature,
        conversation=(request.view_args or {}).get("cid"),
    )
    if event is None:
        return
    try:
        trail.append(store(), [event])
    except StoreUnavailable as exc:
        # The body has been sent; the log is all that is left to tell.
        log.error("Access trail: signature of a streamed export not written: %s", exc)


def _connect_evidence(app: Flask) -> None:
    """Point the signed exports' hook at the trail, when they are installed."""
    for name in ("webapp.web.evidence", "webapp.evidence"):
        try:
            evidence = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        evidence.set_export_hook(app, record_export_signature)
        return


def database_down() -> Any:
    """Return the 503 page of a database that does not answer."""
    from .errors import render_error

    return render_error(
        503,
        "The review database does not answer",
        "The dashboard records who views what and keeps review states in its "
        "database, and that database does not answer right now, so this page "
        "cannot be shown. Try again in a minute; an administrator can find the "
        "reason in the dashboard's log.",
    )


def handle_store_unavailable(error: StoreUnavailable) -> Any:
    """Show the 503 page (a view needed the database)."""
    log.error("Database unavailable: %s", error)
    g.pop("trail_events", None)
    return database_down()


def init_app(app: Flask) -> None:
    """Open the database, record the trail, register /audit."""
    from ..store import database_url

    app.extensions["store"] = Store(
        database_url(app.config["DATABASE_URL"], app.instance_path)
    )
    app.before_request(_before)
    app.after_request(_after)
    app.register_error_handler(StoreUnavailable, handle_store_unavailable)
    app.register_blueprint(bp)
    _connect_evidence(app)


# -- the auditors' pages ------------------------------------------------------


def _auditor_required() -> None:
    if AUDITOR not in roles():
        raise Forbidden("Only auditors can read the access trail.")


def _date(raw: str | None) -> datetime | None:
    try:
        return datetime.strptime((raw or "")[:10], "%Y-%m-%d")
    except ValueError:
        return None


def _filter() -> tuple[trail.TrailFilter, dict[str, str]]:
    args = {
        key: request.args.get(key, "").strip()[:200]
        for key in ("person", "user", "conversation", "action", "since", "until")
    }
    until = _date(args["until"])
    wanted = trail.TrailFilter(
        subject=args["person"] or None,
        acting_as=args["user"] or None,
        conversation=args["conversation"] or None,
        action=args["action"] or None,
        since=_date(args["since"]),
        # "until" is inclusive: the whole day.
        until=until + timedelta(days=1) if until else None,
    )
    return wanted, {k: v for k, v in args.items() if v}


@bp.get("/audit")
def index() -> Any:
    """Show the access trail, newest first, with filters (auditors only)."""
    _auditor_required()
    wanted, args = _filter()
    before = request.args.get("before", "")
    start = int(before) if before.isascii() and before.isdigit() else None
    rows = trail.search(store(), wanted, limit=PAGE + 1, before=start)
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return render_template(
        "audit/index.html",
        rows=rows,
        args=args,
        older=url_for("audit.index", **cast(dict[str, Any], args), before=rows[-1].seq)
        if more and rows
        else None,
        actions=sorted(set(VIEWS.values()) | _OTHER_ACTIONS),
    )


_OTHER_ACTIONS = {
    "search.view",
    "user.switch",
    "review.change",
    "note.add",
    "note.edit",
    "sign-in",
    "sign-out",
    "audit.prune",
}


def _plain(row: Any) -> dict[str, Any]:
    values = {name: getattr(row, name) for name in trail.COLUMNS}
    values["at"] = row.at.isoformat(timespec="microseconds") + "Z"
    return values


@bp.get("/audit/export.<any(csv, json):fmt>")
def export(fmt: str) -> Response:
    """Export the filtered trail as CSV or JSON (auditors only)."""
    _auditor_required()
    wanted, _ = _filter()
    rows = trail.search(store(), wanted, limit=MAX_EXPORT)
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")

    def lines() -> Iterator[str]:
        if fmt == "csv":
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(trail.COLUMNS)
            for row in rows:
                values = _plain(row)
                # A leading = + - @ would be a formula in a spreadsheet.
                writer.writerow(
                    "'" + v if isinstance(v, str) and v[:1] in "=+-@\t\r" else v
                    for v in values.values()
                )
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
            if not rows:
                yield buffer.getvalue()
        else:
            yield "[\n"
            for number, row in enumerate(rows):
                yield ("," if number else "") + json.dumps(_plain(row)) + "\n"
            yield "]\n"

    return Response(
        stream_with_context(lines()),
        mimetype="text/csv" if fmt == "csv" else "application/json",
        headers={
            "Content-Disposition": f'attachment; filename="access-trail-{stamp}.{fmt}"'
        },
    )


def seen_by(conversation: str) -> list[Any] | None:
    """Return who has seen ``conversation`` for an auditor, else None."""
    if AUDITOR not in roles() or not enabled():
        return None
    return trail.seen_by(store(), conversation)
