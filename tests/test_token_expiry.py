"""Token mode: warn before a pasted token's own, known expiry (a JWT's exp)."""

from __future__ import annotations

import base64
import json
import time

import pytest
import responses
from flask.testing import FlaskClient
from support import BASE, enter_token, page

LIST_URL = BASE + "/api/Chat/GetConversations"
AGENTS_URL = BASE + "/api/Chat/ListAgents"


def jwt_like(**claims: object) -> str:
    def part(value: object) -> str:
        raw = json.dumps(value).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


@pytest.fixture
def accepting(upstream: responses.RequestsMock) -> responses.RequestsMock:
    upstream.get(LIST_URL, json=[])
    upstream.get(AGENTS_URL, json=[])
    return upstream


def test_a_token_that_expires_soon_is_announced(
    client: FlaskClient, accepting: responses.RequestsMock
) -> None:
    token = jwt_like(sub="u1", exp=int(time.time()) + 5 * 60 + 30)
    enter_token(client, token)
    shown = page(client.get("/conversations")).text
    assert "Your access token expires in 5 minutes" in shown
    assert token not in client.get("/conversations").get_data(as_text=True)


@pytest.mark.parametrize(
    "token",
    [
        jwt_like(sub="u1", exp=int(time.time()) + 3 * 3600),  # not soon
        jwt_like(sub="u1"),  # no exp
        jwt_like(sub="u1", exp="soon"),
        "opaque-token-0123456789",
        "a.b.c",
        "a.%%%.c",
    ],
)
def test_no_notice_without_a_known_near_expiry(
    client: FlaskClient, accepting: responses.RequestsMock, token: str
) -> None:
    enter_token(client, token)
    response = client.get("/conversations")
    assert response.status_code == 200
    assert "access token expires" not in page(response).text
