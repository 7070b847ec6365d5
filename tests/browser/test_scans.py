"""Long scans in a real browser: progress that shows, Stop that stops.

The demo API answers each call after 250 ms (a WSGI wrapper adds the delay
and counts the calls), and ``demo-large`` has 10,000 conversations: a whole
scan would take half a minute, so every test here stops one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page
from support import Counting, make_app

from webapp.demo_api import create_demo_app
from webapp.demo_api.server import DemoServer

from .harness import sign_in

LARGE = "demo-large"
LATENCY = 0.25

ContextFactory = Callable[..., BrowserContext]


class Slow:
    """WSGI middleware that answers each call after ``delay`` seconds."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.delay = LATENCY

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        time.sleep(self.delay)
        return self.app(environ, start_response)


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[DemoServer, Counting, Slow]]:
    """The demo API, 250 ms per call, calls counted."""
    counting = Counting(create_demo_app())
    slow = Slow(counting)
    with DemoServer(slow) as server:
        yield server, counting, slow


@pytest.fixture
def site(upstream: Any, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """A dashboard on the slow demo API; its base URL and its app.

    Tests ask for it before ``new_context``, so their browser contexts close
    (and hang up on running scans) before it stops.
    """
    server, _, _ = upstream
    app = make_app(tmp_path, AIRISK_BASE_URL=server.url)
    with DemoServer(app) as dashboard:
        yield dashboard.url, app
        jobs = app.extensions["airisk"].jobs
        deadline = time.monotonic() + 20
        while jobs.running() and time.monotonic() < deadline:
            time.sleep(0.05)


def visible_progress(page: Page) -> list[str]:
    """Return the text of every progress line the user can see."""
    texts: list[str] = page.locator("p.progress-line").evaluate_all(
        """lines => lines
          .filter(l => { const r = l.getBoundingClientRect();
                         return r.width > 0 && r.height > 0 &&
                                getComputedStyle(l).visibility !== "hidden"; })
          .map(l => l.innerText)"""
    )
    return texts


def watch_progress(page: Page, seconds: float) -> list[str]:
    """Sample the visible progress lines for ``seconds``; return what was shown."""
    shown: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        lines = visible_progress(page)
        assert len(lines) <= 1, f"more than one progress line shown: {lines}"
        if lines and (not shown or shown[-1] != lines[0]):
            shown.append(lines[0])
        page.wait_for_timeout(100)
    return shown


@pytest.mark.parametrize("javascript", [True, False])
def test_search_progress_is_displayed_while_the_page_streams(
    site: Any, upstream: Any, new_context: ContextFactory, javascript: bool
) -> None:
    base, _ = site
    page = new_context(java_script_enabled=javascript).new_page()
    sign_in(page, base, LARGE)
    page.goto(base + "/conversations?q=no-such-title", wait_until="commit")
    shown = watch_progress(page, 3)
    # One line, replaced as pages arrive: at least a new text each second.
    assert len(shown) >= 3, shown
    assert shown[-1].startswith("Scanned ") and "conversations so far" in shown[-1]
    page.close()  # hang up: the scan stops


def test_insights_progress_is_displayed_and_stop_shows_what_was_read(
    site: Any, upstream: Any, new_context: ContextFactory
) -> None:
    base, _ = site
    _, counting, _ = upstream
    page = new_context().new_page()
    sign_in(page, base, LARGE)
    counting.calls.clear()
    page.goto(base + "/insights?days=all", wait_until="commit")
    assert len(watch_progress(page, 2)) >= 2
    started = time.monotonic()
    with page.expect_navigation(wait_until="domcontentloaded"):
        page.click("a.stop")
    assert time.monotonic() - started < 1.0, "Stop answered within a second"
    assert "Reading the history was stopped" in page.inner_text("main")
    assert counting.count("skip=0&") == 1, "no second scan"


def test_stop_shows_the_partial_search_at_once_and_starts_no_scan(
    site: Any, upstream: Any, new_context: ContextFactory
) -> None:
    base, app = site
    _, counting, slow = upstream
    page = new_context().new_page()
    sign_in(page, base, LARGE)
    # An older complete scan is cached; refresh=1 scans afresh.
    slow.delay = 0
    warm = page.context.request.get(base + "/conversations?q=policy&format=json")
    assert warm.json()["complete"] is True
    slow.delay = LATENCY
    counting.calls.clear()
    page.goto(base + "/conversations?q=policy&refresh=1", wait_until="commit")
    page.locator("p.progress-line", has_text="Scanned 3 pages").wait_for(
        state="attached"
    )
    started = time.monotonic()
    with page.expect_navigation(wait_until="domcontentloaded"):
        page.click("a.stop")
    assert time.monotonic() - started < 1.0, "Stop answered within a second"
    text = page.inner_text("main")
    # The partial fresh scan, not the older complete one.
    assert "The scan was stopped: these results are incomplete." in text
    assert "from 10,000 scanned" not in text
    scanned = app.extensions["airisk"].jobs.running()
    assert counting.count("skip=0&") == 1, "no second scan"
    assert scanned <= 1


def test_attachment_check_shows_progress_and_stops(
    site: Any, upstream: Any, new_context: ContextFactory
) -> None:
    base, _ = site
    _, counting, slow = upstream
    page = new_context().new_page()
    sign_in(page, base, LARGE)
    slow.delay = 0
    warm = page.context.request.get(base + "/conversations?sort=created&format=json")
    assert warm.json()["complete"] is True
    slow.delay = LATENCY
    counting.calls.clear()
    page.goto(base + "/conversations?attachments=1", wait_until="commit")
    shown = watch_progress(page, 2)
    assert len(shown) >= 2 and shown[-1].startswith("Checked "), shown
    # A few calls in flight at once, never one per candidate.
    opened = counting.count("GetConversation/")
    assert 0 < opened <= 4 * (2 / LATENCY + 2)
    started = time.monotonic()
    with page.expect_navigation(wait_until="domcontentloaded"):
        page.click("a.stop")
    assert time.monotonic() - started < 1.0, "Stop answered within a second"
    assert "were checked for attachments" in page.inner_text("main")
    assert counting.count("GetConversations") == 0, "no scan started"


def test_review_queue_progress_is_displayed_and_stop_keeps_what_was_found(
    site: Any, upstream: Any, new_context: ContextFactory
) -> None:
    base, _ = site
    _, counting, _ = upstream
    page = new_context().new_page()
    sign_in(page, base, LARGE)
    page.goto(base + "/review", wait_until="domcontentloaded")
    counting.calls.clear()
    with page.expect_navigation(wait_until="commit"):
        page.click("a[data-scan-queue]")
    shown = watch_progress(page, 2)
    assert len(shown) >= 2, shown
    assert shown[-1].startswith("Scanned ") and "conversations so far" in shown[-1]
    with page.expect_navigation(wait_until="domcontentloaded"):
        page.click("a.stop")
    main = page.inner_text("main")
    assert "The scan was stopped" in main and "partial: stopped early" in main
    assert counting.count("skip=0&") == 1, "no second scan"
