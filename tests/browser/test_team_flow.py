"""Team mode in Chromium: SSO sign-in, pick a user, a shared link as another
reviewer. The real demo SSO provider (oidc-provider) and demo AIRisk API."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import BrowserContext, expect

from .harness import assert_accessible, serve_team_dashboard, sso_sign_in


@pytest.fixture(scope="module")
def team_dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_team_dashboard(
        tmp_path_factory.mktemp("team-browser"), tmp_path_factory.mktemp("idp")
    ) as base:
        yield base


def test_team_flow_sign_in_pick_and_share(
    team_dashboard: str, new_context: Callable[..., BrowserContext]
) -> None:
    base = team_dashboard
    first = new_context().new_page()
    first.goto(base + "/")
    sso_sign_in(first, "rita")
    expect(first).to_have_url(re.compile(r"/people$"))
    expect(first.locator("#signed-in-as")).to_contain_text("Rita Reyes")
    assert_accessible(first)
    first.fill("#people-q", "bob")
    first.press("#people-q", "Enter")
    expect(first.locator(".people-list a")).to_have_count(1)
    first.click(".people-list a")
    expect(first.locator("#viewing")).to_contain_text("Viewing: Bob Chen")
    assert_accessible(first)
    first.locator("table.conversations tbody a").first.click()
    expect(first).to_have_url(re.compile(r"/u/[0-9a-f-]+/conversations/[0-9a-f-]+"))
    # A message's "Link", as the reviewer would copy it: ?at=<id>#m-<id>.
    href = first.locator("a.permalink").nth(1).get_attribute("href")
    assert href and "at=" in href and "#m-" in href
    shared = base + href
    title = first.locator("h1").first.inner_text()

    second = new_context().new_page()
    second.goto(shared)
    sso_sign_in(second, "sam")
    expect(second).to_have_url(shared)
    expect(second.locator("#signed-in-as")).to_contain_text("Sam Patel")
    expect(second.locator("#viewing")).to_contain_text("Viewing: Bob Chen")
    expect(second.locator("h1").first).to_have_text(title)
    # Switch goes back to the picker.
    second.click("#switch-user")
    expect(second).to_have_url(re.compile(r"/people$"))
