"""Team mode in Chromium: SSO sign-in, pick a user, a shared link as another
reviewer. The real demo SSO provider (oidc-provider) and demo AIRisk API."""

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
def team_dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
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
                    tmp_path_factory.mktemp("team-browser"),
                    AUTH_MODE="team",
                    AIRISK_BASE_URL=api.url,
                    OIDC_ISSUER=provider.issuer,
                    OIDC_CLIENT_ID="dashboard",
                    OIDC_CLIENT_SECRET="sso-secret-0123456789",
                    REVIEWER_GROUPS=[REVIEWER_GROUP],
                    AIRISK_CLIENT_ID="api-client",
                    AIRISK_CLIENT_SECRET="api-secret",
                    AIRISK_REDIRECT_URI=f"{base}/airisk/callback",
                )
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
