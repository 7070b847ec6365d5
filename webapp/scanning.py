"""Stream a whole-history scan's progress as one HTML page, without JavaScript.

Shared by the conversation search and the insights page: the top of the page
goes first, a progress fragment after each AIRisk page, then a tail (which
ends with a ``<meta http-equiv="refresh">`` to the finished page, served from
the cache) or an error, then the closing tags.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

from flask import Response, render_template, request, stream_with_context

from .airisk import AIRiskError, TokenRejected
from .airisk.service import SCAN_PAGE_SIZE, ScanProgress
from .auth import sign_out_store_only

#: Where a scan page is cut: the top before it, the closing tags after it.
MARKER = "<!-- stream -->"


def refresh_requested() -> bool:
    """Return whether the user asked to bypass every cache (``?refresh=1``)."""
    return request.args.get("refresh") == "1"


def first_step(scan: Iterator[ScanProgress]) -> ScanProgress:
    """Read a scan's first step, and a second one after a short first page.

    Only an empty page ends a history, so a history shorter than one page
    takes two calls: read both before choosing between a finished page and a
    streamed one, so small histories never flash a progress page.

    :raises AIRiskError: a subclass for each kind of failure.
    """
    first = next(scan)
    if first.history is None and first.conversations < SCAN_PAGE_SIZE:
        second = next(scan)
        first = dataclasses.replace(second, new_rows=first.new_rows + second.new_rows)
    return first


def stream_scan(
    page: str,
    first: ScanProgress,
    scan: Iterator[ScanProgress],
    *,
    progress: Callable[[ScanProgress], str],
    tail: Callable[[ScanProgress], str],
    error_template: str,
) -> Response:
    """Stream ``page`` with each step of ``scan`` rendered at its marker.

    ``first`` was read before calling, so a rejected token or an unreachable
    AIRisk still got its proper page or redirect; a failure after that is
    shown inline with ``error_template`` (``rejected=True`` or ``error=``).
    """
    top, _, bottom = page.partition(MARKER)

    def generate() -> Iterator[str]:
        yield top
        step = first
        try:
            while True:
                yield progress(step)
                if step.history is not None:
                    break
                step = next(scan)
        except TokenRejected:
            # Headers are sent: no redirect now, but the token must go.
            sign_out_store_only()
            yield render_template(error_template, rejected=True)
        except AIRiskError as error:
            yield render_template(error_template, error=error)
        else:
            yield tail(step)
        yield bottom

    return Response(
        stream_with_context(generate()),
        mimetype="text/html",
        # Tell proxies not to buffer, so progress reaches the browser.
        headers={"X-Accel-Buffering": "no"},
    )
