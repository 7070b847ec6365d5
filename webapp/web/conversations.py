"""Browse, search and export conversations.

Every state of a page lives in its query string, so every view is a URL a
reviewer can send to a colleague; ``?format=json`` gives the same data as JSON.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import parse_qsl, quote, urlencode

from flask import (
    Blueprint,
    Response,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from ..airisk import (
    AIRiskError,
    Conversation,
    ConversationSummary,
    TokenRejected,
)
from ..airisk.models import missing_facts, with_list_facts
from ..airisk.scans import Job, ScanProgress
from ..airisk.service import FileCheck, History
from ..core import exports
from ..core.listing import (
    PAGE_SIZES,
    SORTS,
    Link,
    ListQuery,
    browse_has_next,
    browse_neighbours,
    group_rows,
    page_of,
    search_neighbours,
    sort_rows,
)
from ..core.listing import time_group as _time_group
from ..core.reading import (
    WINDOW,
    find_matches,
    highlight_range,
    highlight_span,
    message_numbers,
    window_start,
)
from . import evidence
from .auth import signed_in_token, token_required
from .scanning import (
    STOP_WAIT,
    json_requested,
    refresh_requested,
    result_or_stream,
    stopped_history,
    stream_scan,
    wait_for,
)
from .service import AgentNames, agent_names, request_agents, service

bp = Blueprint("conversations", __name__)


def _now() -> datetime:
    return datetime.now(UTC)


def _here(**changes: Any) -> str:
    """Return this URL with query ``changes`` (None removes a key).

    Called for every message link of a page, so the URL rule is built once
    per request and the query string is appended by hand (url_for per call
    was a fifth of a long conversation's render time).
    """
    base = g.get("here_base")
    if base is None:
        base = g.here_base = url_for(str(request.endpoint), **(request.view_args or {}))
        # Empty fields only clutter a link that gets shared; an empty from=
        # still means "came from the default list".
        g.here_args = {
            k: v
            for k, v in request.args.items()
            if k not in {"refresh", "format"} and (v or k == "from")
        }
    args: dict[str, str] = dict(g.here_args)
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = str(value)
    return base + "?" + urlencode(args) if args else base


@bp.get("/")
def home() -> ResponseReturnValue:
    """Send the user to the conversation list."""
    return redirect(url_for("conversations.index"))


# -- the list ---------------------------------------------------------------


@bp.get("/conversations")
@token_required
def index() -> ResponseReturnValue:
    """List conversations: one AIRisk page at a time, or search everything."""
    query = ListQuery.from_args(request.args)
    if query.searching:
        return _search(query)
    token = signed_in_token()
    names = agent_names(signed_in_token())
    page = service().page(
        token,
        results=query.size,
        skip=query.skip,
        tag=query.tag,
        agent_id=query.agent or None,
        fresh=refresh_requested(),
    )
    rows = list(page.rows)
    has_next = browse_has_next(len(rows), page.last, query.page)
    if json_requested():
        return jsonify(
            mode="browse",
            query=query.args(),
            page=query.page,
            hasNext=has_next,
            fetchedAt=page.fetched_at.isoformat(),
            conversations=[exports.summary_record(r, names) for r in rows],
        )
    return _render_list(query, rows, has_next, page.fetched_at, names, None, None)


def _render_list(
    query: ListQuery,
    rows: list[ConversationSummary],
    has_next: bool,
    fetched_at: datetime,
    names: AgentNames,
    history: History | None,
    total: int | None,
    group_counts: Counter[str] | None = None,
    files: FileCheck | None = None,
) -> str:
    now = _now()
    grouped = query.sort == "updated"
    return render_template(
        "conversations/index.html",
        query=query,
        now=now,  # one instant for the time groups and every "3 hours ago"
        groups=group_rows(rows, now) if grouped else [("", rows)],
        group_counts=group_counts,
        has_next=has_next,
        names=names,
        agents=request_agents(signed_in_token()),
        page_sizes=PAGE_SIZES,
        sorts=SORTS,
        fetched_at=fetched_at,
        history=history,
        files=files,
        total=total,
        # Paging through what a stopped scan found must not start a new scan.
        keep={"partial": "1"} if history is not None and not history.final else {},
        review_states=_row_states(rows),
        # Row links, built once per page (url_for per row was 12% of it).
        detail_prefix=url_for("conversations.detail", cid="-")[:-1],
        from_suffix="?from=" + quote(urlencode(query.args()), safe=""),
    )


def _row_states(rows: list[ConversationSummary]) -> dict[str, str]:
    from .reviews import row_reviews

    return {cid: review.state for cid, review in row_reviews(rows).items()}


def _matches(
    query: ListQuery, history: History, files: FileCheck | None = None
) -> list[ConversationSummary]:
    """Apply the filters and the sort to a scanned history.

    ``files`` answers "Has attachments" (a conversation not checked is left
    out); without it that filter uses only what is already known.
    """
    rows = [row for row in history.rows if query.matches(row)]
    if query.review or query.assignee:
        from .reviews import filter_rows

        rows = filter_rows(rows, query.review, query.assignee)
    if query.attachments:
        known = (
            files.files
            if files is not None
            else service().known_files(signed_in_token())
        )
        rows = [row for row in rows if known.get(row.id)]
    return sort_rows(rows, query.sort)


def _search(query: ListQuery) -> ResponseReturnValue:
    """Search mode: scan the whole history once, then filter, sort and page."""
    token = signed_in_token()
    upstream = service()
    stop_id = request.args.get("stop", "")
    # "Stop" names the job it stops; it never starts a scan of its own.
    stopped = upstream.stop(token, stop_id) if stop_id else None
    history: History | None
    if request.args.get("partial") == "1" or stop_id:
        history = stopped_history(stopped, stop_id, query.agent, query.tag)
        if history is None:
            return render_template("conversations/scan_none.html", query=query)
    else:
        found = upstream.scan_job(
            token, agent_id=query.agent, tag=query.tag, fresh=refresh_requested()
        )
        served = result_or_stream(
            found,
            wait=json_requested(),
            stream=functools.partial(_stream_scan, query),
        )
        if isinstance(served, Response):
            return served
        history = served
    files = None
    if query.attachments:
        checked = _file_check(query, history, stopped)
        if isinstance(checked, Response):
            return checked
        files = checked
    return _search_results(query, history, files)


def _file_check(
    query: ListQuery, history: History, stopped: Job[Any] | None
) -> FileCheck | Response:
    """Answer "Has attachments" for the candidates, streaming a long check."""
    upstream = service()
    token = signed_in_token()
    candidates = [row for row in history.rows if query.matches(row)]
    if stopped is not None and ":file-check:" in stopped.key:
        if stopped.wait_done(STOP_WAIT) and stopped.result is not None:
            return cast(FileCheck, stopped.result)
    if request.args.get("partial") == "1" or request.args.get("stop"):
        # Never a new check on "Stop": what is known so far, with what a
        # stopped check still finishing its calls has found.
        known = upstream.known_files(token)
        if stopped is not None and ":file-check:" in stopped.key:
            known.update((row.id, True) for row in stopped.rows)
        checked = sum(1 for row in candidates if row.id in known)
        if stopped is not None and ":file-check:" in stopped.key:
            checked = max(checked, stopped.pages)
        return FileCheck(known, checked, len(candidates), checked == len(candidates))
    found = upstream.file_check(token, candidates, fresh=refresh_requested())
    return result_or_stream(
        found,
        wait=json_requested(),
        stream=functools.partial(_stream_scan, query, files=True),
    )


def _search_results(
    query: ListQuery, history: History, files: FileCheck | None = None
) -> ResponseReturnValue:
    names = agent_names(signed_in_token())
    rows = _matches(query, history, files)
    page_rows, has_next = page_of(rows, query.page, query.size)
    if json_requested():
        return jsonify(
            mode="search",
            query=query.args(),
            page=query.page,
            hasNext=has_next,
            total=len(rows),
            scanned=len(history.rows),
            complete=history.complete and (files is None or files.complete),
            fetchedAt=history.fetched_at.isoformat(),
            conversations=[exports.summary_record(r, names) for r in page_rows],
        )
    now = _now()
    counts = Counter(_time_group(row.updated, now) for row in rows)
    return _render_list(
        query,
        page_rows,
        has_next,
        history.fetched_at,
        names,
        history,
        len(rows),
        counts,
        files,
    )


def _stream_scan(
    query: ListQuery,
    first: ScanProgress,
    steps: Iterator[ScanProgress],
    job_id: str,
    *,
    files: bool = False,
) -> Response:
    """Stream a scan's (or, with ``files``, an attachment check's) progress.

    Without JavaScript the browser shows the matches as they come and, at
    the end, a refresh loads the finished, sorted result from the cache.
    """
    names = agent_names(signed_in_token())
    done_url = _here(partial=None, stop=None)
    stop_url = _here(partial=1, stop=job_id)
    # One page, rendered once and cut at its marker: the top goes first,
    # progress and matches stream into the middle, the closing tags last.
    page = render_template(
        "conversations/scan_head.html", query=query, stop_url=stop_url, files=files
    )

    def progress(step: ScanProgress) -> str:
        # A check's rows are candidates that have files: matches already.
        matches = [r for r in step.new_rows if files or query.matches(r)]
        return render_template(
            "conversations/scan_progress.html",
            progress=step,
            matches=matches,
            names=names,
            files=files,
        )

    return stream_scan(
        page,
        first,
        steps,
        progress=progress,
        folder="conversations",
        done_url=done_url,
    )


@bp.get("/conversations/export.<any(csv, json):fmt>")
@token_required
def export_list(fmt: str) -> Response:
    """Export every match of the current filters (not just one page), streamed."""
    query = ListQuery.from_args(request.args)
    token = signed_in_token()
    upstream = service()
    found = upstream.scan_job(
        token, agent_id=query.agent, tag=query.tag, fresh=refresh_requested()
    )
    history = found if isinstance(found, History) else wait_for(found)
    files = None
    if query.attachments:
        candidates = [row for row in history.rows if query.matches(row)]
        checked = upstream.file_check(token, candidates)
        files = checked if isinstance(checked, FileCheck) else wait_for(checked)
    names = agent_names(signed_in_token())
    rows = _matches(query, history, files)
    records = (exports.summary_record(row, names) for row in rows)
    at = evidence.now_iso()
    stamp = at.replace("-", "").replace(":", "").replace("+0000", "Z")
    if fmt == "csv":
        body: Iterator[str] = exports.csv_lines(records)
        mimetype = "text/csv"
    else:
        header = {
            "format": exports.FORMAT,
            "exportedAt": at,
            "exportedBy": evidence.exporter(),
            "query": query.args(),
            "total": len(rows),
            "complete": history.complete and (files is None or files.complete),
        }
        body = exports.json_lines(header, records)
        mimetype = "application/json"
    target = url_for("conversations.index", **cast(dict[str, Any], query.args()))
    return evidence.signed_stream(
        body,
        f"list-{fmt}",
        target,
        mimetype=mimetype,
        filename=f"conversations-{stamp}.{fmt}",
        at=at,
        who=evidence.exporter(),
    )


# -- one conversation --------------------------------------------------------


def _conversation(cid: str) -> Conversation:
    """Return a conversation, with facts it lacks taken from its list row.

    GetConversation may not carry dates, tokens, cost or tags; the list the
    user came from (``from``) did, and is usually still cached.
    """
    token = signed_in_token()
    conversation = service().conversation(token, cid, fresh=refresh_requested())
    # The access trail's "acting as": token mode learns it only from the data.
    g.trail_user = conversation.summary.user_id or None
    if not missing_facts(conversation.summary):
        return conversation
    query = ListQuery.from_args(dict(parse_qsl(request.args.get("from", ""))))
    row = service().listed_row(
        token,
        cid,
        results=query.size,
        skip=query.skip,
        tag=query.tag,
        agent_id=query.agent,
    )
    return with_list_facts(conversation, row) if row else conversation


def _neighbours(cid: str, from_args: str) -> tuple[Link | None, Link | None]:
    """Return link args of the previous and next conversation in the list.

    ``from_args`` is the list's query string. In search mode only a cached
    scan is used (never a new scan just for these links).
    """
    query = ListQuery.from_args(dict(parse_qsl(from_args)))
    token = signed_in_token()
    if query.searching:
        history = service().cached_history(token, agent_id=query.agent, tag=query.tag)
        if history is None:
            return None, None
        ids = [row.id for row in _matches(query, history)]
        return search_neighbours(query, ids, cid)

    def page_ids(number: int) -> list[str]:
        page = service().page(
            token,
            results=query.size,
            skip=(number - 1) * query.size,
            tag=query.tag,
            agent_id=query.agent or None,
        )
        return [row.id for row in page.rows]

    return browse_neighbours(query, cid, page_ids)


@bp.get("/conversations/<cid>")
@token_required
def detail(cid: str) -> ResponseReturnValue:
    """Show one conversation, a window of its messages at a time."""
    # Fetch the conversation first: a bad id is a 404 with no upstream call.
    conversation = _conversation(cid)
    names = agent_names(signed_in_token())
    if json_requested():
        record = exports.conversation_record(conversation, names)
        fetched = conversation.fetched_at
        record["fetchedAt"] = fetched.isoformat() if fetched else None
        return jsonify(record)
    show_system = request.args.get("system") == "1"
    # One number per message everywhere: its position in AIRisk's list,
    # hidden System messages counted.
    numbered = [
        (number, m)
        for number, m in enumerate(conversation.messages, start=1)
        if show_system or not m.is_system
    ]
    messages = [m for _, m in numbered]
    needle = " ".join(request.args.get("find", "").split())[:200]
    found = [
        (numbered[index][0], m, count)
        for index, m, count in find_matches(needle, messages)
    ]
    highlighted, highlight_start = highlight_range(
        request.args.get("highlight", ""), messages
    )
    ids = [m.id for m in messages]
    number = request.args.get("n", "")
    # isascii: "³" and other Unicode digits pass isdigit() but not int().
    if number.isascii() and number.isdigit() and conversation.messages:
        # "Go to message N": redirect to that message's permalink.
        every = conversation.messages
        message = every[min(max(int(number), 1), len(every)) - 1]
        # A hidden System message is shown rather than missed.
        system = "1" if message.is_system or show_system else None
        # The id is upstream data: encode it, a newline would break the header.
        fragment = "#m-" + quote(message.id, safe="")
        return redirect(
            _here(n=None, start=None, at=message.id, system=system) + fragment
        )
    # Which window: the one holding ?at=, else the highlight, else ?start=.
    start = window_start(
        ids,
        request.args.get("at") or highlight_start,
        request.args.get("start", "0"),
        WINDOW,
    )
    # ``from`` (even empty: the default list) says the user came from a list.
    from_args = request.args.get("from", "")
    previous = nxt = None
    if "from" in request.args:
        try:
            previous, nxt = _neighbours(cid, from_args)
        except TokenRejected:
            raise
        except AIRiskError:
            # Previous/next are a convenience: without them the page still
            # shows the conversation the user asked for.
            pass
    from .reviews import panel

    return render_template(
        "conversations/detail.html",
        conversation=conversation,
        summary=conversation.summary,
        review=panel(conversation.summary.user_id, cid),
        window=numbered[start : start + WINDOW],
        visible=len(messages),
        total=len(conversation.messages),
        start=start,
        window_size=WINDOW,
        system_count=sum(1 for m in conversation.messages if m.is_system),
        show_system=show_system,
        names=names,
        needle=needle,
        found=found,
        highlighted=highlighted,
        highlight=request.args.get("highlight", ""),
        previous=previous,
        next=nxt,
        from_args=from_args,
        # Normalised, never the raw pairs: a key such as "endpoint" or
        # "_external" inside from= would reach url_for as its own argument.
        list_args=ListQuery.from_args(dict(parse_qsl(from_args))).args(),
        export_args={
            # Exports look up the same list row for facts the conversation
            # lacks, and mark (or keep to) the highlighted range.
            **({"from": from_args} if "from" in request.args else {}),
            **({"highlight": request.args["highlight"]} if highlighted else {}),
            **({"system": "1"} if show_system else {}),
        },
        fetched_at=conversation.fetched_at,
        here=_here,
    )


def _export_args() -> dict[str, Any]:
    """Return the query values an export understands (no others reach url_for)."""
    names = {"from", "highlight", "scope", "window", "system"}
    return {k: v for k, v in request.args.items() if k in names and v}


@bp.get("/conversations/<cid>/export.<any(md, json, html):fmt>")
@token_required
def export(cid: str, fmt: str) -> ResponseReturnValue:
    """Export one conversation (or its highlighted range) with its evidence header.

    ``scope=range`` exports only the highlighted messages; ``scope=window``
    (print view) only the window starting at ``start``.
    """
    conversation = _conversation(cid)
    names = agent_names(signed_in_token())
    record = exports.conversation_record(conversation, names)
    total = len(record["messages"])
    span = highlight_span(request.args.get("highlight", ""), conversation.messages)
    scope = request.args.get("scope", "")
    if scope == "range" and span:
        record["messages"] = record["messages"][span[0] : span[1] + 1]
    elif scope == "window":
        # "first-last": the numbers of the window on screen, at most WINDOW.
        first, last = message_numbers(request.args.get("window", ""), total)
        last = min(last, first + WINDOW - 1)
        record["messages"] = record["messages"][first - 1 : last]
    at, who = evidence.now_iso(), evidence.exporter()
    ring = evidence.keyring()
    view_args = {
        k: v for k, v in request.args.items() if k in {"highlight", "system"} and v
    }
    evidence_header = exports.Evidence.of(
        record,
        evidence.public_url("conversations.detail", cid=cid, **view_args),
        total=total,
        exported_at=at,
        exported_by=who,
        signing=exports.Signing(
            evidence.deployment(),
            ring.current_id,
            evidence.public_url("evidence.verify"),
            evidence.public_url("evidence.keys"),
        ),
        highlight=(span[0] + 1, span[1] + 1) if span else None,
    )
    filename = f"conversation-{cid}.{fmt}"
    if fmt == "html":
        numbers = [m["number"] for m in record["messages"]]
        body = render_template(
            "conversations/print.html",
            messages=[(n, conversation.messages[n - 1]) for n in numbers],
            summary=conversation.summary,
            evidence=evidence_header,
            names=names,
            download_url=url_for(
                "conversations.export",
                cid=cid,
                fmt="html",
                **_export_args(),
                download="1",
            ),
        )
        download = request.args.get("download") == "1"
        return evidence.signed(
            body,
            "conversation-html",
            cid,
            mimetype="text/html",
            filename=filename if download else None,
            at=at,
            who=who,
        )
    if fmt == "json":
        body = exports.export_json(record, evidence_header)
        mimetype = "application/json"
    else:
        body, mimetype = (
            exports.export_markdown(record, evidence_header),
            "text/markdown",
        )
    return evidence.signed(
        body,
        f"conversation-{fmt}",
        cid,
        mimetype=mimetype,
        filename=filename,
        at=at,
        who=who,
    )
