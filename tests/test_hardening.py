"""Headers on every response, CSRF across sites, request limits."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import responses
from flask.testing import FlaskClient
from support import BASE, make_app
from support.fake_airisk import TOKEN

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'; img-src 'self'"
)


def form_token(page: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert match
    return match.group(1)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/token"),
        ("GET", "/conversations"),
        ("GET", "/nowhere"),
        ("POST", "/conversations"),
        ("POST", "/logout"),
        ("GET", "/static/style.css"),
        ("GET", "/healthz"),
        ("GET", "/conversations/a.b"),
    ],
)
def test_security_headers_on_every_response(
    signed_in: FlaskClient, method: str, path: str
) -> None:
    with signed_in.open(path, method=method) as response:
        headers = response.headers
    assert headers["Content-Security-Policy"] == CSP
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert headers["X-Frame-Options"] == "DENY"
    assert "Strict-Transport-Security" not in headers, "only over HTTPS"
    if not path.startswith("/static/"):
        assert headers["Cache-Control"] == "no-store"


def test_no_inline_script_or_style_in_any_template() -> None:
    root = Path(__file__).resolve().parent.parent / "templates"
    for template in root.rglob("*.html"):
        text = template.read_text()
        scripts = re.findall(r"<script\b[^>]*>", text)
        assert all(" src=" in tag for tag in scripts), template
        assert not re.search(r"<style\b|\sstyle=", text), template
        assert not re.search(r"\son[a-z]+\s*=", text), template
        assert "javascript:" not in text, template


def test_hsts_and_secure_forms_over_https(tmp_path: Path) -> None:
    app = make_app(tmp_path, SESSION_COOKIE_SECURE=True)
    client = app.test_client()
    https = {"base_url": "https://reviews.example"}
    response = client.get("/token", **https)
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    token = form_token(response.get_data(as_text=True))
    # Flask-WTF on HTTPS wants a same-origin Referer; our Referrer-Policy
    # sends one for same-origin form posts.
    with responses.RequestsMock() as mock:
        mock.get(BASE + "/api/Chat/GetConversations", json=[])
        same_site = client.post(
            "/token",
            data={"csrf_token": token, "token": TOKEN},
            headers={"Referer": "https://reviews.example/token"},
            **https,
        )
    assert same_site.status_code == 303
    cookies = same_site.headers.getlist("Set-Cookie")
    assert cookies and all("Secure" in cookie for cookie in cookies)


def test_cross_site_posts_are_refused(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    client = app.test_client()
    https = {"base_url": "https://reviews.example"}
    token = form_token(client.get("/token", **https).get_data(as_text=True))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(BASE + "/api/Chat/GetConversations", json=[])
        # A page on another site cannot read our CSRF token...
        forged = client.post("/token", data={"token": "attacker-token-123456"}, **https)
        assert forged.status_code == 400
        # ...and even with a stolen one, a cross-site Referer is refused.
        cross = client.post(
            "/token",
            data={"csrf_token": token, "token": "attacker-token-123456"},
            headers={"Referer": "https://evil.example/"},
            **https,
        )
        assert cross.status_code == 400
        missing = client.post(
            "/token",
            data={"csrf_token": token, "token": "attacker-token-1234"},
            **https,
        )
        assert missing.status_code == 400
        assert len(mock.calls) == 0, "no token was planted"
    theme = client.post("/theme", data={"theme": "dark"})
    assert theme.status_code == 400 and "theme" not in (
        theme.headers.get("Set-Cookie") or ""
    )


def test_large_requests_are_refused(client: FlaskClient) -> None:
    response = client.post("/token", data={"token": "x" * 200_000})
    assert response.status_code == 413
    assert "too large" in response.get_data(as_text=True)


def test_session_cookie_is_generic_and_http_only(signed_in: FlaskClient) -> None:
    cookie = signed_in.get_cookie("session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"


def test_demo_server_does_not_reveal_versions() -> None:
    from webapp.cli import QuietRequestHandler

    handler = QuietRequestHandler.__new__(QuietRequestHandler)
    assert handler.version_string() == "airisk-viewer"
