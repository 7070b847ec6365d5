"""Reviewing at scale in a real browser: keyboard triage, search, hostile data.

Every page here is watched by the autouse guard (tests/browser/conftest.py):
a dialog, a console error, a CSP violation or a request to any host but
loopback fails the test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import BrowserContext, Page, expect

from webapp.demo_api import Dataset
from webapp.demo_api.server import DemoServer

from .harness import alice_summaries, path_of, sign_in

ContextFactory = Callable[..., BrowserContext]
axe = Axe()


def test_keyboard_triage_through_the_list(
    new_context: ContextFactory, dashboard: DemoServer, demo_data: Dataset
) -> None:
    page = new_context().new_page()
    sign_in(page, dashboard.url, next_path="/conversations")
    rows = alice_summaries(demo_data)
    page.locator("body").focus()
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(page.locator("tr.selected")).to_have_count(1)
    page.keyboard.press("k")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/conversations/{rows[0]['id']}?from=*")
    # "]" goes to the next conversation of the same list, "[" back.
    page.keyboard.press("]")
    page.wait_for_url(f"**/conversations/{rows[1]['id']}?from=*")
    page.keyboard.press("[")
    page.wait_for_url(f"**/conversations/{rows[0]['id']}?from=*")
    # "/" focuses find; typing there never triggers a shortcut.
    page.keyboard.press("/")
    expect(page.locator("input[name=find]")).to_be_focused()
    page.keyboard.type("jk[]g")
    assert f"/conversations/{rows[0]['id']}" in page.url
    page.keyboard.press("Escape")  # leaves the field
    expect(page.locator("input[name=find]")).not_to_be_focused()
    # "?" shows the help overlay, "g l" goes back to the list.
    page.keyboard.press("?")
    expect(page.locator("#keyboard-help")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#keyboard-help")).to_be_hidden()
    page.keyboard.press("g")
    page.keyboard.press("l")
    page.wait_for_url("**/conversations")
    # ... with the conversation it left selected.
    expect(page.locator("tr.selected")).to_have_count(1)
    href = page.locator("tr.selected a").first.get_attribute("href") or ""
    assert f"/conversations/{rows[0]['id']}" in href


def test_search_streams_then_shows_sorted_results(
    new_context: ContextFactory, dashboard: DemoServer, demo_data: Dataset
) -> None:
    page = new_context().new_page()
    sign_in(page, dashboard.url, next_path="/conversations")
    page.fill("input[name=q]", "policy")
    page.press("input[name=q]", "Enter")
    # The streamed page refreshes itself into the finished result.
    expect(page.locator("p.summary")).to_contain_text("match", timeout=20_000)
    expected = [
        s["id"]
        for s in alice_summaries(demo_data)
        if "policy" in s["title"].casefold()
        or any("policy" in t.casefold() for t in s["metaData"] or [])
    ]
    links = page.locator("tr[data-row] td.title a").evaluate_all(
        "links => links.map(a => a.getAttribute('href').split('?')[0].split('/').pop())"
    )
    assert links == expected[:20]
    results = axe.run(page).response
    serious = [
        v for v in results["violations"] if v["impact"] in {"serious", "critical"}
    ]
    assert not serious, serious


def test_print_export_is_accessible_and_prints_cleanly(
    new_context: ContextFactory, dashboard: DemoServer, demo_data: Dataset
) -> None:
    page = new_context().new_page()
    cid = alice_summaries(demo_data)[0]["id"]
    sign_in(page, dashboard.url, next_path=f"/conversations/{cid}/export.html")
    expect(page.locator("table.evidence")).to_contain_text("SHA-256")
    page.emulate_media(media="print")
    expect(page.locator("header.site")).to_be_hidden()
    expect(page.locator("table.evidence")).to_be_visible()
    results = axe.run(page).response
    serious = [
        v for v in results["violations"] if v["impact"] in {"serious", "critical"}
    ]
    assert not serious, serious


@pytest.fixture(scope="module")
def hostile_ids(demo_data: Dataset) -> list[str]:
    user = demo_data.user_id_for("demo-hostile")
    assert user, "the demo API serves the demo-hostile token"
    return [s["id"] for s in demo_data.summaries[user]]


def test_hostile_content_stays_inert_in_the_browser(
    new_context: ContextFactory, dashboard: DemoServer, hostile_ids: list[str]
) -> None:
    """Every hostile conversation, rendered by Chromium: nothing executes.

    The guard fails the test on any dialog, console error, CSP violation or
    request leaving loopback; here we also check that no script the pages
    did not load from /static ran, by planting a tripwire first.
    """
    context = new_context()
    context.add_init_script(
        "window.__tripped = [];"
        "for (const name of ['alert', 'confirm', 'prompt', 'print']) {"
        "  window[name] = (...a) => window.__tripped.push(name); }"
    )
    page: Page = context.new_page()
    sign_in(
        page, dashboard.url, token="demo-hostile", next_path="/conversations?size=100"
    )
    expect(page.locator("table.conversations")).to_be_visible()
    pages: list[Any] = ["/conversations?size=100", "/conversations?q=%3Cscript%3E"]
    pages += [f"/conversations/{cid}?system=1" for cid in hostile_ids]
    for path in pages:
        page.goto(dashboard.url + path)
        expect(page.locator("main")).to_be_visible()
        assert page.evaluate("window.__tripped") == [], path
        scripts = page.locator("script").evaluate_all(
            "s => s.map(e => e.getAttribute('src'))"
        )
        assert scripts == ["/static/app.js"], (path, scripts)
    assert path_of(page).startswith("/conversations/")


@pytest.mark.parametrize("path", ["/conversations", "conversation", "/insights"])
def test_pages_fit_a_phone_screen(
    new_context: ContextFactory, dashboard: DemoServer, demo_data: Dataset, path: str
) -> None:
    page = new_context(viewport={"width": 375, "height": 740}).new_page()
    if path == "conversation":
        path = f"/conversations/{alice_summaries(demo_data)[0]['id']}"
    sign_in(page, dashboard.url, next_path=path)
    expect(page.locator("main")).to_be_visible()
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 1, f"{path} scrolls sideways by {overflow}px at 375px"


def test_theme_toggle_overrides_the_system_and_is_remembered(
    new_context: ContextFactory, dashboard: DemoServer
) -> None:
    from .harness import luminance

    page = new_context(color_scheme="light").new_page()
    sign_in(page, dashboard.url, next_path="/conversations")

    def background() -> float:
        color = page.evaluate("getComputedStyle(document.body).backgroundColor")
        return luminance(color)

    assert background() > 0.5
    page.get_by_role("button", name="Dark mode").click()
    page.wait_for_url("**/conversations")
    assert background() < 0.2
    page.goto(dashboard.url + "/insights")
    assert background() < 0.2, "the choice is remembered"
    page.get_by_role("button", name="Follow system").click()
    page.wait_for_url("**/insights")
    assert background() > 0.5


def test_find_keeps_the_place_and_j_k_n_move_through_a_conversation(
    new_context: ContextFactory, dashboard: DemoServer, demo_data: Dataset
) -> None:
    page = new_context().new_page()
    cid = demo_data.long_conversation_id
    user = demo_data.user_id_for("demo-alice")
    messages = demo_data.conversation(user, cid)["messages"]
    place = messages[1234]["id"]  # in the seventh window
    sign_in(page, dashboard.url, next_path=f"/conversations/{cid}?at={place}")
    expect(page.locator(f"[id='m-{place}']")).to_be_attached()
    # Find a word: the page stays on the window it was on.
    page.keyboard.press("/")
    page.keyboard.type("policy")
    page.keyboard.press("Enter")
    page.wait_for_url("**find=policy*")
    assert f"at={place}" in page.url
    expect(page.locator(f"[id='m-{place}']")).to_be_attached()
    # n / N move between the matches on the page.
    page.locator("body").focus()
    page.keyboard.press("n")
    current = page.locator("mark.current")
    expect(current).to_have_count(1)
    first = current.evaluate("m => m.closest('li.message').id")
    page.keyboard.press("n")
    page.keyboard.press("N")
    expect(page.locator("mark.current")).to_have_count(1)
    assert (
        page.locator("mark.current").evaluate("m => m.closest('li.message').id")
        == first
    )
    # j / k move between messages, each with a heading.
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    focused = page.evaluate("document.activeElement.closest('li.message')?.id")
    assert focused and focused.startswith("m-")
    shown = page.locator("li.message").evaluate_all("els => els.map(e => e.id)")
    assert focused == shown[0]
    assert page.locator("li.message h2").count() == len(shown)
    # "Link" copies a permalink and leaves find in the address bar.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.locator("li.message a[data-copy-link]").first.click()
    expect(page.locator(".copied")).to_be_visible()
    assert "find=policy" in page.url
    # "g l" goes back to the list, with the row it came from selected.
    page.keyboard.press("g")
    page.keyboard.press("l")
    page.wait_for_url("**/conversations*")
    expect(page.locator(f"tr[data-row].selected a[href*='{cid}']")).to_be_attached()
    # Empty fields and a used refresh=1 leave the address bar.
    page.goto(f"{dashboard.url}/conversations?q=&agent=&refresh=1&size=50")
    page.wait_for_function("!location.search.includes('refresh')")
    assert page.url.endswith("/conversations?size=50")
