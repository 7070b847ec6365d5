"""The dashboard against real, misbehaving AIRisk servers on loopback.

``responses`` fakes AIRisk above the socket; these tests put a real TCP server
(:mod:`support.hostile_server`) behind the dashboard and check what a user sees: a
clear page with the right status, in bounded time and memory, and a worker
that serves the next page normally.
"""

from __future__ import annotations

import csv
import io
import json
import time
import tracemalloc
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient
from support import Page, enter_token, make_app, page
from support.exports import csv_data
from support.hostile_server import (
    DATED,
    Handler,
    HostileServer,
    can_bind,
    drip_error_body,
    redirect_to,
    respond,
    status,
)

from webapp.demo_api.server import DemoServer

TOKEN = "hostile-canary-token-5e1f0c"
CONNECT_TIMEOUT = 1
READ_TIMEOUT = 1
DEADLINE = 2
RETRIES = 1
SETTINGS = {
    "AIRISK_CONNECT_TIMEOUT": CONNECT_TIMEOUT,
    "AIRISK_READ_TIMEOUT": READ_TIMEOUT,
    "AIRISK_DEADLINE": DEADLINE,
    "AIRISK_RETRIES": RETRIES,
}
#: Longest any page may take: proves the deadline holds (not a benchmark).
BOUND = DEADLINE + READ_TIMEOUT + 2
#: A page view still running after this is hung: fail instead of waiting.
HANG_LIMIT = BOUND + 5
#: Peak Python memory allowed while a 100 MB or 1 GiB body is refused.
MEMORY_BOUND = 50 * 1024 * 1024

DETAIL = "/conversations/c1"  # GetConversation first
LISTING = "/conversations"  # ListAgents first

TITLES = {
    429: "AIRisk is rate limiting",
    502: "AIRisk answered unexpectedly",
    503: "AIRisk is unavailable",
    504: "AIRisk took too long",
}


@dataclass
class Visit:
    """One page view: the response, how long it took, its peak memory."""

    response: Any
    elapsed: float
    peak: int

    @property
    def status(self) -> int:
        return int(self.response.status_code)

    @property
    def text(self) -> str:
        return page(self.response).text


def _measured_get(client: FlaskClient, path: str) -> Visit:
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    baseline = tracemalloc.get_traced_memory()[0]
    started = time.monotonic()
    try:
        response = client.get(path)
        elapsed = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        if not tracing:
            tracemalloc.stop()
    return Visit(response, elapsed, peak)


@dataclass
class Dashboard:
    """A signed-in dashboard whose page views all run on one worker thread.

    One thread, like one server worker: its AIRisk connection pool carries
    over from one view to the next. A view that hangs fails the test (and
    the upstream is stopped to free the thread) instead of hanging the suite.
    """

    client: FlaskClient
    worker: ThreadPoolExecutor
    upstream: HostileServer | None

    def visit(self, path: str) -> Visit:
        """GET ``path`` on the worker, timing it and tracing allocations."""
        future = self.worker.submit(_measured_get, self.client, path)
        try:
            return future.result(timeout=HANG_LIMIT)
        except FutureTimeout:
            if self.upstream is not None:
                self.upstream.stop()
            pytest.fail(f"GET {path} still running after {HANG_LIMIT} s")


@pytest.fixture
def worker() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dashboard") as pool:
        yield pool


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    with HostileServer() as server:
        yield server


def signed_in(
    tmp_path: Path,
    worker: ThreadPoolExecutor,
    upstream: HostileServer | None,
    base_url: str | None = None,
) -> Dashboard:
    """Return a dashboard on ``upstream`` (or ``base_url``) with a token entered.

    The upstream answers the token check healthily (see ``HostileServer``).
    """
    url = base_url or (upstream.url if upstream is not None else "")
    app = make_app(tmp_path, AIRISK_BASE_URL=url, **SETTINGS)
    client = app.test_client()
    assert enter_token(client, TOKEN).status_code == 303
    return Dashboard(client, worker, upstream)


def assert_error_page(seen: Visit, expected: int) -> None:
    """Check what the user sees on a failed page: status, title, no internals."""
    body = seen.response.get_data(as_text=True)
    assert seen.status == expected, seen.text
    assert TITLES[expected] in seen.text
    assert "Try again" in seen.text
    for leak in ("Traceback", 'File "', "Error 500", TOKEN):
        assert leak not in body
    assert seen.elapsed < BOUND


# -- the failure matrix -------------------------------------------------------------

CASES: list[tuple[str, str | Handler, str, int]] = [
    # (id, server behaviour, page, expected status)
    ("never-answers", "silent", DETAIL, 504),
    ("drip-body", "drip_body", DETAIL, 504),
    ("drip-body-chunked", "drip_chunked", DETAIL, 504),
    ("drip-chunk-size-line", "drip_chunk_size", DETAIL, 504),
    ("drip-headers", "drip_headers", DETAIL, 504),
    ("drip-503-body", drip_error_body(503), DETAIL, 504),
    ("drip-over-cap-length", "drip_body_over_cap", DETAIL, 502),
    ("html-login-page", "html_login", DETAIL, 502),
    ("truncated-json", "truncated_json", DETAIL, 502),
    ("array-for-object", "wrong_shape", DETAIL, 502),
    ("object-for-array", "wrong_shape", LISTING, 502),
    ("100mb-sized", "huge_body", DETAIL, 502),
    ("100mb-unsized", "huge_body_unsized", DETAIL, 502),
    ("100mb-chunked", "huge_body_chunked", DETAIL, 502),
    ("gzip-bomb", "gzip_bomb", DETAIL, 502),
    ("reset-mid-body", "reset_mid_body", DETAIL, 502),
    ("http-500", status(500), DETAIL, 502),
    ("http-502", status(502), DETAIL, 502),
    ("http-503", status(503), DETAIL, 503),
    ("http-504", status(504), DETAIL, 504),
    ("http-503-retry-after", status(503, "999999"), DETAIL, 503),
    ("http-429", status(429), LISTING, 429),
    (
        "content-length-huge-digits",
        respond(200, "[]", {"Content-Length": "9" * 5000}),
        LISTING,
        502,
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "path", "expected"),
    [
        pytest.param(mode, path, expected, id=name)
        for name, mode, path, expected in CASES
    ],
)
def test_misbehaving_upstream_gets_a_clear_page_in_time(
    tmp_path: Path,
    hostile: HostileServer,
    worker: ThreadPoolExecutor,
    mode: str | Handler,
    path: str,
    expected: int,
) -> None:
    dashboard = signed_in(tmp_path, worker, hostile)
    hostile.mode = mode

    seen = dashboard.visit(path)

    print(f"{path} {seen.status} in {seen.elapsed:.2f}s peak {seen.peak >> 20} MB")
    assert_error_page(seen, expected)
    # 100 MB bodies and the 1 GiB bomb are read in pieces up to the size cap.
    assert seen.peak < MEMORY_BOUND

    # The same worker (same thread, same connection pool) serves the next page.
    hostile.mode = "healthy"
    again = dashboard.visit(path)
    assert again.status == 200, again.text
    assert again.elapsed < DEADLINE


def test_connection_refused_is_unavailable(
    tmp_path: Path, worker: ThreadPoolExecutor
) -> None:
    # Signed in while AIRisk answered (a token is accepted only then); the
    # listener is gone afterwards, so the port refuses connections.
    with HostileServer() as server:
        dashboard = signed_in(tmp_path, worker, server)
    dashboard.upstream = None

    seen = dashboard.visit(DETAIL)

    assert_error_page(seen, 503)
    assert "could not reach" in seen.text


# -- retries --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "retry_after", "expected", "attempts"),
    [
        (500, None, 502, 1),
        (502, None, 502, 1 + RETRIES),
        (503, None, 503, 1 + RETRIES),
        (504, None, 504, 1 + RETRIES),
        (503, "999999", 503, 1 + RETRIES),
        (503, "3", 503, 1 + RETRIES),
        (429, "999999", 429, 1),
    ],
)
def test_retries_are_counted_at_the_server(
    tmp_path: Path,
    hostile: HostileServer,
    worker: ThreadPoolExecutor,
    code: int,
    retry_after: str | None,
    expected: int,
    attempts: int,
) -> None:
    dashboard = signed_in(tmp_path, worker, hostile)
    hostile.mode = status(code, retry_after)

    seen = dashboard.visit(DETAIL)

    assert seen.status == expected
    assert len(hostile.requests_to("/api/Chat/GetConversation/")) == attempts
    # No attempt waited for Retry-After (or for anything else).
    assert seen.elapsed < 1.5


#: Stands for an HTTP-date two minutes after the test starts.
IN_TWO_MINUTES = "<in two minutes>"


@pytest.mark.parametrize(
    ("retry_after", "relayed"),
    [
        ("3", "3"),
        ("999999", str(24 * 3600)),
        (IN_TWO_MINUTES, "120"),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),  # already past
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("\xb3", None),  # Latin-1 superscript three: isdigit() but not int()
        ("9" * 5000, str(24 * 3600)),  # past int()'s 4300-digit limit
        (None, None),
    ],
    ids=[
        "delta",
        "huge",
        "http-date",
        "past-date",
        "garbage",
        "negative",
        "fraction",
        "superscript",
        "5000-digits",
        "missing",
    ],
)
def test_rate_limit_page_for_every_retry_after(
    tmp_path: Path,
    hostile: HostileServer,
    worker: ThreadPoolExecutor,
    retry_after: str | None,
    relayed: str | None,
) -> None:
    dashboard = signed_in(tmp_path, worker, hostile)
    if retry_after == IN_TWO_MINUTES:
        later = datetime.now(UTC) + timedelta(seconds=120)
        retry_after = format_datetime(later, usegmt=True)
    hostile.mode = status(429, retry_after)

    seen = dashboard.visit(LISTING)

    assert_error_page(seen, 429)
    assert "slow down" in seen.text
    assert len(hostile.requests_to("/api/Chat/ListAgents")) == 1
    assert seen.elapsed < 1.5
    got = seen.response.headers.get("Retry-After")
    if relayed is None:
        assert got is None
    else:
        # An HTTP-date becomes seconds from now: allow for the clock moving.
        assert got is not None and abs(int(got) - int(relayed)) <= 2


def test_garbage_content_length_is_not_a_crash(
    tmp_path: Path, hostile: HostileServer, worker: ThreadPoolExecutor
) -> None:
    # "\xb3" passes str.isdigit() but not int(); http.client and urllib3
    # ignore it, and so must the size check (the body ends at close).
    dashboard = signed_in(tmp_path, worker, hostile)
    hostile.mode = respond(200, "[]", {"Content-Length": "\xb3"})

    seen = dashboard.visit(LISTING)

    assert seen.status == 200


# -- redirects ----------------------------------------------------------------------


def test_redirect_to_another_host_is_not_followed(
    tmp_path: Path, hostile: HostileServer, worker: ThreadPoolExecutor
) -> None:
    other_host = "127.0.0.2"
    with ExitStack() as stack:
        # A listener on the redirect target proves nothing ever connects there;
        # without a second loopback address the count at our server must do.
        thief = (
            stack.enter_context(HostileServer(host=other_host))
            if can_bind(other_host)
            else None
        )
        dashboard = signed_in(tmp_path, worker, hostile)
        port = thief.port if thief is not None else 9
        hostile.mode = redirect_to(f"http://{other_host}:{port}/steal")

        seen = dashboard.visit(DETAIL)

        assert_error_page(seen, 502)
        assert len(hostile.requests_to("/api/Chat/GetConversation/")) == 1
        if thief is not None:
            assert thief.connections == 0 and thief.requests == []


# -- strange but valid JSON -----------------------------------------------------------


@pytest.mark.parametrize("path", [DETAIL, LISTING])
def test_lone_surrogates_and_nan_render(
    tmp_path: Path, hostile: HostileServer, worker: ThreadPoolExecutor, path: str
) -> None:
    dashboard = signed_in(tmp_path, worker, hostile)
    hostile.mode = "surrogates"

    seen = dashboard.visit(path)

    assert seen.status == 200, seen.text
    assert "Lone \ufffd title" in seen.text
    assert "NaN" not in seen.text and "Infinity" not in seen.text
    if path == DETAIL:
        assert "broken \ufffd text" in seen.text


@pytest.mark.parametrize(
    "path",
    [
        "/conversations",
        "/conversations?q=dated",
        "/conversations?sort=created",
        "/conversations?from=2026-01-01",
        "/conversations/d0",
        "/conversations/d1?format=json",
        "/conversations/d0/export.md",
        "/conversations/d1/export.json",
        "/conversations/d2/export.html",
        "/insights",
        "/insights?days=90",
        "/insights.json",
        "/insights/conversations.csv",
        "/insights/heatmap.csv",
    ],
)
def test_out_of_range_dates_are_not_reported(
    tmp_path: Path, hostile: HostileServer, worker: ThreadPoolExecutor, path: str
) -> None:
    dashboard = signed_in(tmp_path, worker, hostile)
    hostile.mode = "out_of_range_dates"

    seen = dashboard.visit(path)

    assert seen.status == 200, seen.text
    body = seen.response.get_data(as_text=True)
    assert "0001-01-01" not in body and "9999-12-31" not in body
    if path == "/conversations/d0":
        # Unusable dates are missing facts: the detail page says so.
        assert "not reported" in seen.text


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_list_exports_with_out_of_range_dates_are_complete(
    tmp_path: Path, hostile: HostileServer, worker: ThreadPoolExecutor, fmt: str
) -> None:
    dashboard = signed_in(tmp_path, worker, hostile)
    hostile.mode = "out_of_range_dates"

    def download() -> tuple[int, str]:
        # Read the stream on the worker: it runs in the request's context.
        response = dashboard.client.get(f"/conversations/export.{fmt}")
        return response.status_code, response.get_data(as_text=True)

    status_code, body = worker.submit(download).result(timeout=HANG_LIMIT)

    assert status_code == 200
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(csv_data(body))))
    else:
        rows = json.loads(body)["conversations"]
    assert sorted(row["id"] for row in rows) == sorted(c["id"] for c in DATED)
    undated = [row for row in rows if row["id"] != "d9"]
    assert all(not row["created"] and not row["updated"] for row in undated)


# -- through a real WSGI server -----------------------------------------------------


@pytest.mark.slow
def test_served_dashboard_survives_a_dripping_upstream(
    tmp_path: Path, hostile: HostileServer
) -> None:
    app = make_app(tmp_path, AIRISK_BASE_URL=hostile.url, **SETTINGS)
    with DemoServer(app) as dashboard, requests.Session() as browser:
        browser.trust_env = False
        form = browser.get(dashboard.url + "/token", timeout=10)
        csrf = Page(form.text).find_all("input", name="csrf_token")[0]["value"]
        signed = browser.post(
            dashboard.url + "/token",
            data={"csrf_token": csrf or "", "token": TOKEN},
            timeout=10,
        )
        assert signed.status_code == 200 and signed.url.endswith(LISTING)

        for mode, expected in [("drip_headers", 504), ("gzip_bomb", 502)]:
            hostile.mode = mode
            started = time.monotonic()
            failed = browser.get(dashboard.url + DETAIL, timeout=HANG_LIMIT)
            assert time.monotonic() - started < BOUND
            assert failed.status_code == expected
            assert TITLES[expected] in Page(failed.text).text

        hostile.mode = "healthy"
        assert browser.get(dashboard.url + DETAIL, timeout=10).status_code == 200
