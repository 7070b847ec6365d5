"""Fixtures in flaskr's style: an app, a client, a helper to enter a token.

AIRisk is faked at the HTTP layer: ``responses`` for unit tests, the real demo
API on a loopback port for end-to-end tests. Nothing here patches our own code.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import responses
from flask import Flask
from flask.testing import FlaskClient

from webapp import create_app
from webapp.demo_api import create_demo_app
from webapp.demo_api.server import DemoServer

# Hypothesis keeps its example database and caches in ./.hypothesis unless
# told otherwise; tests write only under temporary folders. It reads this on
# first use, after conftest is imported.
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", tempfile.mkdtemp(prefix="airisk-hypothesis-")
)

BASE = "https://airisk.test"
#: The fixed "now" of the demo data in tests, so dates are reproducible.
DEMO_NOW = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's AIRISK_*/FLASK_*/SESSION_* variables out of tests."""
    for name in list(os.environ):
        if name.startswith(("AIRISK_", "FLASK_", "SESSION_")) or name in {
            "SECRET_KEY",
            "SECRET_KEY_FALLBACKS",
            "TRUSTED_HOSTS",
        }:
            monkeypatch.delenv(name)


def make_app(tmp_path: Any, **overrides: Any) -> Flask:
    """Create a test app whose session store lives under ``tmp_path``."""
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-0123456789abcdef",
        "SESSION_DIR": str(tmp_path / "sessions"),
        "AIRISK_BASE_URL": BASE,
        "AIRISK_RETRIES": 0,
    }
    config.update(overrides)
    return create_app(config)


@pytest.fixture
def app(tmp_path: Any) -> Flask:
    return make_app(tmp_path)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def upstream() -> Iterator[responses.RequestsMock]:
    """Fake AIRisk at the HTTP layer; any unexpected call fails the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def csrf_token(client: FlaskClient, path: str = "/token") -> str:
    """Load ``path`` and return the CSRF token of its form."""
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page
    )
    assert match, "no CSRF token on the page"
    return match.group(1)


def enter_token(client: FlaskClient, token: str, next_path: str = "") -> Any:
    """Submit the token form like a browser does; return the response."""
    form_page = "/token" + (f"?next={next_path}" if next_path else "")
    data = {"csrf_token": csrf_token(client, form_page), "token": token}
    if next_path:
        data["next"] = next_path
    return client.post("/token", data=data)


class Page(HTMLParser):
    """A tiny DOM summary for assertions on what a user sees."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text_parts: list[str] = []
        self._skip = 0
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        if tag in {"script", "style"}:
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style"} and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text_parts.append(data)

    @property
    def text(self) -> str:
        """Return the visible text with whitespace collapsed."""
        return " ".join(" ".join(self.text_parts).split())

    def find_all(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        """Return the attributes of every ``tag`` element matching ``attrs``."""
        return [
            a
            for t, a in self.elements
            if t == tag and all(a.get(k.rstrip("_")) == v for k, v in attrs.items())
        ]

    def ids(self) -> list[str]:
        """Return every element id on the page, in order."""
        return [a["id"] for _, a in self.elements if a.get("id")]


def page(response: Any) -> Page:
    """Parse a response body."""
    return Page(response.get_data(as_text=True))


@pytest.fixture(scope="session")
def demo_api() -> Iterator[DemoServer]:
    """The real demo AIRisk API on a free loopback port."""
    with DemoServer(create_demo_app(now=DEMO_NOW)) as server:
        yield server


# -- end to end over real HTTP -------------------------------------------------

ALICE = "demo-alice"


class Browser:
    """A cookie-keeping HTTP client that records every page it saw."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()
        self.http.trust_env = False
        self.bodies: list[str] = []

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        response = self.http.get(self.base + path, timeout=30, **kwargs)
        self.bodies.append(response.text)
        return response

    def post(self, path: str, data: dict[str, str], **kwargs: Any) -> requests.Response:
        response = self.http.post(self.base + path, data=data, timeout=30, **kwargs)
        self.bodies.append(response.text)
        return response

    def form_token(self, response: requests.Response) -> str:
        match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', response.text)
        assert match
        return match.group(1)

    def enter_token(
        self, token: str, token_page: requests.Response
    ) -> requests.Response:
        """Fill in the token form that ``token_page`` shows, as a user would."""
        doc = Page(token_page.text)
        (hidden,) = doc.find_all("input", name="next")
        return self.post(
            "/token",
            {
                "csrf_token": self.form_token(token_page),
                "token": token,
                "next": hidden.get("value") or "",
            },
        )

    def chunks(self, path: str) -> list[str]:
        """Load a streamed page; return the pieces as they arrived."""
        with self.http.get(self.base + path, stream=True, timeout=30) as response:
            return [c.decode() for c in response.iter_content(chunk_size=None) if c]

    def path_of(self, response: requests.Response) -> str:
        parts = urlsplit(response.url)
        return parts.path + ("?" + parts.query if parts.query else "")


class Counting:
    """WSGI middleware that records the path and query of every call."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        with self.lock:
            self.calls.append(
                environ["PATH_INFO"] + "?" + environ.get("QUERY_STRING", "")
            )
        return self.app(environ, start_response)

    def count(self, fragment: str) -> int:
        with self.lock:
            return sum(fragment in call for call in self.calls)


@pytest.fixture(scope="module")
def demo() -> Iterator[tuple[DemoServer, Counting, Any]]:
    """The demo API at the real clock (\"today\", \"last 7 days\"), calls counted."""
    app = create_demo_app()
    counting = Counting(app)
    with DemoServer(counting) as server:
        yield server, counting, app.extensions["airisk_demo"]


@contextmanager
def signed_in_reviewer(demo: Any, tmp_path: Path, **settings: Any) -> Iterator[Browser]:
    """Serve a dashboard on ``demo`` with ``settings``; sign in to it as Alice."""
    server, counting, _ = demo
    app = make_app(tmp_path, AIRISK_BASE_URL=server.url, **settings)
    with DemoServer(app) as dashboard:
        browser = Browser(dashboard.url)
        browser.enter_token(ALICE, browser.get("/token"))
        counting.calls.clear()
        yield browser


@pytest.fixture
def reviewer(demo: Any, tmp_path: Path) -> Iterator[Browser]:
    """A dashboard on ``demo`` and a browser signed in to it as Alice."""
    with signed_in_reviewer(demo, tmp_path) as browser:
        yield browser
