"""Token entry, the server-side session, sign-out, and where users land."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient
from support import BASE, csrf_token, enter_token, make_app, page

from webapp.web.auth import REASONS

TOKEN = "alice-token-0123456789abcdef"
LIST_URL = BASE + "/api/Chat/GetConversations"
AGENTS_URL = BASE + "/api/Chat/ListAgents"


@pytest.fixture
def accepting(upstream: responses.RequestsMock) -> responses.RequestsMock:
    """AIRisk accepts every token and has no conversations."""
    upstream.get(LIST_URL, json=[])
    upstream.get(AGENTS_URL, json=[])
    return upstream


def session_cookie(client: FlaskClient) -> str | None:
    cookie = client.get_cookie("session")
    return cookie.value if cookie else None


def store_files(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "sessions").rglob("*") if p.is_file()]


def records(tmp_path: Path) -> list[dict[str, Any]]:
    """Return the signed-in sessions in the store (the records' data)."""
    found = []
    for path in (tmp_path / "sessions" / "signed-in").glob("*"):
        try:
            value = json.loads(path.read_bytes())
        except ValueError:
            continue
        if isinstance(value, dict) and isinstance(value.get("d"), dict):
            found.append(value["d"])
    return found


def test_token_page_explains_and_uses_a_password_field(client: FlaskClient) -> None:
    response = client.get("/token")
    assert response.status_code == 200
    doc = page(response)
    assert "An AIRisk access token is" in doc.text
    (field,) = doc.find_all("input", name="token")
    assert field["type"] == "password"
    assert "value" not in field


def test_home_without_session_goes_to_token_page(client: FlaskClient) -> None:
    response = client.get("/", follow_redirects=True)
    assert response.request.path == "/token"


def test_entering_a_token_signs_in_and_rotates_the_session_id(
    client: FlaskClient, accepting: responses.RequestsMock
) -> None:
    client.get("/token")
    anonymous_id = session_cookie(client)
    assert anonymous_id, "the token form keeps its CSRF token in a session"
    response = enter_token(client, TOKEN)
    assert urlsplit(response.headers["Location"]).path == "/conversations"
    signed_in_id = session_cookie(client)
    assert signed_in_id and signed_in_id != anonymous_id
    # The check call carried the token, as a bearer header.
    check = accepting.calls[0].request
    assert check.headers["Authorization"] == f"Bearer {TOKEN}"
    assert "results=1" in (check.url or "")
    # The old id is dead: presenting it again gives no session.
    client.set_cookie("session", anonymous_id)
    assert client.get("/conversations").status_code == 303


def test_the_page_shows_only_a_masked_suffix(
    client: FlaskClient, accepting: responses.RequestsMock
) -> None:
    enter_token(client, TOKEN)
    body = client.get("/conversations").get_data(as_text=True)
    assert TOKEN not in body
    assert TOKEN[:-4] not in body
    assert "\u2026" + TOKEN[-4:] in body
    assert "Sign out" in body


def test_token_is_stored_server_side_and_encrypted(
    client: FlaskClient, accepting: responses.RequestsMock, tmp_path: Path
) -> None:
    enter_token(client, TOKEN)
    cookie = session_cookie(client)
    assert cookie and TOKEN not in cookie and len(cookie) >= 40
    files = store_files(tmp_path)
    assert files
    for path in files:
        raw = path.read_bytes()
        assert TOKEN.encode() not in raw
        assert TOKEN[-8:].encode() not in raw


def test_rejected_token_is_not_stored(
    client: FlaskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(LIST_URL, status=401, json={"title": "Unauthorized", "status": 401})
    response = enter_token(client, TOKEN)
    assert response.status_code == 401
    assert "AIRisk rejected this token" in page(response).text
    assert TOKEN not in response.get_data(as_text=True)
    assert client.get("/conversations").status_code == 303


@pytest.mark.parametrize(
    ("raw", "sent"),
    [("  " + TOKEN + "\n", TOKEN), ("Bearer " + TOKEN, TOKEN)],
)
def test_pasted_whitespace_and_bearer_prefix_are_tolerated(
    client: FlaskClient, accepting: responses.RequestsMock, raw: str, sent: str
) -> None:
    enter_token(client, raw)
    auth = accepting.calls[0].request.headers["Authorization"]
    assert auth == f"Bearer {sent}"


@pytest.mark.parametrize("raw", ["", "   ", "two words", "t\u00f6ken-\u00e9", "a\x00b"])
def test_malformed_tokens_get_a_clear_message(
    client: FlaskClient, upstream: responses.RequestsMock, raw: str
) -> None:
    response = enter_token(client, raw)
    assert response.status_code == 400
    text = page(response).text
    assert "token" in text.lower()
    assert len(upstream.calls) == 0


def test_generic_token_is_explained_and_not_signed_in(
    client: FlaskClient, upstream: responses.RequestsMock, tmp_path: Path
) -> None:
    """Issue 14 item 12: no 403 page whose only link points back to itself."""
    upstream.get(LIST_URL, status=403)
    response = enter_token(client, TOKEN)
    assert response.status_code == 403
    doc = page(response)
    assert "application (generic) token" in doc.text
    assert "Paste a user token" in doc.text
    assert "team deployment" in doc.text
    (field,) = doc.find_all("input", name="token")
    assert "value" not in field, "the form is there to paste another token"
    assert records(tmp_path) == []
    assert client.get("/conversations").status_code == 303, "not signed in"


def test_token_form_requires_csrf(client: FlaskClient, upstream: Any) -> None:
    client.get("/token")
    response = client.post("/token", data={"token": TOKEN})
    assert response.status_code == 400
    assert "The form expired" in page(response).text
    assert len(upstream.calls) == 0


def test_logout_requires_post_and_csrf(
    client: FlaskClient, accepting: responses.RequestsMock
) -> None:
    enter_token(client, TOKEN)
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400
    assert client.get("/conversations").status_code == 200, "still signed in"


def test_logout_deletes_the_server_side_session(
    client: FlaskClient, accepting: responses.RequestsMock, tmp_path: Path
) -> None:
    enter_token(client, TOKEN)
    old_cookie = session_cookie(client)
    assert len(records(tmp_path)) == 1
    token = csrf_token(client, "/conversations")
    response = client.post("/logout", data={"csrf_token": token})
    assert parse_qs(urlsplit(response.headers["Location"]).query) == {
        "reason": ["signed_out"]
    }
    assert records(tmp_path) == []
    assert old_cookie
    client.set_cookie("session", old_cookie)
    assert client.get("/conversations").status_code == 303
    signed_out = client.get("/token?reason=signed_out")
    assert "You are signed out" in page(signed_out).text


def test_session_id_never_issued_is_not_adopted(
    client: FlaskClient, accepting: responses.RequestsMock
) -> None:
    client.set_cookie("session", "attacker-chosen-session-id-1234567890")
    enter_token(client, TOKEN)
    assert session_cookie(client) != "attacker-chosen-session-id-1234567890"


@pytest.mark.parametrize(
    "target",
    [
        "/conversations/abc?system=1",
        "/conversations?page=3&size=50&agent=a1&q=pii",
    ],
)
def test_next_brings_the_user_back_exactly(
    client: FlaskClient, accepting: responses.RequestsMock, target: str
) -> None:
    response = client.get(target)
    location = response.headers["Location"]
    assert urlsplit(location).path == "/token"
    assert parse_qs(urlsplit(location).query)["next"] == [target]
    form = client.get(location)
    (hidden,) = page(form).find_all("input", name="next")
    assert hidden["value"] == target
    answer = enter_token(client, TOKEN, next_path=target)
    assert answer.headers["Location"] == target


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/x",
        "/\\evil.example",
        "\\\\evil.example",
        "https://evil.example/",
        "https:evil.example",
        "http:/evil.example",
        "javascript:alert(1)",
        "/\t/evil.example",
        "/%09/evil.example".replace("%09", "\t"),
        " //evil.example",
        "\n//evil.example",
        "evil.example",
        "//%65vil.example",
        "/" + "a" * 3000,
    ],
)
def test_next_refuses_open_redirects(
    client: FlaskClient, accepting: responses.RequestsMock, target: str
) -> None:
    response = enter_token(client, TOKEN, next_path=target)
    assert response.headers["Location"] == "/conversations"


def test_slow_request_cannot_write_the_token_back_after_logout(
    tmp_path: Path, upstream: responses.RequestsMock
) -> None:
    """A page view in flight during sign-out must not resurrect the session."""
    app = make_app(tmp_path)
    started = threading.Event()
    release = threading.Event()

    def slow_list(request: Any) -> tuple[int, dict[str, str], str]:
        if "results=1" in request.url:
            return 200, {}, "[]"
        started.set()
        release.wait(5)
        return 200, {}, "[]"

    upstream.add_callback(responses.GET, LIST_URL, callback=slow_list)
    upstream.get(AGENTS_URL, json=[])
    browser = app.test_client()
    enter_token(browser, TOKEN)
    cookie = session_cookie(browser)
    assert cookie
    other_tab = app.test_client()
    other_tab.set_cookie("session", cookie)
    result: dict[str, int] = {}

    def view() -> None:
        result["status"] = other_tab.get("/conversations").status_code

    thread = threading.Thread(target=view)
    thread.start()
    assert started.wait(5)
    browser.post("/logout", data={"csrf_token": csrf_token(browser, "/token")})
    release.set()
    thread.join(5)
    assert result["status"] == 200
    assert records(tmp_path) == []
    fresh = app.test_client()
    fresh.set_cookie("session", cookie)
    assert fresh.get("/conversations").status_code == 303


def test_idle_timeout_ends_the_session(
    tmp_path: Path, accepting: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tmp_path, SESSION_IDLE_MINUTES=15)
    client = app.test_client()
    enter_token(client, TOKEN)
    assert client.get("/conversations").status_code == 200
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 16 * 60)
    response = client.get("/conversations?page=2")
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["reason"] == ["idle"]
    assert query["next"] == ["/conversations?page=2"]
    monkeypatch.setattr(time, "time", lambda: now)
    assert client.get("/conversations").status_code == 303, "session deleted"


@pytest.mark.parametrize(
    ("idle_minutes", "away_minutes", "reason"),
    [(15, 16, "idle"), (30, 61, "absolute")],
)
def test_the_token_page_says_why_after_the_store_expired_the_session(
    tmp_path: Path,
    accepting: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
    idle_minutes: int,
    away_minutes: int,
    reason: str,
) -> None:
    """The store drops an idle record by itself; the reason must still show."""
    import cachelib.file

    app = make_app(
        tmp_path, SESSION_IDLE_MINUTES=idle_minutes, SESSION_ABSOLUTE_HOURS=1
    )
    client = app.test_client()
    enter_token(client, TOKEN)
    now = time.time()
    if reason == "absolute":
        for minutes in (25, 50):  # active all along, so never idle
            monkeypatch.setattr(time, "time", lambda m=minutes: now + m * 60)
            assert client.get("/conversations").status_code == 200
    later = now + away_minutes * 60
    # The store's own clock too: it, not the dashboard, expires the record.
    monkeypatch.setattr(time, "time", lambda: later)
    monkeypatch.setattr(cachelib.file, "time", lambda: later)
    response = client.get("/conversations?page=2")
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["reason"] == [reason]
    assert query["next"] == ["/conversations?page=2"]
    shown = page(client.get(response.headers["Location"]))
    assert REASONS[reason] in shown.text
    again = client.get("/conversations")
    assert "reason" not in again.headers["Location"], "said once, not forever"


def test_a_first_visit_and_a_sign_out_give_no_inactivity_message(
    client: FlaskClient, accepting: responses.RequestsMock
) -> None:
    assert "reason" not in client.get("/conversations").headers["Location"]
    enter_token(client, TOKEN)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/token")})
    assert "reason" not in client.get("/conversations").headers["Location"]


def test_activity_extends_the_idle_timeout(
    tmp_path: Path, accepting: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tmp_path, SESSION_IDLE_MINUTES=15)
    client = app.test_client()
    enter_token(client, TOKEN)
    now = time.time()
    for minutes in (10, 20, 30):
        monkeypatch.setattr(time, "time", lambda m=minutes: now + m * 60)
        assert client.get("/conversations").status_code == 200


def test_absolute_timeout_ends_an_active_session(
    tmp_path: Path, accepting: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tmp_path, SESSION_IDLE_MINUTES=30, SESSION_ABSOLUTE_HOURS=1)
    client = app.test_client()
    enter_token(client, TOKEN)
    now = time.time()
    for minutes in (20, 40, 59):
        monkeypatch.setattr(time, "time", lambda m=minutes: now + m * 60)
        assert client.get("/conversations").status_code == 200
    monkeypatch.setattr(time, "time", lambda: now + 61 * 60)
    response = client.get("/conversations")
    assert "reason=absolute" in response.headers["Location"]


def test_anonymous_flood_cannot_evict_a_signed_in_session(
    tmp_path: Path, accepting: responses.RequestsMock
) -> None:
    app = make_app(tmp_path, SESSION_MAX_SIGNED_IN=2)
    user = app.test_client()
    enter_token(user, TOKEN)
    for _ in range(300):
        app.test_client().get("/token")
    assert user.get("/conversations").status_code == 200
    assert len(records(tmp_path)) == 1, "anonymous visits store nothing"


def test_forged_pickle_in_the_store_is_never_unpickled(
    client: FlaskClient, app: Flask, accepting: responses.RequestsMock, tmp_path: Path
) -> None:
    import pickle

    enter_token(client, TOKEN)
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> Any:
            return (open, (str(marker), "w"))

    for path in (tmp_path / "sessions" / "signed-in").glob("*"):
        header = path.read_bytes()[:4]
        if b'"t"' in path.read_bytes():
            path.write_bytes(header + pickle.dumps(Exploit()))
    response = client.get("/conversations")
    assert response.status_code == 303, "an unreadable record is no session"
    assert not marker.exists()


def test_store_records_are_plain_json(
    client: FlaskClient, accepting: responses.RequestsMock, tmp_path: Path
) -> None:
    enter_token(client, TOKEN)
    (record,) = records(tmp_path)
    assert set(record) >= {"t", "c", "s", "csrf_token"}


def test_rotated_secret_key_still_reads_old_sessions(
    tmp_path: Path, accepting: responses.RequestsMock
) -> None:
    old = make_app(tmp_path, SECRET_KEY="old-secret-key-0123456789abcdef")
    client = old.test_client()
    enter_token(client, TOKEN)
    cookie = session_cookie(client)
    assert cookie
    new = make_app(
        tmp_path,
        SECRET_KEY="new-secret-key-0123456789abcdef",
        SECRET_KEY_FALLBACKS=["old-secret-key-0123456789abcdef"],
    )
    fresh = new.test_client()
    fresh.set_cookie("session", cookie)
    assert fresh.get("/conversations").status_code == 200
    dropped = make_app(tmp_path, SECRET_KEY="new-secret-key-0123456789abcdef")
    gone = dropped.test_client()
    gone.set_cookie("session", cookie)
    assert gone.get("/conversations").status_code == 303


def test_cookie_flags(client: FlaskClient, accepting: responses.RequestsMock) -> None:
    client.get("/token")
    data = {"csrf_token": csrf_token(client), "token": TOKEN}
    response = client.post("/token", data=data)
    headers = response.headers.getlist("Set-Cookie")
    assert sorted(h.split("=", 1)[0] for h in headers) == ["session", "signed_in_at"]
    for header in headers:
        assert "HttpOnly" in header and "SameSite=Lax" in header
