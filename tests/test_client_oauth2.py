"""The AIRisk client's OAuth2 calls and ListUsers, against ``responses``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from webapp.airisk import (
    AIRiskClient,
    AIRiskError,
    AIRiskUser,
    AuthorizationDenied,
    BadResponse,
    ClientCredentials,
    ClientRejected,
    CodeRejected,
    Forbidden,
    OAuthFailed,
    StateMismatch,
    TokenRejected,
    Unavailable,
)
from webapp.airisk.client import ClientSettings
from webapp.demo_api import DEFAULT_CLIENT, create_demo_app
from webapp.demo_api.server import DemoServer

BASE = "https://airisk.test"
TOKEN = "generic-tok-0123456789"
SECRET = "client-secret-CANARY-7f3a"
REDIRECT = "https://dash.test/airisk/callback"
CREDS = ClientCredentials("dash-client", SECRET, REDIRECT)


@pytest.fixture
def api() -> AIRiskClient:
    return AIRiskClient(ClientSettings(base_url=BASE + "/", retries=0))


# -- ListUsers ----------------------------------------------------------------


def test_list_users_sends_exact_url_and_headers(
    api: AIRiskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(
        BASE + "/api/Users/ListUsers",
        json=[
            {
                "id": "u1",
                "userName": "alice.martin",
                "firstName": "Alice",
                "lastName": "Martin",
                "email": "Alice.Martin@Northwind.example",
                "companyId": "co",
                "extra": 1,
            },
            {"id": "u2", "userName": "bob", "email": None},
            {"id": "u3"},
            {"userName": "no id"},
            "not a user",
        ],
        match=[
            matchers.header_matcher(
                {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
            )
        ],
    )
    users = api.list_users(TOKEN)
    assert users == [
        AIRiskUser(
            "u1", "alice.martin", "Alice", "Martin", "Alice.Martin@Northwind.example"
        ),
        AIRiskUser("u2", "bob", "", "", ""),
        AIRiskUser("u3", "", "", "", ""),
    ]
    assert [u.display_name for u in users] == ["Alice Martin", "bob", "u3"]


def test_list_users_refuses_an_object(
    api: AIRiskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(BASE + "/api/Users/ListUsers", json={"users": []})
    with pytest.raises(BadResponse):
        api.list_users(TOKEN)


@pytest.mark.parametrize(("status", "error"), [(401, TokenRejected), (403, Forbidden)])
def test_list_users_maps_statuses(
    api: AIRiskClient,
    upstream: responses.RequestsMock,
    status: int,
    error: type[AIRiskError],
) -> None:
    upstream.get(BASE + "/api/Users/ListUsers", status=status)
    with pytest.raises(error):
        api.list_users(TOKEN)


# -- authorize (server-side, no redirect followed) ----------------------------


def redirect_to(location: str) -> dict[str, Any]:
    return {"status": 302, "headers": {"Location": location}}


def test_authorize_reads_code_and_state_from_location(
    api: AIRiskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(
        BASE + "/api/oauth2",
        match=[
            matchers.query_param_matcher(
                {
                    "client_id": "dash-client",
                    "redirect_uri": REDIRECT,
                    "state": "st-1",
                    "userid": "u-42",
                }
            )
        ],
        **redirect_to(REDIRECT + "?code=the-code&state=st-1"),
    )
    # The callback address must never be fetched: the redirect is not followed.
    upstream.get(REDIRECT, body=AssertionError("redirect followed"))
    grant = api.authorize(CREDS, state="st-1", user_id="u-42")
    assert grant.code == "the-code" and grant.state == "st-1"
    assert "the-code" not in repr(grant)
    request = upstream.calls[0].request
    assert "Authorization" not in request.headers
    assert SECRET not in (request.url or "")


def test_authorize_without_user_sends_no_userid(
    api: AIRiskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(
        BASE + "/api/oauth2",
        match=[
            matchers.query_param_matcher(
                {"client_id": "dash-client", "redirect_uri": REDIRECT, "state": "s"}
            )
        ],
        **redirect_to(REDIRECT + "?code=c&state=s"),
    )
    assert api.authorize(CREDS, state="s").code == "c"


@pytest.mark.parametrize(
    ("answer", "error", "detail"),
    [
        (
            {"status": 400, "body": "Invalid client_id", "content_type": "text/plain"},
            ClientRejected,
            "Invalid client_id",
        ),
        (
            {
                "status": 400,
                "body": "Invalid redirect_uri",
                "content_type": "text/plain",
            },
            ClientRejected,
            "Invalid redirect_uri",
        ),
        (
            {"status": 400, "body": "Invalid userid", "content_type": "text/plain"},
            OAuthFailed,
            "Invalid userid",
        ),
        (
            {"status": 400, "body": "<script>x</script>", "content_type": "text/plain"},
            OAuthFailed,
            "unrecognised",
        ),
        (
            {"status": 401, "json": {"title": "Unauthorized", "status": 401}},
            ClientRejected,
            "HTTP 401",
        ),
        (
            {"status": 200, "body": "<html>Sign in to AIRisk</html>"},
            OAuthFailed,
            "HTTP 200 instead of a redirect",
        ),
        (
            redirect_to(REDIRECT + "?error=access_denied&state=s"),
            AuthorizationDenied,
            "access_denied",
        ),
        (
            redirect_to(REDIRECT + "?error=%3Cb%3Ex&state=s"),
            AuthorizationDenied,
            "unrecognised",
        ),
        (redirect_to(REDIRECT + "?state=s"), OAuthFailed, "no code"),
        (redirect_to(REDIRECT + "?code=c&state=other"), StateMismatch, "state"),
        (redirect_to(REDIRECT + "?code=c"), StateMismatch, "state"),
        (
            redirect_to("https://login.airisk.test/?code=c&state=s"),
            OAuthFailed,
            "elsewhere",
        ),
        ({"status": 302}, OAuthFailed, "no Location"),
        ({"status": 500, "body": "boom"}, BadResponse, "HTTP 500"),
        ({"status": 503}, Unavailable, "HTTP 503"),
    ],
)
def test_authorize_errors_are_typed_and_never_echo_the_body(
    api: AIRiskClient,
    upstream: responses.RequestsMock,
    caplog: pytest.LogCaptureFixture,
    answer: dict[str, Any],
    error: type[AIRiskError],
    detail: str,
) -> None:
    upstream.get(BASE + "/api/oauth2", **answer)
    with caplog.at_level(logging.DEBUG), pytest.raises(error) as raised:
        api.authorize(CREDS, state="s")
    assert type(raised.value) is error
    assert detail in raised.value.detail
    for text in (raised.value.detail, raised.value.message, str(raised.value)):
        assert "<script>" not in text and "<html>" not in text and "<b>" not in text
    assert "<script>" not in caplog.text and "Sign in to AIRisk" not in caplog.text


def test_authorize_network_failure_is_unavailable(
    api: AIRiskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(BASE + "/api/oauth2", body=requests.ConnectionError("down"))
    with pytest.raises(Unavailable):
        api.authorize(CREDS, state="s")


# -- exchange ------------------------------------------------------------------


def test_exchange_posts_the_documented_form(
    api: AIRiskClient, upstream: responses.RequestsMock
) -> None:
    upstream.post(
        BASE + "/api/oauth2/Token",
        json={"access_token": "user-tok-1", "expiration": "2026-12-07T11:00:00Z"},
        match=[
            matchers.urlencoded_params_matcher(
                {
                    "client_id": "dash-client",
                    "client_secret": SECRET,
                    "code": "the-code",
                    "redirect_uri": REDIRECT,
                    "userid": "u-42",
                }
            ),
            matchers.header_matcher({"Accept": "application/json"}),
        ],
    )
    token = api.exchange_code(CREDS, "the-code", user_id="u-42")
    assert token.access_token == "user-tok-1"
    assert token.expiration == datetime(2026, 12, 7, 11, 0, tzinfo=UTC)
    assert token.user_id == "u-42"
    assert "user-tok-1" not in repr(token)
    request = upstream.calls[0].request
    assert "Authorization" not in request.headers
    assert request.url == BASE + "/api/oauth2/Token"


def test_exchange_without_user_sends_no_userid(
    api: AIRiskClient, upstream: responses.RequestsMock
) -> None:
    upstream.post(
        BASE + "/api/oauth2/Token",
        json={"access_token": "gen", "expiration": "2026-12-07T11:00:00.1234567"},
        match=[
            matchers.urlencoded_params_matcher(
                {
                    "client_id": "dash-client",
                    "client_secret": SECRET,
                    "code": "c",
                    "redirect_uri": REDIRECT,
                }
            )
        ],
    )
    token = api.exchange_code(CREDS, "c")
    assert token.user_id is None
    # A zone-less date is UTC, as everywhere in AIRisk.
    assert token.expiration == datetime(2026, 12, 7, 11, 0, 0, 123456, tzinfo=UTC)


def test_exchange_without_expiration_assumes_a_short_life(
    api: AIRiskClient, upstream: responses.RequestsMock
) -> None:
    upstream.post(BASE + "/api/oauth2/Token", json={"access_token": "t"})
    before = datetime.now(UTC)
    token = api.exchange_code(CREDS, "c")
    assert before < token.expiration <= datetime.now(UTC) + timedelta(minutes=5)


@pytest.mark.parametrize(
    ("answer", "error", "detail"),
    [
        (
            {"status": 400, "body": "Invalid Code", "content_type": "text/plain"},
            CodeRejected,
            "Invalid Code",
        ),
        (
            {"status": 400, "body": "Invalid client_id", "content_type": "text/plain"},
            ClientRejected,
            "Invalid client_id",
        ),
        (
            {
                "status": 401,
                "json": {"type": "x", "title": "Unauthorized", "status": 401},
                "content_type": "application/problem+json",
            },
            ClientRejected,
            "HTTP 401",
        ),
        ({"status": 200, "body": "<html>hi</html>"}, BadResponse, "not JSON"),
        ({"status": 200, "json": ["x"]}, BadResponse, "object"),
        (
            {"status": 200, "json": {"expiration": "2030-01-01"}},
            BadResponse,
            "access_token",
        ),
        ({"status": 200, "json": {"access_token": ""}}, BadResponse, "access_token"),
        (redirect_to("https://elsewhere.test/"), BadResponse, "HTTP 302"),
        ({"status": 500, "body": SECRET}, BadResponse, "HTTP 500"),
    ],
)
def test_exchange_errors_are_typed_and_never_echo_the_body(
    api: AIRiskClient,
    upstream: responses.RequestsMock,
    caplog: pytest.LogCaptureFixture,
    answer: dict[str, Any],
    error: type[AIRiskError],
    detail: str,
) -> None:
    upstream.post(BASE + "/api/oauth2/Token", **answer)
    with caplog.at_level(logging.DEBUG), pytest.raises(error) as raised:
        api.exchange_code(CREDS, "c")
    assert type(raised.value) is error
    assert detail in raised.value.detail
    assert SECRET not in raised.value.detail and SECRET not in caplog.text
    assert "<html>" not in raised.value.detail


def test_exchange_is_not_retried(upstream: responses.RequestsMock) -> None:
    # A POST that reached AIRisk may have spent the code; never send it twice.
    api = AIRiskClient(ClientSettings(base_url=BASE, retries=3))
    upstream.post(BASE + "/api/oauth2/Token", status=503)
    with pytest.raises(Unavailable):
        api.exchange_code(CREDS, "c")
    assert len(upstream.calls) == 1


def test_the_secret_is_never_in_a_repr() -> None:
    assert SECRET not in repr(CREDS) and SECRET not in str(CREDS)
    assert "dash-client" in repr(CREDS)


def test_oauth_errors_are_not_token_rejections() -> None:
    # A refused client or code must not sign the person out as a 401 would.
    for error in (ClientRejected, CodeRejected, AuthorizationDenied, StateMismatch):
        assert issubclass(error, OAuthFailed)
        assert not issubclass(error, TokenRejected)


# -- against the real demo API on loopback ---------------------------------------


@pytest.fixture(scope="module")
def demo_api() -> Iterator[str]:
    app = create_demo_app(oauth_client=DEFAULT_CLIENT)
    with DemoServer(app) as server:
        yield server.url


@pytest.mark.slow
def test_the_whole_flow_against_the_demo_api(demo_api: str) -> None:
    api = AIRiskClient(ClientSettings(base_url=demo_api, retries=0))
    creds = ClientCredentials(
        DEFAULT_CLIENT.client_id,
        DEFAULT_CLIENT.client_secret,
        DEFAULT_CLIENT.redirect_uris[0],
    )
    grant = api.authorize(creds, state="s1")
    generic = api.exchange_code(creds, grant.code)
    assert generic.seconds_left(datetime.now(UTC)) > 3500
    users = api.list_users(generic.access_token)
    bob = next(u for u in users if u.email == "bob.chen@northwind.example")
    assert bob.display_name == "Bob Chen"
    with pytest.raises(CodeRejected):
        api.exchange_code(creds, grant.code)
    user_grant = api.authorize(creds, state="s2", user_id=bob.id)
    token = api.exchange_code(creds, user_grant.code, user_id=bob.id)
    rows = api.list_conversations(token.access_token, results=5)
    assert rows and {row.user_id for row in rows} == {bob.id}
    with pytest.raises(Forbidden):
        api.list_users(token.access_token)
    wrong = ClientCredentials(creds.client_id, "not-the-secret", creds.redirect_uri)
    with pytest.raises(ClientRejected):
        api.exchange_code(wrong, api.authorize(creds, state="s3").code)
    elsewhere = ClientCredentials(creds.client_id, "x", "http://evil.test/cb")
    with pytest.raises(ClientRejected):
        api.authorize(elsewhere, state="s4")
