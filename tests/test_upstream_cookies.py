"""Upstream cookies never travel from one user's calls to another's.

Each worker thread keeps one pooled ``requests.Session``; its cookie jar, if
it kept cookies, would carry whatever AIRisk (or a gateway in front of it)
set for one user into the next user's calls on that thread.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from support import ALICE, DEMO_NOW, enter_token, make_app
from support.html import row_ids

from webapp.airisk import AIRiskClient, ClientSettings
from webapp.demo_api import create_demo_app
from webapp.demo_api.server import DemoServer

BOB = "demo-bob"


class StickyGateway:
    """WSGI middleware acting like a gateway that pins sessions by cookie.

    The first answer to a call without the cookie sets ``gw=<n>``; a call that
    carries a known ``gw`` cookie is served as the caller that earned it,
    whatever its own ``Authorization`` header says (as some SaaS gateways and
    load balancers with sticky sessions do).
    """

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.pinned: dict[str, str] = {}
        #: (Authorization, Cookie) of every call, as received.
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        cookie = environ.get("HTTP_COOKIE", "")
        match = re.search(r"(?:^|;\s*)gw=([^;]+)", cookie)
        with self.lock:
            self.calls.append((authorization, cookie))
            owner = self.pinned.get(match.group(1)) if match else None
            new_id = None
            if owner is None:
                new_id = str(len(self.pinned))
                self.pinned[new_id] = authorization
        if owner is not None:
            environ["HTTP_AUTHORIZATION"] = owner

        def start(status: str, headers: list[Any], exc_info: Any = None) -> Any:
            if new_id is not None:
                headers.append(("Set-Cookie", f"gw={new_id}; Path=/; HttpOnly"))
            return start_response(status, headers, exc_info)

        return self.app(environ, start)

    def cookies_sent(self) -> list[tuple[str, str]]:
        """Return the calls that carried any cookie."""
        with self.lock:
            return [call for call in self.calls if call[1]]


def test_bobs_calls_never_carry_alices_upstream_cookie(tmp_path: Path) -> None:
    gateway = StickyGateway(create_demo_app(now=DEMO_NOW))
    with DemoServer(gateway) as upstream:
        # No caching, so every page view is a call; the test client runs
        # every request on this thread, so both users share its session.
        app = make_app(
            tmp_path,
            AIRISK_BASE_URL=upstream.url,
            AIRISK_CACHE_TTL=0,
            AIRISK_AGENTS_TTL=0,
        )
        alice, bob = app.test_client(), app.test_client()
        enter_token(alice, ALICE)
        alice_ids = row_ids(alice.get("/conversations"))
        enter_token(bob, BOB)
        bob_ids = row_ids(bob.get("/conversations"))
        alice_again = row_ids(alice.get("/conversations"))
    assert gateway.cookies_sent() == []
    assert alice_ids and bob_ids, "both users see their own conversations"
    assert not alice_ids & bob_ids, "Bob's list shows none of Alice's rows"
    assert alice_again == alice_ids


def test_the_client_keeps_no_cookie_between_calls() -> None:
    gateway = StickyGateway(create_demo_app(now=DEMO_NOW))
    with DemoServer(gateway) as upstream:
        client = AIRiskClient(ClientSettings(base_url=upstream.url, retries=0))
        first = client.list_conversations(ALICE, results=5)
        second = client.list_conversations(BOB, results=5)
        third = client.list_conversations(BOB, results=5)
    assert len(gateway.calls) == 3
    assert gateway.cookies_sent() == []
    assert {c.id for c in first}.isdisjoint({c.id for c in second})
    assert second == third
