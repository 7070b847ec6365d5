"""What every browser test shares: the page guard and small page helpers.

Chromium itself is launched by ``scripts/screenshots.py`` (one place knows the
binary, its flags and the dead proxy that keeps pages off the network).
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote, urlsplit

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import (
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Page,
    Request,
    Response,
    expect,
)

from webapp.demo_api import Dataset, DemoOAuthClient, create_demo_app
from webapp.demo_api.idp import PASSWORD, REVIEWER_GROUP, DemoIdentityProvider
from webapp.demo_api.server import DemoServer

ROOT = Path(__file__).resolve().parents[2]
ALICE = "demo-alice"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}

#: Runs before any page script: keeps every CSP violation on ``window`` and
#: reports it to the test at once (the window's copy dies with the page).
CSP_RECORDER = """
(() => {
  window.__cspViolations = [];
  document.addEventListener("securitypolicyviolation", (event) => {
    const text = event.effectiveDirective + " blocked " +
      (event.blockedURI || "(inline)") + " in " + event.sourceFile + ":" +
      event.lineNumber;
    window.__cspViolations.push(text);
    if (typeof window.__reportCspViolation === "function") {
      window.__reportCspViolation(text);
    }
  }, true);
})();
"""


@functools.cache
def screenshots_module() -> ModuleType:
    """Import ``scripts/screenshots.py`` (a script, not a package module)."""
    path = ROOT / "scripts" / "screenshots.py"
    spec = importlib.util.spec_from_file_location("airisk_screenshots", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class PageGuard:
    """Record what must never happen in the dashboard's pages.

    Dialogs, console errors, uncaught exceptions, CSP violations, failed or
    error subresources and any request to a host other than loopback. A
    document answering 4xx on purpose (a 404 page) is not a problem; the
    "Failed to load resource" console line Chromium logs for it is ignored.
    """

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.pages: list[Page] = []
        self._error_documents: set[str] = set()

    def watch(self, context: BrowserContext) -> BrowserContext:
        """Attach the recorders to ``context`` and every page it opens."""
        context.add_init_script(CSP_RECORDER)
        context.expose_binding(
            "__reportCspViolation",
            lambda source, text: self._add(f"CSP violation: {text}"),
        )
        context.on("page", self._watch_page)
        context.on("request", self._on_request)
        context.on("response", self._on_response)
        context.on("requestfailed", self._on_request_failed)
        return context

    def collect(self) -> None:
        """Pick up CSP violations still held by open pages."""
        for page in self.pages:
            if page.is_closed():
                continue
            for text in page.evaluate("window.__cspViolations || []"):
                self._add(f"CSP violation: {text}")

    def check(self) -> None:
        """Fail with the list of problems, if any were recorded."""
        self.collect()
        if self.problems:
            listing = "\n  ".join(self.problems)
            raise AssertionError(f"the browser saw problems:\n  {listing}")

    def _add(self, problem: str) -> None:
        if problem not in self.problems:
            self.problems.append(problem)

    def _watch_page(self, page: Page) -> None:
        self.pages.append(page)
        page.on("dialog", self._on_dialog)
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self._add(f"page error: {error}"))

    def _on_dialog(self, dialog: Dialog) -> None:
        self._add(f"dialog ({dialog.type}): {dialog.message!r}")
        dialog.dismiss()

    def _on_console(self, message: ConsoleMessage) -> None:
        text, where = message.text, message.location.get("url", "")
        if "Content Security Policy" in text:
            self._add(f"CSP violation (console): {text}")
        elif message.type == "error":
            if text.startswith("Failed to load resource") and (
                where in self._error_documents
            ):
                return
            self._add(f"console error: {text} ({where})")

    def _on_request(self, request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in {"data", "blob", "about"}:
            return
        if parts.hostname not in LOOPBACK:
            self._add(f"request to another host: {request.method} {request.url}")

    def _on_response(self, response: Response) -> None:
        if response.status < 400:
            return
        if response.request.resource_type == "document":
            self._error_documents.add(response.url)
        else:
            self._add(f"{response.status} for {response.url}")

    def _on_request_failed(self, request: Request) -> None:
        # ERR_ABORTED is the browser cancelling a load, e.g. on navigating away.
        if request.failure != "net::ERR_ABORTED":
            self._add(f"request failed ({request.failure}): {request.url}")


def alice_summaries(data: Dataset) -> list[dict[str, Any]]:
    """Return demo-alice's conversations as the list shows them, newest first."""
    return list(data.summaries[data.user_id_for(ALICE) or ""])


def _alice_conversations(data: Dataset) -> list[dict[str, Any]]:
    user = data.user_id_for(ALICE) or ""
    return [c for c in data.users[user] if c["id"] != data.long_conversation_id]


def with_system_messages(data: Dataset) -> dict[str, Any]:
    """Return alice's newest conversation that has System messages."""
    return next(
        conv
        for conv in _alice_conversations(data)
        if any(m["messageType"] == "System" for m in conv["messages"])
    )


def with_citations(data: Dataset) -> dict[str, Any]:
    """Return alice's newest conversation whose first AI answer cites sources."""
    for conv in _alice_conversations(data):
        answers = [m for m in conv["messages"] if m["messageType"] == "AI"]
        if answers and answers[0]["citations"] and "\u3010" in answers[0]["text"]:
            return conv
    raise LookupError("no demo conversation with citations")


def enter_token(page: Page, token: str) -> None:
    """Type ``token`` into the token page ``page`` shows, press Enter, wait."""
    screenshots_module().enter_token(page, token)


def sign_in(page: Page, base: str, token: str = ALICE, next_path: str = "") -> None:
    """Open the token page (asking to go to ``next_path`` after) and sign in."""
    page.goto(f"{base}/token" + (f"?next={quote(next_path)}" if next_path else ""))
    enter_token(page, token)


def path_of(page: Page) -> str:
    """Return the path and query string the page shows, without the fragment."""
    parts = urlsplit(page.url)
    return parts.path + ("?" + parts.query if parts.query else "")


def focus_top_of_document(page: Page) -> None:
    """Move keyboard focus to the start of the document, where it arrives when
    a user tabs into the page from the browser's address bar."""
    page.evaluate(
        """() => {
          const body = document.body;
          body.tabIndex = -1;
          body.focus();
          body.removeAttribute("tabindex");
        }"""
    )


def focus_indicator(page: Page) -> dict[str, str]:
    """Return the focused element's tag and computed outline."""
    return page.evaluate(
        """() => {
          const el = document.activeElement;
          const style = getComputedStyle(el);
          return {
            element: el.outerHTML.slice(0, 80),
            style: style.outlineStyle,
            width: style.outlineWidth,
          };
        }"""
    )


def luminance(css_color: str) -> float:
    """Return the relative luminance (0 black .. 1 white) of ``rgb(r, g, b)``."""
    inner = css_color[css_color.index("(") + 1 : css_color.index(")")]
    channels = [float(v) / 255 for v in inner.replace("/", ",").split(",")[:3]]

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


FAILING_IMPACTS = {"serious", "critical"}


def describe(violation: dict[str, Any]) -> str:
    """Format one axe violation: rule, impact, each element and how to fix it."""
    lines = [f"{violation['id']} ({violation['impact']}): {violation['help']}"]
    for node in violation["nodes"]:
        lines.append(f"  at {', '.join(map(str, node['target']))}: {node['html']}")
        lines.append("    " + node["failureSummary"].replace("\n", "\n    "))
    return "\n".join(lines)


class Late:
    """A WSGI app set after the server binds (its address goes in the config)."""

    app: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.app(environ, start_response)


@contextmanager
def serve_team_dashboard(
    folder: Path, idp_folder: Path, **settings: Any
) -> Iterator[str]:
    """Serve a team-mode dashboard with the demo SSO provider and AIRisk API.

    Yield its base URL; ``settings`` are added to the app's configuration.
    """
    from support import make_app

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
                workdir=idp_folder,
            )
            with provider:
                late.app = make_app(
                    folder,
                    AUTH_MODE="team",
                    AIRISK_BASE_URL=api.url,
                    OIDC_ISSUER=provider.issuer,
                    OIDC_CLIENT_ID="dashboard",
                    OIDC_CLIENT_SECRET="sso-secret-0123456789",
                    REVIEWER_GROUPS=[REVIEWER_GROUP],
                    AIRISK_CLIENT_ID="api-client",
                    AIRISK_CLIENT_SECRET="api-secret",
                    AIRISK_REDIRECT_URI=f"{base}/airisk/callback",
                    **settings,
                )
                yield base


def assert_accessible(page: Page) -> None:
    """No serious axe-core violation on the page (the team header included)."""
    results = Axe().run(page).response
    serious = [v for v in results["violations"] if v["impact"] in FAILING_IMPACTS]
    assert not serious, "\n".join(describe(v) for v in serious)


def sso_sign_in(page: Page, login: str) -> None:
    """Fill the SSO provider's form (the page is on it)."""
    expect(page.locator("h1")).to_have_text("Northwind sign-in")
    page.fill("#login", login)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
