"""User flows in a real browser: what a reviewer does with mouse and keyboard."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from webapp.demo_api import Dataset
from webapp.demo_api.server import DemoServer

from .harness import (
    ALICE,
    PageGuard,
    alice_summaries,
    enter_token,
    focus_indicator,
    focus_top_of_document,
    luminance,
    path_of,
    sign_in,
    with_system_messages,
)

ContextFactory = Callable[..., BrowserContext]


def listed_ids(page: Page) -> list[str]:
    hrefs = page.locator("table.conversations td.title a").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )
    return [urlsplit(href).path.rsplit("/", 1)[1] for href in hrefs]


def busiest_agent(data: Dataset) -> tuple[str, list[str]]:
    """Return the agent with the most conversations, and their ids in order."""
    summaries = alice_summaries(data)
    agent, _ = Counter(s["botID"] for s in summaries).most_common(1)[0]
    return agent, [s["id"] for s in summaries if s["botID"] == agent]


def filter_list(page: Page, agent: str, size: str) -> None:
    """Choose an agent and a page size in the filter form and apply them."""
    page.select_option("select[name=agent]", agent)
    page.select_option("select[name=size]", size)
    with page.expect_navigation():
        page.click("form.filters button[type=submit]")


def test_filter_page_open_and_share_a_message_link(
    new_context: ContextFactory, dashboard: DemoServer, demo_data: Dataset
) -> None:
    base = dashboard.url
    context = new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()

    page.goto(base + "/")
    assert path_of(page).startswith("/token")
    enter_token(page, ALICE)
    assert path_of(page) == "/conversations"

    agent, mine = busiest_agent(demo_data)
    assert len(mine) > 50, "the busiest demo agent fills two pages of 50"
    filter_list(page, agent, "50")
    query = parse_qs(urlsplit(page.url).query)
    assert query["agent"] == [agent] and query["size"] == ["50"]
    assert listed_ids(page) == mine[:50]

    with page.expect_navigation():
        page.click("a[rel=next]")
    assert parse_qs(urlsplit(page.url).query)["page"] == ["2"]
    assert listed_ids(page) == mine[50:100]
    expect(page.locator(".pager")).to_contain_text("Page 2")

    # Open a conversation from page 2 and copy the link of its last message.
    cid = next(c for c in mine[50:100] if c != demo_data.long_conversation_id)
    with page.expect_navigation():
        page.click(f"table.conversations a[href^='/conversations/{cid}']")
    assert urlsplit(page.url).path == f"/conversations/{cid}"
    message = page.locator("li.message").last
    message_id = message.get_attribute("id") or ""
    assert message_id.startswith("m-")
    message.locator("a.permalink").click()
    expect(message.locator(".copied")).to_have_text("Link copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith(f"{base}/conversations/{cid}")
    assert copied.endswith(f"#{message_id}")

    # A colleague without a session opens it: token page first, then the message.
    colleague = new_context().new_page()
    colleague.goto(copied)
    assert path_of(colleague).startswith("/token")
    enter_token(colleague, ALICE)
    assert colleague.url == copied, "the shared link (with its #m-) survives sign-in"
    assert colleague.evaluate("document.querySelector(':target')?.id") == message_id
    expect(colleague.locator(f"#{message_id}")).to_be_in_viewport()


def test_an_expired_token_returns_to_the_same_page(
    page: Page, dashboard: DemoServer, demo_data: Dataset
) -> None:
    base = dashboard.url
    expires = int(time.time()) + 3
    sign_in(page, base, f"{ALICE}@{expires}")
    agent, _ = busiest_agent(demo_data)
    filter_list(page, agent, "20")
    assert f"agent={agent}" in path_of(page)

    # The reviewer comes back after the token expired and asks for older ones.
    page.wait_for_timeout((expires - time.time() + 0.3) * 1000)
    older = page.get_attribute("a[rel=next]", "href") or ""
    assert "page=2" in older and f"agent={agent}" in older
    with page.expect_navigation():
        page.click("a[rel=next]")
    assert path_of(page).startswith("/token")
    expect(page.locator("main")).to_contain_text("no longer accepts")
    enter_token(page, ALICE)
    assert path_of(page) == older
    assert listed_ids(page)


def test_back_after_sign_out_shows_no_conversation(
    page: Page, dashboard: DemoServer, demo_data: Dataset
) -> None:
    conversation = alice_summaries(demo_data)[1]
    sign_in(page, dashboard.url, next_path=f"/conversations/{conversation['id']}")
    expect(page.locator("h1")).to_contain_text(conversation["title"])

    with page.expect_navigation():
        page.click("button:text('Sign out')")
    expect(page.locator("main")).to_contain_text("You are signed out")

    page.go_back()
    assert path_of(page).startswith("/token")
    assert conversation["title"] not in page.content()
    assert page.locator("li.message").count() == 0


def test_system_messages_toggle(
    page: Page, dashboard: DemoServer, demo_data: Dataset
) -> None:
    conversation = with_system_messages(demo_data)
    count = sum(m["messageType"] == "System" for m in conversation["messages"])
    sign_in(page, dashboard.url, next_path=f"/conversations/{conversation['id']}")
    system = page.locator("li.message.system")
    expect(system).to_have_count(0)
    expect(page.locator(".toggle")).to_contain_text("hidden")

    with page.expect_navigation():
        page.click("text=Show system messages")
    expect(system).to_have_count(count)
    expect(system.first).to_be_visible()

    with page.expect_navigation():
        page.click("text=Hide system messages")
    expect(system).to_have_count(0)


@pytest.mark.parametrize("where", ["list", "conversation"])
def test_dark_mode_follows_the_system(
    new_context: ContextFactory,
    dashboard: DemoServer,
    demo_data: Dataset,
    where: str,
) -> None:
    path = "/conversations"
    if where == "conversation":
        path += "/" + alice_summaries(demo_data)[0]["id"]
    page = new_context(color_scheme="dark").new_page()
    sign_in(page, dashboard.url, next_path=path)
    assert path_of(page) == path

    def colours() -> tuple[float, float]:
        background, text = page.evaluate(
            "() => { const s = getComputedStyle(document.body);"
            " return [s.backgroundColor, s.color]; }"
        )
        return luminance(background), luminance(text)

    background, text = colours()
    assert background < 0.05 and text > 0.6, "dark background, light text"
    page.emulate_media(color_scheme="light")
    background, text = colours()
    assert background > 0.8 and text < 0.05, "light background, dark text"


def test_the_token_page_works_with_the_keyboard_alone(
    page: Page, dashboard: DemoServer
) -> None:
    page.goto(dashboard.url + "/token")
    focus_top_of_document(page)
    stops: list[str] = []
    while not page.evaluate("document.activeElement.id === 'token'"):
        assert len(stops) < 10, f"the token field is not among the Tab stops {stops}"
        page.keyboard.press("Tab")
        indicator = focus_indicator(page)
        assert indicator["style"] != "none" and indicator["width"] != "0px", indicator
        stops.append(indicator["element"])
    assert "Skip to content" in stops[0], stops
    page.keyboard.type(ALICE)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert path_of(page) == "/conversations"


def test_skip_link_is_the_first_tab_stop_and_moves_focus(
    page: Page, dashboard: DemoServer
) -> None:
    sign_in(page, dashboard.url)
    page.keyboard.press("Tab")
    skip = page.locator("a.skip")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    indicator = focus_indicator(page)
    assert indicator["style"] != "none" and indicator["width"] != "0px", indicator
    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()


def test_the_guard_catches_what_it_should(
    chromium: Browser, dashboard: DemoServer
) -> None:
    """A guard of its own (the test's guard must stay clean) sees each problem."""
    own = PageGuard()
    context = own.watch(chromium.new_context())
    try:
        page = context.new_page()
        page.goto(dashboard.url + "/token")
        page.evaluate("alert('hello')")
        page.evaluate("console.error('broken')")
        page.evaluate("setTimeout(() => { throw new Error('uncaught'); })")
        page.evaluate(
            "document.head.append(Object.assign(document.createElement('script'),"
            " {textContent: 'window.ran = true'}))"
        )
        page.wait_for_function("window.__cspViolations.length > 0")
        own.collect()
        # The dead proxy answers instead of the network.
        with pytest.raises(Exception, match="ERR_PROXY_CONNECTION_FAILED"):
            context.new_page().goto("http://192.0.2.1/")
    finally:
        context.close()
    found = "\n".join(own.problems)
    for expected in (
        "dialog (alert): 'hello'",
        "console error: broken",
        "page error: uncaught",
        "CSP violation: script-src-elem blocked",
        "request to another host: GET http://192.0.2.1/",
    ):
        assert expected in found
