"""The review workflow in Chromium (team mode): set a state, add a note on a
highlighted range, find the conversation in the queue, and read the trail
entry as an auditor. Real demo SSO provider and demo AIRisk API."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import BrowserContext, expect

from .harness import assert_accessible, serve_team_dashboard, sso_sign_in


@pytest.fixture(scope="module")
def review_dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_team_dashboard(
        tmp_path_factory.mktemp("review-browser"),
        tmp_path_factory.mktemp("idp"),
        AUDITOR_GROUPS=["security"],
    ) as base:
        yield base


def test_review_a_conversation_note_a_range_queue_and_trail(
    review_dashboard: str, new_context: Callable[..., BrowserContext]
) -> None:
    base = review_dashboard
    page = new_context().new_page()
    page.goto(base + "/")
    sso_sign_in(page, "sam")
    page.fill("#people-q", "bob")
    page.press("#people-q", "Enter")
    page.click(".people-list a")
    page.locator("table.conversations tbody a").first.click()
    expect(page).to_have_url(re.compile(r"/u/[0-9a-f-]+/conversations/[0-9a-f-]+"))
    detail = page.url.split("?")[0]
    cid = detail.rsplit("/", 1)[1]
    title = page.locator("h1").first.inner_text()
    expect(page.locator("[data-review-state]")).to_have_text("new")

    # One click: escalate.
    page.get_by_role("button", name="Mark escalated").click()
    expect(page.locator("[data-review-state]")).to_have_text("escalated")

    # Highlight messages 1..2 as evidence and write a note on them.
    ids = [
        str(a.get_attribute("href")).split("#m-")[1]
        for a in page.locator("a.permalink").all()[:2]
    ]
    page.goto(f"{detail}?highlight={ids[0]}..{ids[1]}")
    expect(page.locator(".highlight-notice")).to_be_visible()
    page.fill(".note-form textarea", "Shares a **customer list**; see here.")
    page.click(".note-form button[type=submit]")
    note = page.locator(".notes .note").first
    expect(note.locator("strong")).to_have_text("customer list")
    expect(note).to_contain_text(f"messages {ids[0]}..{ids[1]}")
    assert_accessible(page)

    # The queue lists it under "Escalated".
    page.click("text=Review queue")
    escalated = page.locator('table[data-queue="Escalated"]')
    expect(escalated).to_contain_text(cid)
    assert_accessible(page)

    # The auditor's trail has the change and the note.
    page.click("text=Access trail")
    page.fill("input[name=conversation]", cid)
    page.click(".audit-filters button[type=submit]")
    trail = page.locator("table.audit-trail")
    expect(trail).to_contain_text("review.change")
    expect(trail).to_contain_text("note.add")
    expect(trail).to_contain_text("conversation.view")
    assert_accessible(page)
    # "Who has seen this conversation" on its page, for an auditor.
    page.goto(detail)
    expect(page.locator("table.seen-by")).to_contain_text("sam")
    assert title
