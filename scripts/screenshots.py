"""Regenerate the documentation screenshots with Debian's Chromium.

Run ``make screenshots`` (or ``.venv/bin/python scripts/screenshots.py [--out DIR]``).
It serves the demo AIRisk API and the dashboard on free loopback ports, signs in
as ``demo-alice`` and writes ``token.png``, ``list.png``, ``conversation.png``,
``conversation-dark.png``, ``search.png``, ``highlight.png`` and ``insights.png``
to ``docs/screenshots/``. Nothing leaves the machine.

The browser tests import this module: they launch Chromium with
:func:`launch_chromium` and run :func:`take` into a temporary folder, so this
command keeps working.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    sync_playwright,
)

from webapp import create_app
from webapp.demo_api import create_demo_app
from webapp.demo_api.server import DemoServer

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
TOKEN = "demo-alice"

#: Debian's Chromium (``apt-get install chromium``); Playwright's own browser
#: download needs network access that CI machines do not have.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Every request that is not to loopback goes to this closed port and fails, so
#: no page can reach the network even by mistake.
DEAD_PROXY = {"server": "http://127.0.0.1:9", "bypass": "127.0.0.1,localhost"}

ContextFactory = Callable[..., BrowserContext]

PAGE_VIEWPORT = {"width": 1200, "height": 1250}
TOKEN_VIEWPORT = {"width": 1200, "height": 700}
INSIGHTS_VIEWPORT = {"width": 1200, "height": 1600}


class ChromiumMissing(RuntimeError):
    """Debian's Chromium is not installed where it is expected."""


def launch_chromium(playwright: Playwright) -> Browser:
    """Launch headless Debian Chromium, with every non-loopback request failing.

    :raises ChromiumMissing: if ``/usr/bin/chromium`` does not exist.
    """
    if not CHROMIUM.exists():
        raise ChromiumMissing(
            f"{CHROMIUM} is missing: install Debian's Chromium with "
            "`apt-get install -y chromium fonts-dejavu-core` (.ci/run does this). "
            "`playwright install` is not used: it needs network access."
        )
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, proxy=DEAD_PROXY
    )


def open_page(page: Page, url: str) -> None:
    """Load ``url`` in ``page``.

    :raises RuntimeError: if the dashboard does not answer 200.
    """
    response = page.goto(url)
    if response is None or response.status != 200:
        status = response.status if response else "no response"
        raise RuntimeError(f"{url} answered {status}, not 200")


def enter_token(page: Page, token: str) -> None:
    """Type ``token`` into the token page that ``page`` shows and submit it."""
    page.fill("#token", token)
    with page.expect_navigation():
        page.press("#token", "Enter")


def showcase_conversation(page: Page, base: str) -> str:
    """Return the path of the newest conversation whose first AI answer shows
    a citation and Markdown (a list or a table).

    :raises LookupError: if no conversation on the first list page has one.
    :raises RuntimeError: if a page does not load.
    """
    open_page(page, f"{base}/conversations?size=100")
    paths = page.locator("table.conversations td.title a").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )
    for path in paths:
        open_page(page, base + path)
        answer = page.locator("li.message.ai").first
        if (
            answer.count()
            and answer.locator("sup.cite a").count()
            and answer.locator(".message-body :is(ul, ol, table)").count()
        ):
            return str(path)
    raise LookupError("no conversation whose first answer has a citation")


def highlighted_range(page: Page, base: str) -> str:
    """Return the path of the showcase conversation with its first three
    messages highlighted and a find (the README's evidence example)."""
    path = showcase_conversation(page, base).split("?")[0]
    ids = page.locator("li.message").evaluate_all(
        "items => items.map(li => li.id.slice(2))"
    )
    last = ids[min(2, len(ids) - 1)]
    return f"{path}?highlight={ids[0]}..{last}&find=procedure"


def _shoot(page: Page, path: Path, written: list[Path]) -> None:
    page.screenshot(path=path, animations="disabled", caret="hide")
    written.append(path)


def capture(new_context: ContextFactory, base: str, out: Path) -> list[Path]:
    """Sign in to the dashboard at ``base`` and write the screenshots to ``out``.

    :raises LookupError: if the demo data has no conversation worth showing.
    :raises RuntimeError: if a page does not load.
    """
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    context = new_context(viewport=TOKEN_VIEWPORT, color_scheme="light")
    try:
        page = context.new_page()
        open_page(page, f"{base}/token")
        _shoot(page, out / "token.png", written)
        page.set_viewport_size(PAGE_VIEWPORT)
        enter_token(page, TOKEN)
        open_page(page, f"{base}/conversations")
        _shoot(page, out / "list.png", written)
        open_page(page, base + showcase_conversation(page, base))
        _shoot(page, out / "conversation.png", written)
        page.emulate_media(color_scheme="dark")
        _shoot(page, out / "conversation-dark.png", written)
        page.emulate_media(color_scheme="light")
        open_page(page, f"{base}/conversations?q=policy")
        page.wait_for_selector("table.conversations")
        _shoot(page, out / "search.png", written)
        open_page(page, base + highlighted_range(page, base))
        _shoot(page, out / "highlight.png", written)
        # Taller, so the totals, the top lists and the first chart all show.
        page.set_viewport_size(INSIGHTS_VIEWPORT)
        open_page(page, f"{base}/insights")
        page.wait_for_selector("svg.chart")
        _shoot(page, out / "insights.png", written)
    finally:
        context.close()
    return written


def take(out: Path, new_context: ContextFactory | None = None) -> list[Path]:
    """Serve the demo API and the dashboard on free loopback ports and write the
    screenshots to ``out``; ``new_context`` (the tests') replaces launching
    Chromium here.

    :raises ChromiumMissing: if Chromium is needed and not installed.
    :raises LookupError: if the demo data has no conversation worth showing.
    :raises RuntimeError: if a page does not load.
    """
    with (
        tempfile.TemporaryDirectory(prefix="airisk-screenshots-") as sessions,
        DemoServer(create_demo_app()) as api,
    ):
        dashboard = create_app(
            {
                "AIRISK_BASE_URL": api.url,
                "SECRET_KEY": secrets.token_urlsafe(32),
                "SESSION_DIR": sessions,
            }
        )
        with DemoServer(dashboard) as server:
            if new_context is not None:
                return capture(new_context, server.url, out)
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                try:
                    return capture(browser.new_context, server.url, out)
                finally:
                    browser.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Take the screenshots; print where they went."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="folder to write to")
    args = parser.parse_args(argv)
    # One access-log line per request would bury the result.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    try:
        written = take(args.out)
    except ChromiumMissing as exc:
        print(exc, file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
