"""Whole-history scans against the real demo API on loopback.

The end of a history, scans shared between requests, scans that stop when
nobody waits for them, and the "Has attachments" check. A WSGI wrapper
counts the calls that reach the demo API.
"""

from __future__ import annotations

import csv
import io
import re
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from support import ALICE, Browser, Counting, Page, make_app, signed_in_reviewer
from support.exports import csv_data
from support.processes import SECRET, Dashboard, RedisServer, environment, on, sign_in

from webapp.airisk.cache import keyed_name
from webapp.demo_api import create_demo_app
from webapp.demo_api.server import DemoServer
from webapp.sessions import derive_key

#: Rows the capped demo API serves per page, whatever is asked.
CAP = 50


@pytest.fixture(scope="module")
def capped() -> Iterator[tuple[DemoServer, Counting, Any]]:
    """The demo API serving at most ``CAP`` rows per page, calls counted."""
    app = create_demo_app(max_results=CAP)
    counting = Counting(app)
    with DemoServer(counting) as server:
        yield server, counting, app.extensions["airisk_demo"]


def alice_ids(data: Any) -> list[str]:
    return [s["id"] for s in data.summaries[data.user_id_for(ALICE)]]


# -- the end of a history ----------------------------------------------------------


def test_a_capped_upstream_is_scanned_to_its_empty_page(
    capped: Any, tmp_path: Path
) -> None:
    _, counting, data = capped
    everything = alice_ids(data)
    assert len(everything) > 2 * CAP and len(everything) % CAP
    with signed_in_reviewer(capped, tmp_path) as reviewer:
        search = reviewer.get("/conversations?sort=created&format=json").json()
        assert search["complete"] is True
        assert search["scanned"] == search["total"] == len(everything)
        # The scan asked past the last short page and stopped on an empty one.
        assert counting.calls[-1].endswith(f"skip={len(everything)}&metadatasearch=")
        insights = reviewer.get("/insights.json?days=all").json()
        assert insights["complete"] is True and insights["scanned"] == len(everything)
        exported = reviewer.get("/conversations/export.csv?sort=created").text
        rows = list(csv.DictReader(io.StringIO(csv_data(exported))))
        assert sorted(row["id"] for row in rows) == sorted(everything)


def test_the_list_pages_through_a_capped_upstream(capped: Any, tmp_path: Path) -> None:
    _, _, data = capped
    everything = alice_ids(data)
    seen: list[str] = []
    with signed_in_reviewer(capped, tmp_path) as reviewer:
        page = 1
        while True:
            listing = reviewer.get(f"/conversations?size=100&page={page}&format=json")
            body = listing.json()
            seen += [c["id"] for c in body["conversations"]]
            if not body["hasNext"]:
                break
            assert len(body["conversations"]) == 100, "a full page before the end"
            page += 1
    assert seen == everything


# -- scans shared, stopped and bounded ----------------------------------------------

LARGE = "demo-large"


@pytest.fixture(scope="module")
def slow() -> Iterator[tuple[DemoServer, Counting, Any]]:
    """The demo API answering each call after 20 ms, calls counted."""
    app = create_demo_app(latency_ms=20)
    counting = Counting(app)
    with DemoServer(counting) as server:
        yield server, counting, app.extensions["airisk_demo"]


@contextmanager
def dashboard(
    upstream: Any, tmp_path: Path, token: str, **settings: Any
) -> Iterator[tuple[Browser, Flask]]:
    """Serve a dashboard on ``upstream``, signed in with ``token``."""
    server, counting, _ = upstream
    app = make_app(tmp_path, AIRISK_BASE_URL=server.url, **settings)
    with DemoServer(app) as site:
        browser = Browser(site.url)
        browser.enter_token(token, browser.get("/token"))
        counting.calls.clear()
        yield browser, app
        wait_until_idle(app)


def wait_until_idle(app: Flask) -> None:
    """Wait (bounded) until the dashboard runs no scan."""
    jobs = app.extensions["airisk"].jobs
    deadline = time.monotonic() + 20
    while jobs.running() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not jobs.running(), "a scan kept running"


def wait_for_calls(counting: Counting, fragment: str, count: int) -> None:
    deadline = time.monotonic() + 20
    while counting.count(fragment) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert counting.count(fragment) >= count


def test_identical_concurrent_searches_share_one_scan(
    slow: Any, tmp_path: Path
) -> None:
    _, counting, data = slow
    with dashboard(slow, tmp_path, ALICE) as (browser, _):
        one_scan = -(-len(alice_ids(data)) // 100) + 1

        def search(_: int) -> int:
            path = "/conversations?q=policy&format=json"
            return int(browser.get(path).json()["complete"])

        with ThreadPoolExecutor(16) as pool:
            assert sum(pool.map(search, range(16))) == 16
        # 16 scans would be 16 times the calls; one shared scan is one.
        assert counting.count("GetConversations") <= 2 * one_scan


@pytest.mark.parametrize(
    "path",
    [
        "/conversations?q=nothing-matches&format=json",
        "/conversations/export.csv?q=nothing-matches",
        "/insights.json",
    ],
)
def test_a_request_whose_client_hung_up_stops_scanning(
    slow: Any, tmp_path: Path, path: str
) -> None:
    _, counting, _ = slow
    with dashboard(slow, tmp_path, LARGE) as (browser, app):
        host, port = browser.base.removeprefix("http://").split(":")
        cookie = "; ".join(f"{c.name}={c.value}" for c in browser.http.cookies)
        with socket.create_connection((host, int(port))) as raw:
            raw.sendall(
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Cookie: {cookie}\r\n\r\n".encode()
            )
            wait_for_calls(counting, "GetConversations", 3)
        wait_until_idle(app)
        # 10,000 conversations are 101 calls; hanging up stopped it early.
        assert counting.count("GetConversations") < 30


def test_a_token_may_run_only_a_few_distinct_scans(slow: Any, tmp_path: Path) -> None:
    _, counting, _ = slow
    with dashboard(slow, tmp_path, LARGE, AIRISK_SCANS_PER_TOKEN=1) as (browser, _):
        with browser.http.get(
            browser.base + "/conversations?q=x&tag=a", stream=True, timeout=30
        ) as first:
            # Keep the iterator: dropping it makes urllib3 close the connection.
            chunks = first.iter_content(chunk_size=None)
            next(chunks)
            refused = browser.get("/conversations?q=x&tag=b")
            assert refused.status_code == 429
            assert "searches" in Page(refused.text).text
            # The same scan again is shared, not refused.
            with browser.http.get(
                browser.base + "/conversations?q=y&tag=a", stream=True, timeout=30
            ) as again:
                assert again.status_code == 200


def test_sign_out_stops_a_scan_and_keeps_nothing_it_read(
    slow: Any, tmp_path: Path
) -> None:
    _, counting, _ = slow
    with dashboard(slow, tmp_path, LARGE) as (browser, app):
        page = browser.get("/conversations")
        with browser.http.get(
            browser.base + "/conversations?q=x", stream=True, timeout=30
        ) as scan:
            chunks = scan.iter_content(chunk_size=None)
            next(chunks)
            wait_for_calls(counting, "GetConversations", 3)
            browser.post("/logout", {"csrf_token": browser.form_token(page)})
            wait_until_idle(app)
        service = app.extensions["airisk"]
        assert counting.count("GetConversations") < 50
        assert service.cached_history(LARGE) is None


class InFlight:
    """WSGI middleware that records the most calls in flight at once."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.now = self.most = 0
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            # The body is built here: the demo API answers in one piece.
            return list(self.app(environ, start_response))
        finally:
            with self.lock:
                self.now -= 1


def test_has_attachments_is_bounded_and_reused(tmp_path: Path) -> None:
    app = create_demo_app(latency_ms=20)
    counting = Counting(app)
    in_flight = InFlight(counting)
    with DemoServer(in_flight) as server:
        upstream = (server, counting, app.extensions["airisk_demo"])
        settings = {"AIRISK_ATTACHMENT_CHECKS": 30}
        with dashboard(upstream, tmp_path, ALICE, **settings) as (browser, _):
            first = browser.get("/conversations?attachments=1&format=json").json()
            opened = counting.count("GetConversation/")
            # At most 30 conversations opened, a few at a time, never all.
            assert 0 < opened <= 30
            assert 1 < in_flight.most <= 4
            assert first["complete"] is False
            # Each request opens at most 30 more, never one already checked,
            # until all are checked; then the answer is reused.
            for _ in range(20):
                body = browser.get("/conversations?attachments=1&format=json").json()
                if body["complete"]:
                    break
            assert body["complete"] is True
            opened_paths = [c for c in counting.calls if "GetConversation/" in c]
            assert len(opened_paths) == len(set(opened_paths))
            calls = counting.count("GetConversation/")
            again = browser.get("/conversations?attachments=1&format=json").json()
            assert again["total"] == body["total"] > 0
            assert counting.count("GetConversation/") == calls


# -- across instances (gunicorn processes sharing Redis) -----------------------------


@pytest.fixture
def two_instances(
    tmp_path: Path, slow: Any
) -> Iterator[tuple[Dashboard, Dashboard, RedisServer]]:
    """Two dashboard processes sharing sessions and cache in a real Redis."""
    server, _, _ = slow
    redis_server = RedisServer(tmp_path / "redis")
    (tmp_path / "redis").mkdir()
    redis_server.start()
    env = environment(
        tmp_path,
        AIRISK_BASE_URL=server.url,
        SESSION_BACKEND="redis",
        CACHE_BACKEND="redis",
        REDIS_URL=redis_server.url,
        # The processes import this checkout's webapp, not an installed one.
        PYTHONPATH=str(Path(__file__).resolve().parents[1]),
    )
    a = Dashboard(env, tmp_path).start()
    b = Dashboard(env, tmp_path).start()
    yield a, b, redis_server
    a.stop()
    b.stop()
    redis_server.stop()


def test_stop_and_sign_out_reach_a_scan_in_another_process(
    two_instances: Any, slow: Any
) -> None:
    a, b, redis_server = two_instances
    _, counting, _ = slow
    browser = Browser(a.url)
    sign_in(browser, LARGE)
    other = on(b, browser)
    counting.calls.clear()
    with browser.http.get(
        a.url + "/conversations?q=x", stream=True, timeout=30
    ) as scan:
        chunks = scan.iter_content(chunk_size=None)
        top = next(chunks).decode()
        stop = re.search(r'href="([^"]+)" class="stop"', top)
        assert stop
        wait_for_calls(counting, "GetConversations", 3)
        # "Stop" lands on the other process: it still stops the scan here.
        stopped = other.get(stop.group(1).replace("&amp;", "&"))
        assert "The scan was stopped" in Page(stopped.text).text
        calls = counting.count("GetConversations")
        assert calls < 50 and counting.count("skip=0&") == 1

    # Sign-out on the other process stops a scan here, and what the scan
    # had read is not left in the cache.
    digest = keyed_name(derive_key(SECRET, "cache key names"), LARGE)
    store = redis_server.client()
    with browser.http.get(
        a.url + "/conversations?q=y&refresh=1", stream=True, timeout=30
    ) as scan:
        chunks = scan.iter_content(chunk_size=None)
        next(chunks)
        wait_for_calls(counting, "GetConversations", calls + 3)
        listing = other.get("/conversations")
        other.post("/logout", {"csrf_token": other.form_token(listing)})
        rest = b"".join(chunks).decode()
    assert "http-equiv" in rest or "stopped" in rest
    assert counting.count("GetConversations") < calls + 50
    assert not list(store.scan_iter(f"airisk-cache:{digest}:*"))


def test_paging_through_a_stopped_search_starts_no_scan(
    slow: Any, tmp_path: Path
) -> None:
    _, counting, _ = slow
    with dashboard(slow, tmp_path, LARGE) as (browser, _):
        with browser.http.get(
            browser.base + "/conversations?q=a", stream=True, timeout=30
        ) as scan:
            chunks = scan.iter_content(chunk_size=None)
            stop = re.search(r'href="([^"]+)" class="stop"', next(chunks).decode())
            assert stop
            wait_for_calls(counting, "GetConversations", 3)
            stopped = browser.get(stop.group(1).replace("&amp;", "&"))
        (older,) = Page(stopped.text).find_all("a", rel="next")
        calls = counting.count("GetConversations")
        second = Page(browser.get(older["href"] or "").text).text
        assert "Page 2" in second and "these results are incomplete" in second
        assert counting.count("GetConversations") == calls


def test_the_review_queue_scan_stops_keeping_what_it_found(
    slow: Any, tmp_path: Path
) -> None:
    _, counting, _ = slow
    with dashboard(slow, tmp_path, LARGE) as (browser, _):
        with browser.http.get(
            browser.base + "/review?scan=1", stream=True, timeout=30
        ) as scan:
            chunks = scan.iter_content(chunk_size=None)
            top = next(chunks).decode()
            assert "Review queue: scanning" in Page(top).text
            stop = re.search(r'href="([^"]+)" class="stop"', top)
            assert stop
            wait_for_calls(counting, "GetConversations", 3)
            stopped = browser.get(stop.group(1).replace("&amp;", "&"))
        text = Page(stopped.text).text
        assert "The scan was stopped" in text
        assert "partial: stopped early" in text
        found = re.search(r"(\d+) flagged, not reviewed", text)
        assert found and int(found.group(1)) > 0
        # Reading the queue again shows the partial scan and starts none.
        calls = counting.count("GetConversations")
        again = Page(browser.get("/review").text).text
        assert "partial: stopped early" in again
        assert counting.count("GetConversations") == calls
