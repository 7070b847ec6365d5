"""Follow a whole-history job from a request: stream its progress, or wait.

Shared by the conversation search, the "Has attachments" check and the
insights page. A streamed page sends its top first, a progress fragment after
each AIRisk page (and at least once a second while AIRisk is slow), then a
tail (which ends with a ``<meta http-equiv="refresh">`` to the finished page,
served from the cache) or an error, then the closing tags. Nothing needs
JavaScript. A request that waits without streaming (JSON, exports) stops
following when its client hangs up, and a job nobody follows stops.
"""

from __future__ import annotations

import dataclasses
import select
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from flask import Response, render_template, request, stream_with_context

from ..airisk import AIRiskError, TokenRejected
from ..airisk.scans import ClientGone, Job, ScanProgress
from ..airisk.service import SCAN_PAGE_SIZE, History
from .auth import sign_out_store_only, signed_in_token
from .service import service

R = TypeVar("R")
#: Streams a job's progress from its first step: (first, steps, job id) -> page.
Streamer = Callable[[ScanProgress, Iterator[ScanProgress], str], Response]

#: Where a scan page is cut: the top before it, the closing tags after it.
MARKER = "<!-- stream -->"

#: Seconds a "stop" waits for the stopped job to finish its AIRisk call
#: before it shows what the job had found until then.
STOP_WAIT = 0.5


def json_requested() -> bool:
    """Return whether the page was asked for as JSON (``?format=json``)."""
    return request.args.get("format") == "json"


def refresh_requested() -> bool:
    """Return whether the user asked to bypass every cache (``?refresh=1``)."""
    return request.args.get("refresh") == "1"


def client_gone() -> Callable[[], bool]:
    """Return a check of whether this request's client has hung up.

    The WSGI servers the dashboard runs under (werkzeug, gunicorn) put the
    connection in the environ: a peer that closed it makes the socket
    readable with nothing to read. Behind a proxy, the proxy closes its
    connection when its client goes.
    """
    environ = request.environ
    sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
    if not isinstance(sock, socket.socket):
        return lambda: False

    def gone() -> bool:
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
        except ValueError:
            return False  # a TLS socket cannot peek: keep going
        except OSError:
            return True

    return gone


def first_step(steps: Iterator[ScanProgress]) -> ScanProgress:
    """Read a job's steps until it read a page (or ended); merge their rows.

    Only an empty page ends a history, so a history shorter than one page
    takes two calls: both are read before choosing between a finished page
    and a streamed one, so small histories never flash a progress page. A
    rejected token or an unreachable AIRisk raises here, before anything is
    sent, so it still gets its proper page or redirect.

    :raises AIRiskError: a subclass for each kind of failure.
    """
    rows: tuple[Any, ...] = ()
    for step in steps:
        rows += step.new_rows
        if step.history is not None or step.pages > 1:
            break
        if step.pages == 1 and step.conversations >= SCAN_PAGE_SIZE:
            break
    return dataclasses.replace(step, new_rows=rows)


def stopped_history(
    stopped: Job[Any] | None, stop_id: str, agent_id: str, tag: str = ""
) -> History | None:
    """Return what the stopped scan found (marked incomplete), never scanning.

    ``stopped`` is the job if it ran in this process; if it ran in another,
    that process leaves its partial history in the cache within a call's
    time. Without a job, a cached scan (complete or not) or None.
    """
    if stopped is not None and ":history:" in stopped.key:
        if stopped.wait_done(STOP_WAIT) and stopped.result is not None:
            return cast(History, stopped.result)
        # Still waiting on AIRisk: show what it found up to now.
        now = datetime.now(UTC)
        return History(tuple(stopped.rows), stopped.pages, False, now, False)
    upstream = service()
    token = signed_in_token()
    deadline = time.monotonic() + (STOP_WAIT * 2 if stop_id and not stopped else 0)
    while True:
        history = upstream.cached_history(token, agent_id=agent_id, tag=tag)
        if history is not None and (not stop_id or history.scan_id == stop_id):
            return history
        if time.monotonic() >= deadline:
            return history
        time.sleep(0.05)


def wait_for(job: Job[R]) -> R:
    """Return ``job``'s result once done, following it while the client waits.

    :raises ClientGone: when the client hung up (the job stops if it was the
        last follower).
    :raises AIRiskError: a subclass for each kind of failure.
    """
    return cast(R, job.wait(client_gone()))


def result_or_stream(
    found: R | Job[R], *, wait: bool, stream: Streamer
) -> R | Response:
    """Return a cached or finished result, else a page streaming the job.

    With ``wait`` (JSON, exports) the request follows the job to its end
    instead. A job done within its first step (a short history, a page of
    candidates) is served without a progress page.

    :raises AIRiskError: a subclass for each kind of failure.
    """
    if not isinstance(found, Job):
        return found
    if wait:
        return wait_for(found)
    steps = found.follow()
    first = first_step(steps)
    if first.history is not None:
        return cast(R, first.history)
    return stream(first, steps, found.id)


def stream_scan(
    page: str,
    first: ScanProgress,
    steps: Iterator[ScanProgress],
    *,
    progress: Callable[[ScanProgress], str],
    folder: str,
    done_url: str,
) -> Response:
    """Stream ``page`` with each step of ``steps`` rendered at its marker.

    ``first`` was read before calling, so a rejected token or an unreachable
    AIRisk still got its proper page or redirect; a failure after that is
    shown inline with ``<folder>/scan_error.html`` (``rejected=True`` or
    ``error=``). A finished scan ends with ``<folder>/scan_tail.html``, which
    sends the browser to ``done_url``.
    When the client hangs up, writing fails and closing this generator
    closes ``steps``, which stops a job nobody else follows.
    """
    top, _, bottom = page.partition(MARKER)
    gone = client_gone()
    error_template = f"{folder}/scan_error.html"

    def generate() -> Iterator[str]:
        yield top
        step = first
        try:
            while True:
                yield progress(step)
                if step.history is not None:
                    break
                if gone():
                    raise ClientGone
                step = next(steps)
        except TokenRejected:
            # Headers are sent: no redirect now, but the token must go.
            sign_out_store_only()
            yield render_template(error_template, rejected=True)
        except AIRiskError as error:
            yield render_template(error_template, error=error)
        except ClientGone:
            return
        else:
            yield render_template(f"{folder}/scan_tail.html", done_url=done_url)
        finally:
            close = getattr(steps, "close", None)
            if close is not None:
                close()
        yield bottom

    return Response(
        stream_with_context(generate()),
        mimetype="text/html",
        # Tell proxies not to buffer, so progress reaches the browser.
        headers={"X-Accel-Buffering": "no"},
    )
