"""End to end over real HTTP: a browser-like client and a signed-in reviewer."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from webapp.demo_api.server import DemoServer

from .app import ALICE, make_app
from .html import Page


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


def conversation_links(response: requests.Response) -> list[str]:
    """Return the conversation ids the list rows link to, in order."""
    doc = Page(response.text)
    found = []
    for a in doc.find_all("a"):
        match = re.fullmatch(r"/conversations/([A-Za-z0-9_-]+)(\?.*)?", a["href"] or "")
        if match:
            found.append(match.group(1))
    return found


def follow_scan(reviewer: Browser, path: str) -> requests.Response:
    """Load a search URL; if it streams a scan, follow its final refresh."""
    response = reviewer.get(path)
    match = re.search(r'http-equiv="refresh" content="0;url=([^"]+)"', response.text)
    if match:
        response = reviewer.get(match.group(1).replace("&amp;", "&"))
    return response


def all_result_ids(reviewer: Browser, path: str) -> list[str]:
    """Page through a search result and return every conversation id."""
    ids: list[str] = []
    response = follow_scan(reviewer, path)
    while True:
        ids += conversation_links(response)
        nxt = Page(response.text).find_all("a", rel="next")
        if not nxt:
            return ids
        response = reviewer.get(nxt[0]["href"] or "")
