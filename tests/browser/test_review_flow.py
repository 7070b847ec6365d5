"""The review workflow in Chromium (team mode): set a state, add a note on a
highlighted range, find the conversation in the queue, and read the trail
entry as an auditor. Real demo SSO provider and demo AIRisk API."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import BrowserContext, expect
from support import make_app

from webapp.demo_api import DemoOAuthClient, create_demo_app
from webapp.demo_api.idp import REVIEWER_GROUP, DemoIdentityProvider
from webapp.demo_api.server import DemoServer

from .harness import Late, assert_accessible, sso_sign_in


@pytest.fixture(scope="module")
def review_dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    late = Late()
    with DemoServer(late) as dashboard:
        base = dashboard.url
        client = DemoOAuthClient(
            "api-client", "api-secret", (f"{base}/airisk/callback",)
        )
        with DemoServer(create_demo_app(oauth_client=client)) as api:
            provider = DemoIdentityProvider(
                [
                    {
                        "client_id": "dashboard",
                        "client_secret": "sso-secret-0123456789",
                        "redirect_uris": [f"{base}/sso/callback"],
                        "post_logout_redirect_uris": [f"{base}/sso/signed-out"],
                    }
                ],
                workdir=tmp_path_factory.mktemp("idp"),
            )
            with provider:
                late.app = make_app(
                    tmp_path_factory.mktemp("review-browser"),
                    AUTH_MODE="team",
                    AIRISK_BASE_URL=api.url,
                    OIDC_ISSUER=provider.issuer,
                    OIDC_CLIENT_ID="dashboard",
                    OIDC_CLIENT_SECRET="sso-secret-0123456789",
                    REVIEWER_GROUPS=[REVIEWER_GROUP],
                    AUDITOR_GROUPS=["security"],
                    AIRISK_CLIENT_ID="api-client",
                    AIRISK_CLIENT_SECRET="api-secret",
                    AIRISK_REDIRECT_URI=f"{base}/airisk/callback",
                )
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
