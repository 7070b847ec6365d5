"""Fixtures for the in-browser tests: one headless Debian Chromium per session,
the real demo AIRisk API and the dashboard on loopback, a fresh browser context
per test, and a guard that fails any test whose pages misbehaved.

Every test in this folder is marked ``browser``: ``pytest -m "not browser"``
leaves them out; ``make test`` and CI run them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from support import make_app

from webapp.demo_api import Dataset
from webapp.demo_api.server import DemoServer

from .harness import PageGuard, screenshots_module

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test below this folder ``browser`` (before ``-m`` selects)."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    """Headless Debian Chromium; a missing binary fails the tests, never skips."""
    screenshots = screenshots_module()
    with sync_playwright() as playwright:
        try:
            browser = screenshots.launch_chromium(playwright)
        except screenshots.ChromiumMissing as exc:
            raise pytest.fail.Exception(str(exc), pytrace=False) from None
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def dashboard(
    demo_api: DemoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DemoServer]:
    """The dashboard on a loopback port, talking to the demo AIRisk API."""
    app = make_app(tmp_path_factory.mktemp("browser"), AIRISK_BASE_URL=demo_api.url)
    with DemoServer(app) as server:
        yield server


@pytest.fixture(scope="session")
def demo_data(demo_api: DemoServer) -> Dataset:
    """The demo tenant the API serves, to know what pages should show."""
    return demo_api.app.extensions["airisk_demo"]  # type: ignore[attr-defined,no-any-return]


@pytest.fixture(autouse=True)
def guard() -> Iterator[PageGuard]:
    """Fail the test if any of its pages misbehaved (see :class:`PageGuard`)."""
    recorder = PageGuard()
    yield recorder
    recorder.check()


@pytest.fixture
def new_context(
    chromium: Browser, guard: PageGuard
) -> Iterator[Callable[..., BrowserContext]]:
    """Return a factory of guarded browser contexts (a fresh profile each)."""
    contexts: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        context = guard.watch(chromium.new_context(**options))
        contexts.append(context)
        return context

    yield make
    guard.collect()
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_context: Callable[..., BrowserContext]) -> Page:
    """A page in a fresh, guarded browser context."""
    return new_context().new_page()
