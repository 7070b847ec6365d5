"""axe-core on every page type, in light and dark mode.

axe-core comes bundled in the axe-playwright-python package (no CDN). A
violation with impact "serious" or "critical" fails the test.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import BrowserContext, Page, expect

from webapp.demo_api import Dataset
from webapp.demo_api.server import DemoServer

from .harness import (
    FAILING_IMPACTS,
    describe,
    enter_token,
    sign_in,
    with_citations,
    with_system_messages,
)

UNKNOWN_CONVERSATION = "00000000-0000-4000-8000-000000000000"

axe = Axe()


def open_page_type(page: Page, kind: str, base: str, data: Dataset) -> None:
    """Bring ``page`` to one page type and check it is the state meant."""
    if kind == "token":
        page.goto(base + "/token")
        expect(page.locator("#token")).to_be_visible()
    elif kind == "token-error":
        page.goto(base + "/token")
        enter_token(page, "demo-expired")
        expect(page.locator("p.error")).to_be_visible()
    elif kind == "list":
        sign_in(page, base, next_path="/conversations")
        expect(page.locator("table.conversations tbody tr").first).to_be_visible()
    elif kind == "empty-list":
        sign_in(page, base, next_path="/conversations?page=999")
        expect(page.locator("p.empty")).to_be_visible()
    elif kind == "conversation":
        sign_in(page, base, next_path=f"/conversations/{with_citations(data)['id']}")
        expect(page.locator("li.message.ai sup.cite a").first).to_be_visible()
    elif kind == "conversation-system":
        conversation = with_system_messages(data)
        sign_in(page, base, next_path=f"/conversations/{conversation['id']}?system=1")
        expect(page.locator("li.message.system").first).to_be_visible()
    elif kind == "insights":
        sign_in(page, base, next_path="/insights")
        expect(page.locator("svg.chart").first).to_be_visible()
        # Check the data tables too, not only the charts.
        page.locator("details").evaluate_all("ds => ds.forEach(d => d.open = true)")
    elif kind == "verify":
        # The verify page with a verdict shown (no sign-in needed).
        page.goto(base + "/verify")
        page.locator("#file").set_input_files(
            {"name": "x.md", "mimeType": "text/markdown", "buffer": b"not signed"}
        )
        page.get_by_role("button", name="Verify").click()
        expect(page.locator("#verdict")).to_contain_text("Not valid")
    elif kind == "404":
        sign_in(page, base, next_path=f"/conversations/{UNKNOWN_CONVERSATION}")
        expect(page.locator("main")).to_contain_text("404")
    elif kind == "generic-token":
        # Refused at sign-in with an explanation (the 403 page it used to
        # land on shares error.html with the 404 above).
        sign_in(page, base, token="demo-generic", next_path="/conversations")
        expect(page.locator("main")).to_contain_text("application (generic) token")
    else:
        raise ValueError(kind)


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize(
    "kind",
    [
        "token",
        "token-error",
        "list",
        "empty-list",
        "conversation",
        "conversation-system",
        "insights",
        "verify",
        "404",
        "generic-token",
    ],
)
def test_no_serious_accessibility_violations(
    new_context: Callable[..., BrowserContext],
    dashboard: DemoServer,
    demo_data: Dataset,
    kind: str,
    scheme: str,
) -> None:
    page = new_context(color_scheme=scheme).new_page()
    open_page_type(page, kind, dashboard.url, demo_data)
    results = axe.run(page).response
    serious = [v for v in results["violations"] if v["impact"] in FAILING_IMPACTS]
    assert not serious, "\n".join(describe(v) for v in serious)
