"""The whole user story over real HTTP: the demo AIRisk API and the dashboard,
both served on loopback ports, driven like a browser with a cookie jar."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from support import ALICE, Browser, Page, make_app
from support.http import conversation_links

from webapp.demo_api.server import DemoServer

# Real servers and processes: left out of the fast tier (-m 'not slow').
pytestmark = pytest.mark.slow


@pytest.fixture
def dashboard(demo_api: DemoServer, tmp_path: Path) -> Iterator[DemoServer]:
    app = make_app(tmp_path, AIRISK_BASE_URL=demo_api.url)
    with DemoServer(app) as server:
        yield server


@pytest.fixture
def browser(dashboard: DemoServer) -> Browser:
    return Browser(dashboard.url)


@pytest.fixture
def dataset(demo_api: DemoServer) -> Any:
    return demo_api.app.extensions["airisk_demo"]  # type: ignore[attr-defined]


def alice_summaries(dataset: Any) -> list[dict[str, Any]]:
    return list(dataset.summaries[dataset.user_id_for(ALICE)])


def sign_in(browser: Browser, token: str = ALICE) -> requests.Response:
    return browser.enter_token(token, browser.get("/token"))


def test_the_whole_user_story(browser: Browser, dataset: Any) -> None:
    # 1. The home page asks for a token and says what it is.
    first = browser.get("/")
    assert urlsplit(first.url).path == "/token"
    assert "An AIRisk access token is" in Page(first.text).text

    # 2. Entering the token lands on the list, newest first.
    listing = browser.enter_token(ALICE, first)
    assert urlsplit(listing.url).path == "/conversations"
    expected = alice_summaries(dataset)
    assert conversation_links(listing) == [s["id"] for s in expected[:20]]
    text = Page(listing.text).text
    assert expected[0]["title"] in text
    assert "Flagged" in text

    # 3. Filters and page size are URLs, and so is every page.
    agent = expected[0]["botID"]
    page2 = browser.get(f"/conversations?size=50&page=2&agent={agent}")
    mine = [s["id"] for s in expected if s["botID"] == agent]
    assert conversation_links(page2) == mine[50:100]

    tagged = browser.get("/conversations?tag=FINANCE&size=100")
    with_tag = [
        s["id"]
        for s in expected
        if any("finance" in (tag or "").lower() for tag in s.get("metaData") or [])
    ]
    assert with_tag, "the demo data has finance tags"
    assert conversation_links(tagged) == with_tag[:100]

    # 4. Opening a conversation shows its facts and messages.
    target = next(
        s for s in expected if s["id"] != dataset.long_conversation_id and s["hasFlag"]
    )
    detail = browser.get(f"/conversations/{target['id']}")
    assert detail.status_code == 200
    doc = Page(detail.text)
    assert target["title"] in doc.text
    assert "Flagged by AIRisk" in doc.text
    assert any(i.startswith("m-") for i in doc.ids())

    # 5. Sign out deletes the session.
    signed_out = browser.post("/logout", {"csrf_token": browser.form_token(detail)})
    assert "You are signed out" in Page(signed_out.text).text
    assert urlsplit(browser.get("/conversations").url).path == "/token"

    # The token never appeared in anything the dashboard sent.
    assert not [body for body in browser.bodies if ALICE in body]


def test_walking_every_page_sees_every_conversation_once(
    browser: Browser, dataset: Any
) -> None:
    sign_in(browser)
    seen: list[str] = []
    path = "/conversations?size=100"
    pages = 0
    while path:
        response = browser.get(path)
        seen += conversation_links(response)
        older = Page(response.text).find_all("a", rel="next")
        path = older[0]["href"] or "" if older else ""
        pages += 1
        assert pages < 10
    assert seen == [s["id"] for s in alice_summaries(dataset)]


def test_rich_messages_render_safely(browser: Browser, dataset: Any) -> None:
    sign_in(browser)
    user = dataset.user_id_for(ALICE)
    conversations = [
        dataset.conversation(user, s["id"])
        for s in alice_summaries(dataset)[:120]
        if s["id"] != dataset.long_conversation_id
    ]

    def has(predicate: Any) -> dict[str, Any]:
        return next(
            c for c in conversations if any(predicate(m) for m in c["messages"])
        )

    cited = has(lambda m: m["citations"] and "\u3010" in m["text"])
    doc = Page(browser.get(f"/conversations/{cited['id']}").text)
    refs = [a for a in doc.find_all("a") if (a["href"] or "").startswith("#c")]
    assert refs and all((a["href"] or "")[1:] in doc.ids() for a in refs)

    attached = has(lambda m: m["fileName"])
    page_text = browser.get(f"/conversations/{attached['id']}").text
    assert "Attachment" in Page(page_text).text

    with_system = has(lambda m: m["messageType"] == "System")
    hidden = Page(browser.get(f"/conversations/{with_system['id']}").text)
    shown = Page(browser.get(f"/conversations/{with_system['id']}?system=1").text)
    assert "system message" in hidden.text and "hidden" in hidden.text
    assert len([i for i in shown.ids() if i.startswith("m-")]) == len(
        with_system["messages"]
    )

    liked = has(lambda m: m["feedback"] == "Like")
    assert "Liked" in Page(browser.get(f"/conversations/{liked['id']}").text).text


def test_the_long_conversation_opens_in_windows(browser: Browser, dataset: Any) -> None:
    sign_in(browser)
    long_id = dataset.long_conversation_id
    user = dataset.user_id_for(ALICE)
    visible = [
        m["id"]
        for m in dataset.conversation(user, long_id)["messages"]
        if m["messageType"] != "System"
    ]
    assert len(visible) >= 2000

    def shown(path: str) -> tuple[list[str], Page]:
        doc = Page(browser.get(path).text)
        return [i[2:] for i in doc.ids() if i.startswith("m-")], doc

    first, doc = shown(f"/conversations/{long_id}")
    assert first == visible[:200]
    # Numbers are AIRisk's positions: the hidden System message is #1.
    total = len(dataset.conversation(user, long_id)["messages"])
    assert f"Messages 2–201 of {total:,} (1 hidden)" in doc.text
    # Following "Later messages" from window to window shows every message once.
    seen = list(first)
    while True:
        later = [
            a["href"]
            for a in doc.find_all("a")
            if a["href"] and a["href"].endswith(f"start={len(seen)}")
        ]
        if not later:
            break
        window, doc = shown(later[0] or "")
        seen += window
    assert seen == visible
    # A permalink to a late message opens the window that holds it.
    target = visible[1234]
    window, doc = shown(f"/conversations/{long_id}?at={target}")
    assert target in window
    assert "Messages 1,202–1,401" in doc.text


def test_a_shared_link_works_for_a_teammate(browser: Browser, dataset: Any) -> None:
    sign_in(browser)
    conversation_id = alice_summaries(dataset)[3]["id"]
    shared = f"/conversations/{conversation_id}?system=1"
    assert browser.get(shared).status_code == 200

    teammate = Browser(browser.base)
    token_page = teammate.get(shared)
    assert urlsplit(token_page.url).path == "/token"
    landed = teammate.enter_token(ALICE, token_page)
    assert teammate.path_of(landed) == shared
    assert landed.status_code == 200


def test_a_token_that_expires_mid_session_round_trips(
    browser: Browser, dataset: Any
) -> None:
    expires = int(time.time()) + 2
    sign_in(browser, f"{ALICE}@{expires}")
    target = (
        f"/conversations?size=50&page=2&agent={alice_summaries(dataset)[0]['botID']}"
    )
    assert browser.get("/conversations").status_code == 200
    time.sleep(max(0.0, expires - time.time()) + 0.2)
    # A page not seen before (pages already seen are served from the short
    # per-token cache for AIRISK_CACHE_TTL seconds).
    token_page = browser.get(target)
    assert urlsplit(token_page.url).path == "/token"
    assert "no longer accepts your access token" in Page(token_page.text).text
    assert parse_qs(urlsplit(token_page.url).query)["next"] == [target]
    back = browser.enter_token(ALICE, token_page)
    assert browser.path_of(back) == target
    assert back.status_code == 200


def test_other_demo_tokens(browser: Browser, dataset: Any) -> None:
    rejected = sign_in(browser, "demo-expired")
    assert rejected.status_code == 401
    assert "AIRisk rejected this token" in Page(rejected.text).text

    generic = sign_in(browser, "demo-generic")
    assert generic.status_code == 403
    doc = Page(generic.text)
    assert "application (generic) token" in doc.text and "user token" in doc.text
    assert doc.find_all("input", name="token"), "the token page, to paste another"
    assert browser.path_of(browser.get("/conversations")).startswith("/token")

    bob = Browser(browser.base)
    sign_in(bob, "demo-bob")
    alice_id = alice_summaries(dataset)[0]["id"]
    assert bob.get(f"/conversations/{alice_id}").status_code == 404
    assert alice_id not in conversation_links(bob.get("/conversations?size=100"))


def test_bad_ids_and_pages_over_http(browser: Browser) -> None:
    sign_in(browser)
    for path in ("/conversations/..%2FUsers%2FListUsers", "/conversations/x.y"):
        response = browser.get(path)
        assert response.status_code == 404
        assert "Traceback" not in response.text
    assert browser.get("/conversations?page=999").status_code == 200


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_unreachable_airisk_is_a_503_page(tmp_path: Path) -> None:
    app = make_app(tmp_path, AIRISK_BASE_URL=f"http://127.0.0.1:{_closed_port()}")
    with DemoServer(app) as server:
        browser = Browser(server.url)
        landed = sign_in(browser)
        assert landed.status_code == 503
        doc = Page(landed.text)
        assert "AIRisk did not answer; try again" in doc.text
        assert doc.find_all("input", name="token"), "the token page, not a sign-in"


def test_the_demo_command_serves_dashboard_and_api(tmp_path: Path) -> None:
    """What ``make run`` starts: both programs, wired together, on loopback."""
    port, api_port = _closed_port(), _closed_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AIRISK_", "FLASK_"))
    }
    env["SESSION_DIR"] = str(tmp_path / "sessions")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "webapp.cli",
            "demo",
            "--port",
            str(port),
            "--api-port",
            str(api_port),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        browser = Browser(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        while True:
            try:
                token_page = browser.get("/token")
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the demo did not start"
                assert process.poll() is None, "the demo exited"
                time.sleep(0.2)
        listing = browser.enter_token(ALICE, token_page)
        assert listing.status_code == 200
        assert len(conversation_links(listing)) == 20
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert "demo-alice" in output and f"http://127.0.0.1:{port}/" in output
