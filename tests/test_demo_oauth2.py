"""Tests for the demo AIRisk API's OAuth2 endpoints and ListUsers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from webapp.demo_api import DemoOAuthClient, create_demo_app
from webapp.demo_api.data import Dataset

NOW = datetime(2026, 3, 4, 10, 30, 15, tzinfo=UTC)
CLIENT = DemoOAuthClient(
    client_id="dash-client",
    client_secret="dash-secret-0123456789",
    redirect_uris=("http://127.0.0.1:5000/airisk/callback", "http://dash.test/cb"),
)
REDIRECT = CLIENT.redirect_uris[0]
GENERIC = {"Authorization": "Bearer demo-generic"}


class Clock:
    """A settable clock for the demo's code and token expiry."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def app(clock: Clock) -> Flask:
    return create_demo_app(now=NOW, oauth_client=CLIENT, token_ttl=3600, clock=clock)


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture()
def data(app: Flask) -> Dataset:
    dataset: Dataset = app.extensions["airisk_demo"]
    return dataset


def authorize(client: FlaskClient, **params: str) -> TestResponse:
    query = {"client_id": CLIENT.client_id, "redirect_uri": REDIRECT, **params}
    return client.get("/api/oauth2", query_string=query)


def code_from(response: TestResponse) -> str:
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    return query["code"][0]


def exchange(
    client: FlaskClient, code: str, *, as_json: bool = False, **fields: str
) -> TestResponse:
    body = {
        "client_id": CLIENT.client_id,
        "client_secret": CLIENT.client_secret,
        "code": code,
        "redirect_uri": REDIRECT,
        **fields,
    }
    body = {k: v for k, v in body.items() if v != "<omit>"}
    if as_json:
        return client.post("/api/oauth2/Token", json=body)
    return client.post("/api/oauth2/Token", data=body)


def mint(client: FlaskClient, userid: str | None = None) -> dict[str, Any]:
    extra = {"userid": userid} if userid else {}
    response = exchange(client, code_from(authorize(client, **extra)), **extra)
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def assert_plain_400(response: TestResponse, text: str) -> None:
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.get_data(as_text=True) == text


def assert_problem_401(response: TestResponse) -> None:
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = json.loads(response.get_data())
    assert body["status"] == 401 and body["title"] and body["traceId"]


def test_authorize_redirects_with_code_and_state(client: FlaskClient) -> None:
    response = authorize(client, state="s-123")
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["s-123"]
    assert len(query["code"][0]) >= 32


def test_authorize_without_state_sends_none(client: FlaskClient) -> None:
    query = parse_qs(urlsplit(authorize(client).headers["Location"]).query)
    assert set(query) == {"code"}


def test_authorize_keeps_the_redirect_uris_own_query(app: Flask) -> None:
    client = DemoOAuthClient("c", "s", ("http://dash.test/cb?tenant=a",))
    demo = create_demo_app(now=NOW, oauth_client=client).test_client()
    response = demo.get(
        "/api/oauth2",
        query_string={"client_id": "c", "redirect_uri": client.redirect_uris[0]},
    )
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["tenant"] == ["a"] and "code" in query


@pytest.mark.parametrize(
    ("params", "text"),
    [
        ({"client_id": "someone-else"}, "Invalid client_id"),
        ({"client_id": ""}, "Invalid client_id"),
        ({"redirect_uri": "http://evil.test/cb"}, "Invalid redirect_uri"),
        ({"redirect_uri": REDIRECT + "/x"}, "Invalid redirect_uri"),
        ({"userid": "no-such-user"}, "Invalid userid"),
    ],
)
def test_authorize_errors_are_plain_text_and_never_redirect(
    client: FlaskClient, params: dict[str, str], text: str
) -> None:
    response = authorize(client, **params)
    assert_plain_400(response, text)
    assert "Location" not in response.headers


def test_a_generic_token_lists_users_and_is_refused_on_chat(
    client: FlaskClient, data: Dataset, clock: Clock
) -> None:
    body = mint(client)
    assert set(body) == {"access_token", "expiration"}
    assert datetime.fromisoformat(body["expiration"]).timestamp() == clock.now + 3600
    assert body["expiration"].endswith("Z")
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    users = client.get("/api/Users/ListUsers", headers=headers)
    assert users.status_code == 200
    assert users.get_json() == data.user_records
    chat = client.get("/api/Chat/GetConversations", headers=headers)
    assert chat.status_code == 403


def test_a_user_token_acts_as_that_user(client: FlaskClient, data: Dataset) -> None:
    bob = data.user_id_for("demo-bob")
    assert bob is not None
    token = mint(client, bob)["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    conversations = client.get("/api/Chat/GetConversations", headers=headers)
    assert conversations.status_code == 200
    assert {c["userID"] for c in conversations.get_json()} == {bob}
    assert client.get("/api/Users/ListUsers", headers=headers).status_code == 403


def test_the_exchange_accepts_json(client: FlaskClient) -> None:
    response = exchange(client, code_from(authorize(client)), as_json=True)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"


def test_a_code_works_once(client: FlaskClient) -> None:
    code = code_from(authorize(client))
    assert exchange(client, code).status_code == 200
    assert_plain_400(exchange(client, code), "Invalid Code")


def test_a_code_expires_after_a_minute(client: FlaskClient, clock: Clock) -> None:
    code = code_from(authorize(client))
    clock.now += 61
    assert_plain_400(exchange(client, code), "Invalid Code")


def test_a_code_just_inside_its_minute_works(client: FlaskClient, clock: Clock) -> None:
    code = code_from(authorize(client))
    clock.now += 59
    assert exchange(client, code).status_code == 200


@pytest.mark.parametrize(
    "fields",
    [
        {"code": "made-up"},
        {"code": "<omit>"},
        {"redirect_uri": "http://dash.test/cb"},
        {"redirect_uri": "<omit>"},
        {"userid": "someone"},
    ],
)
def test_a_code_must_match_how_it_was_asked_for(
    client: FlaskClient, fields: dict[str, str]
) -> None:
    code = code_from(authorize(client))
    response = exchange(client, fields.pop("code", code), **fields)
    assert_plain_400(response, "Invalid Code")


def test_a_user_code_needs_the_same_userid(client: FlaskClient, data: Dataset) -> None:
    bob = data.user_id_for("demo-bob")
    assert bob is not None
    code = code_from(authorize(client, userid=bob))
    assert_plain_400(exchange(client, code), "Invalid Code")
    # The failed attempt spent the code: it cannot be retried with the userid.
    assert_plain_400(exchange(client, code, userid=bob), "Invalid Code")


@pytest.mark.parametrize(
    "fields",
    [
        {"client_secret": "wrong"},
        {"client_secret": "<omit>"},
        {"client_id": "someone-else"},
        {"client_id": "<omit>"},
    ],
)
def test_a_bad_client_gets_a_401_problem(
    client: FlaskClient, fields: dict[str, str]
) -> None:
    code = code_from(authorize(client))
    assert_problem_401(exchange(client, code, **fields))


def test_a_wrong_secret_does_not_spend_the_code(client: FlaskClient) -> None:
    # Only the registered client can spend (or burn) its codes.
    code = code_from(authorize(client))
    assert_problem_401(exchange(client, code, client_secret="wrong"))
    assert exchange(client, code).status_code == 200


def test_minted_tokens_expire(client: FlaskClient, clock: Clock) -> None:
    token = mint(client)["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    clock.now += 3599
    assert client.get("/api/Users/ListUsers", headers=headers).status_code == 200
    clock.now += 1
    response = client.get("/api/Users/ListUsers", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_every_mint_is_a_new_token(client: FlaskClient) -> None:
    assert mint(client)["access_token"] != mint(client)["access_token"]


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_other_methods_are_405(client: FlaskClient, method: str) -> None:
    assert client.open("/api/oauth2/Token", method=method).status_code == 405


def test_list_users_has_names_and_emails_of_the_demo_users(
    client: FlaskClient, data: Dataset
) -> None:
    users = client.get("/api/Users/ListUsers", headers=GENERIC).get_json()
    assert len(users) >= 5
    for user in users:
        assert set(user) == {
            "id",
            "userName",
            "firstName",
            "lastName",
            "email",
            "companyId",
        }
        assert user["email"].endswith("@northwind.example")
    by_email = {u["email"]: u for u in users}
    alice = by_email["alice.martin@northwind.example"]
    assert (alice["firstName"], alice["lastName"]) == ("Alice", "Martin")
    assert alice["id"] == data.user_id_for("demo-alice")
    assert by_email["bob.chen@northwind.example"]["id"] == data.user_id_for("demo-bob")
    ids = {u["id"] for u in users}
    for token in ("demo-hostile", "demo-large"):
        assert data.user_id_for(token) in ids
    assert len(ids) == len(users)


def test_the_default_client_is_described() -> None:
    app = create_demo_app(now=NOW)
    registered = app.extensions["airisk_demo_oauth"].client
    assert registered.client_id and len(registered.client_secret) >= 16
    assert registered.redirect_uris
    assert registered.client_secret not in repr(registered)


def test_redirect_uris_parse_from_a_comma_separated_list() -> None:
    parsed = DemoOAuthClient.from_setting(
        "id", "secret", " http://a.test/cb , http://b.test/cb,"
    )
    assert parsed.redirect_uris == ("http://a.test/cb", "http://b.test/cb")
