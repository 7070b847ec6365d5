"""A canary token never leaks: not in a body, header, URL, log line or repr.

The canary is driven through every route and every error path (the real demo
API for the happy paths, ``responses`` for each failure) while every logger
is captured at DEBUG.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from flask.testing import FlaskClient
from support import BASE, csrf_token, enter_token, make_app

from webapp.airisk import BearerAuth
from webapp.demo_api.server import DemoServer

# The demo API accepts "<token>@<unix time>", so the canary is a real,
# working token there: every success path really runs with it.
CANARY = "demo-alice@4102444800"
CANARY_PARTS = ("4102444800", "demo-alice@")


class Everything(logging.Handler):
    """Collect every formatted log record, exceptions included."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
        self.lines.append(repr(record.args))


@pytest.fixture
def logs() -> Any:
    handler = Everything()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    loggers = [logging.getLogger(n) for n in ("webapp", "werkzeug", "urllib3")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(previous)
    for lg, level in zip(loggers, levels, strict=True):
        lg.setLevel(level)


def leaks(text: str) -> bool:
    return any(part in text for part in CANARY_PARTS)


def check(response: Any) -> None:
    """Assert the canary is in no part of a response."""
    body = response.get_data(as_text=True)
    assert not leaks(body), response.request.path
    for name, value in response.headers.items():
        assert not leaks(value), name


def test_canary_through_every_route_against_the_real_api(
    demo_api: DemoServer, tmp_path: Path, logs: Any
) -> None:
    app = make_app(tmp_path, AIRISK_BASE_URL=demo_api.url)
    client = app.test_client()
    dataset = demo_api.app.extensions["airisk_demo"]  # type: ignore[attr-defined]
    cid = dataset.summaries[dataset.user_id_for("demo-alice")][0]["id"]
    check(enter_token(client, CANARY, next_path="/conversations?page=2"))
    paths = [
        "/",
        "/token",
        "/token?next=/conversations&reason=expired",
        "/conversations",
        "/conversations?page=2&size=50",
        "/conversations?format=json",
        "/conversations?q=policy",
        "/conversations?q=policy&format=json",
        "/conversations?flagged=1&sort=cost",
        "/conversations/export.csv?q=policy",
        "/conversations/export.json",
        f"/conversations/{cid}",
        f"/conversations/{cid}?system=1&find=the",
        f"/conversations/{cid}?format=json",
        f"/conversations/{cid}/export.md",
        f"/conversations/{cid}/export.json",
        f"/conversations/{cid}/export.html",
        "/conversations/not-a-real-id",
        "/conversations/..%2Fx",
        "/nowhere",
        "/healthz",
        "/readyz",
    ]
    for path in paths:
        check(client.get(path))
    check(client.post("/logout"))  # no CSRF token: refused
    check(
        client.post(
            "/logout", data={"csrf_token": csrf_token(client, "/conversations")}
        )
    )
    assert not [line for line in logs.lines if leaks(line)]


@pytest.mark.parametrize(
    "reply",
    [
        {"status": 401},
        {"status": 403},
        {"status": 404},
        {"status": 429, "headers": {"Retry-After": "5"}},
        {"status": 500},
        {"status": 503},
        {"body": requests.ConnectionError("refused")},
        {"body": requests.ReadTimeout("slow")},
        {"body": "<html>", "content_type": "text/html"},
        {"body": RuntimeError("unexpected")},
    ],
)
def test_canary_through_every_error_path(
    tmp_path: Path, logs: Any, reply: dict[str, Any]
) -> None:
    app = make_app(tmp_path)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    client: FlaskClient = app.test_client()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        check_call = mock.get(BASE + "/api/Chat/GetConversations", json=[])
        mock.get(BASE + "/api/Chat/ListAgents", json=[])
        check(enter_token(client, CANARY))
        mock.remove(check_call)
        mock.get(BASE + "/api/Chat/GetConversations", **reply)
        mock.get(BASE + "/api/Chat/GetConversation/c1", **reply)
        for path in (
            "/conversations?refresh=1",
            "/conversations/c1?refresh=1",
            "/conversations?q=x&refresh=1",
        ):
            check(client.get(path))
        sent = [c.request for c in mock.calls]
    # The one call without the token: the address probe after a 404.
    probes = [c for c in sent if "Authorization" not in c.headers]
    assert all(c.url == BASE + "/api/Chat/ListAgents" for c in probes)
    sent = [c for c in sent if c not in probes]
    assert sent and all(c.headers["Authorization"] == f"Bearer {CANARY}" for c in sent)
    assert all(not leaks(c.url or "") for c in sent), "never in a URL"
    assert not [line for line in logs.lines if leaks(line)]


def test_rejected_canary_is_not_echoed(tmp_path: Path, logs: Any) -> None:
    client = make_app(tmp_path).test_client()
    with responses.RequestsMock() as mock:
        mock.get(BASE + "/api/Chat/GetConversations", status=401)
        response = enter_token(client, CANARY)
    assert response.status_code == 401
    check(response)
    assert 'value="' + CANARY not in response.get_data(as_text=True)
    assert not [line for line in logs.lines if leaks(line)]


def test_reprs_and_exceptions_hide_the_token(tmp_path: Path) -> None:
    auth = BearerAuth(CANARY)
    assert not leaks(repr(auth)) and not leaks(str(auth))
    app = make_app(tmp_path)
    cipher = app.extensions["airisk_cipher"]
    assert not leaks(repr(cipher))
    client = app.extensions["airisk"].client
    with responses.RequestsMock() as mock:
        mock.get(BASE + "/api/Chat/ListAgents", status=500)
        with pytest.raises(Exception) as raised:
            client.list_agents(CANARY)
    assert not leaks(str(raised.value)) and not leaks(repr(raised.value))
    assert not leaks(str(raised.value.__cause__ or ""))
