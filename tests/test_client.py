"""The AIRisk client against a fake AIRisk at the HTTP layer (``responses``)."""

from __future__ import annotations

import gzip
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from webapp.airisk import (
    AIRiskClient,
    AIRiskError,
    BadResponse,
    BearerAuth,
    ClientSettings,
    Forbidden,
    NotFound,
    RateLimited,
    TokenRejected,
    Unavailable,
    UpstreamTimeout,
    WrongBaseURL,
)
from webapp.airisk import client as client_module
from webapp.airisk.cache import TTLCache
from webapp.airisk.service import AIRiskService, CachePolicy

BASE = "https://airisk.test"
TOKEN = "tok-abcdef-0123456789"


@pytest.fixture
def api() -> AIRiskClient:
    return AIRiskClient(ClientSettings(base_url=BASE + "/", retries=0))


def summary(**fields: Any) -> dict[str, Any]:
    item = {
        "id": "c1",
        "userID": "u1",
        "botID": "a1",
        "title": "Expense policy",
        "promptTokens": 10,
        "completionTokens": 20,
        "totalTokens": 30,
        "hasFlag": False,
        "hasMore": False,
        "removedFromHistory": False,
        "messages": [],
        "metaData": ["finance"],
        "functionCalls": [],
        "currentCost": 0.5,
        "companyId": "co",
        "lastUpdated": "2026-11-28T10:00:00.1234567",
        "createdDate": "2026-11-27T09:00:00Z",
    }
    item.update(fields)
    return item


def test_list_conversations_sends_exact_url_and_headers(
    api: AIRiskClient, upstream: responses.RequestsMock
) -> None:
    # The agent goes in the path, the form every vendor example uses.
    upstream.get(
        BASE + "/api/Chat/GetConversations/a1",
        json=[summary()],
        match=[
            matchers.query_param_matcher(
                {"results": "50", "skip": "100", "metadatasearch": "pii"}
            ),
            matchers.header_matcher(
                {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
            ),
        ],
    )
    rows = api.list_conversations(TOKEN, results=50, skip=100, tag="pii", agent_id="a1")
    assert [row.id for row in rows] == ["c1"]
    row = rows[0]
    assert row.title == "Expense policy"
    assert row.agent_id == "a1" and row.user_id == "u1"
    assert row.total_tokens == 30 and row.cost == 0.5
    assert row.updated == datetime(2026, 11, 28, 10, 0, 0, 123456, tzinfo=UTC)
    assert row.created == datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    assert row.metadata == ("finance",)


def test_defaults_match_the_contract(
    api: AIRiskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(
        BASE + "/api/Chat/GetConversations",
        json=[],
        match=[
            matchers.query_param_matcher(
                {"results": "20", "skip": "0", "metadatasearch": ""}
            )
        ],
    )
    assert api.list_conversations(TOKEN) == []


def test_agent_filter_uses_the_documented_path_form(
    api: AIRiskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(BASE + "/api/Chat/GetConversations/agent-7", json=[])
    api.list_conversations(TOKEN, agent_id="agent-7", tag="a b")
    (call,) = upstream.calls
    assert call.request.url == (
        BASE + "/api/Chat/GetConversations/agent-7?results=20&skip=0&metadatasearch=a+b"
    )


def test_get_conversation_encodes_id_and_parses_messages(
    api: AIRiskClient, upstream: responses.RequestsMock
) -> None:
    body = summary(
        id="abc-123",
        messages=[
            {"id": "m1", "messageType": "System", "text": "You are helpful"},
            {
                "id": "m2",
                "messageType": "User",
                "text": "Hi",
                "fileName": "a.pdf",
                "fileURL": "https://files/a.pdf",
            },
            {
                "id": "m3",
                "messageType": "AI",
                "text": "See 【4:0†source】",
                "feedback": "Like",
                "citations": [{"id": "c", "title": "Policy", "url": "https://x"}],
            },
            "not a message",
            {"messageType": "AI", "text": "no id"},
        ],
    )
    upstream.get(BASE + "/api/Chat/GetConversation/abc-123", json=body)
    conversation = api.get_conversation(TOKEN, "abc-123")
    kinds = [(m.id, m.kind) for m in conversation.messages]
    assert kinds == [("m1", "system"), ("m2", "user"), ("m3", "ai"), ("n3", "ai")]
    assert conversation.messages[1].file_name == "a.pdf"
    assert conversation.messages[2].feedback == "Like"
    assert conversation.messages[2].citations[0].title == "Policy"


def test_service_caches_per_token_and_forgets_at_sign_out(
    api: AIRiskClient, upstream: responses.RequestsMock
) -> None:
    call = upstream.get(
        BASE + "/api/Chat/ListAgents",
        json=[{"id": "a1", "name": "Finance bot", "description": None}, {"x": 1}],
    )
    service = AIRiskService(api, TTLCache(maxsize=64), CachePolicy())
    assert [a.name for a in service.agents(TOKEN)] == ["Finance bot"]
    assert service.agents(TOKEN)[0].description == ""
    assert call.call_count == 1
    service.agents("another-token-xyz")
    assert call.call_count == 2, "a cache entry is never shared between tokens"
    service.agents(TOKEN, fresh=True)
    assert call.call_count == 3, "refresh bypasses the cache"
    service.forget(TOKEN)
    service.agents(TOKEN)
    assert call.call_count == 4, "sign-out drops the token's cache"
    service.agents("another-token-xyz")
    assert call.call_count == 4, "other tokens keep theirs"


def _at_once(count: int, call: Callable[[], Any]) -> list[Any]:
    """Run ``call`` in ``count`` threads released together; return results."""
    start = threading.Barrier(count)

    def run() -> Any:
        start.wait()
        try:
            return call()
        except AIRiskError as error:
            return error

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: run(), range(count)))


def test_concurrent_first_views_fetch_the_agents_once(
    api: AIRiskClient, upstream: responses.RequestsMock
) -> None:
    def slow(request: Any) -> tuple[int, dict[str, str], str]:
        time.sleep(0.3)  # the other threads arrive while this call is out
        return 200, {}, json.dumps([{"id": "a1", "name": "Finance bot"}])

    call = upstream.add_callback(responses.GET, BASE + "/api/Chat/ListAgents", slow)
    service = AIRiskService(api, TTLCache(maxsize=64), CachePolicy(agents=0))
    results = _at_once(8, lambda: service.agents(TOKEN))
    assert [[a.name for a in r] for r in results] == [["Finance bot"]] * 8
    assert call.call_count == 1


def test_waiters_fetch_for_themselves_when_the_first_fetch_fails(
    api: AIRiskClient, upstream: responses.RequestsMock
) -> None:
    calls = []

    def first_fails(request: Any) -> tuple[int, dict[str, str], str]:
        calls.append(request)
        if len(calls) == 1:
            time.sleep(0.3)
            return 403, {}, ""
        return 200, {}, json.dumps([{"id": "a1", "name": "Finance bot"}])

    upstream.add_callback(responses.GET, BASE + "/api/Chat/ListAgents", first_fails)
    service = AIRiskService(api, TTLCache(maxsize=64), CachePolicy())
    results = _at_once(4, lambda: service.agents(TOKEN))
    errors = [r for r in results if isinstance(r, AIRiskError)]
    assert len(errors) == 1, "only the failed call's own caller sees its error"
    assert sum(isinstance(r, list) for r in results) == 3


@pytest.mark.parametrize(
    "bad_id",
    [
        "../Users/ListUsers",
        "..",
        "a/b",
        "a%2Fb",
        "a?b=1",
        "a#b",
        "a\r\nX-Injected: 1",
        "x" * 129,
        "\u0430bc",  # Cyrillic a
        "",
        "a.b",
    ],
)
def test_bad_conversation_ids_never_reach_airisk(
    api: AIRiskClient, upstream: responses.RequestsMock, bad_id: str
) -> None:
    with pytest.raises(NotFound):
        api.get_conversation(TOKEN, bad_id)
    assert len(upstream.calls) == 0


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, TokenRejected),
        (403, Forbidden),
        (404, WrongBaseURL),
        (429, RateLimited),
        (500, BadResponse),
        (502, BadResponse),
        (503, Unavailable),
        (504, UpstreamTimeout),
        (400, BadResponse),
        (302, BadResponse),
    ],
)
def test_status_codes_map_to_typed_errors(
    api: AIRiskClient, upstream: responses.RequestsMock, status: int, error: type
) -> None:
    upstream.get(
        BASE + "/api/Chat/ListAgents",
        status=status,
        headers={"Location": "https://elsewhere.test/"} if status == 302 else {},
        json={"type": "about:blank", "title": "x", "status": status},
    )
    with pytest.raises(error) as raised:
        api.list_agents(TOKEN)
    assert TOKEN not in str(raised.value)
    assert len(upstream.calls) == 1, "redirects are not followed"


def test_rate_limit_keeps_retry_after(
    api: AIRiskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(
        BASE + "/api/Chat/ListAgents", status=429, headers={"Retry-After": "30"}
    )
    with pytest.raises(RateLimited) as raised:
        api.list_agents(TOKEN)
    assert raised.value.retry_after == 30


@pytest.mark.parametrize(
    ("exception", "error"),
    [
        (requests.ConnectionError("refused"), Unavailable),
        (requests.ConnectTimeout("slow"), UpstreamTimeout),
        (requests.ReadTimeout("slow"), UpstreamTimeout),
    ],
)
def test_network_failures_map_to_typed_errors(
    api: AIRiskClient,
    upstream: responses.RequestsMock,
    exception: Exception,
    error: type,
) -> None:
    upstream.get(BASE + "/api/Chat/ListAgents", body=exception)
    with pytest.raises(error):
        api.list_agents(TOKEN)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("<html><body>Sign in</body></html>", "text/html"),
        ('[{"id": "c1"', "application/json"),
        ('{"id": "c1"}', "application/json"),  # an object where a list belongs
        ("", "application/json"),
        ("[" * 100_000, "application/json"),
    ],
)
def test_unusable_bodies_are_bad_responses(
    api: AIRiskClient, upstream: responses.RequestsMock, body: str, content_type: str
) -> None:
    upstream.get(
        BASE + "/api/Chat/GetConversations", body=body, content_type=content_type
    )
    with pytest.raises(BadResponse):
        api.list_conversations(TOKEN)


def test_conversation_must_be_an_object(
    api: AIRiskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(BASE + "/api/Chat/GetConversation/c1", json=[summary()])
    with pytest.raises(BadResponse):
        api.get_conversation(TOKEN, "c1")


def test_body_over_the_size_cap_is_refused(upstream: responses.RequestsMock) -> None:
    api = AIRiskClient(ClientSettings(base_url=BASE, retries=0, max_bytes=1000))
    upstream.get(BASE + "/api/Chat/ListAgents", json=[{"id": "a", "name": "x" * 2000}])
    with pytest.raises(BadResponse):
        api.list_agents(TOKEN)


def test_gzip_body_is_capped_after_decoding(upstream: responses.RequestsMock) -> None:
    api = AIRiskClient(ClientSettings(base_url=BASE, retries=0, max_bytes=10_000))
    bomb = gzip.compress(b"[" + b" " * 5_000_000 + b"]")
    upstream.get(
        BASE + "/api/Chat/ListAgents",
        body=bomb,
        headers={"Content-Encoding": "gzip"},
        content_type="application/json",
    )
    with pytest.raises(BadResponse):
        api.list_agents(TOKEN)


def test_lenient_parsing_of_odd_payloads(
    api: AIRiskClient, upstream: responses.RequestsMock
) -> None:
    odd = [
        summary(
            id="c1",
            title=None,
            totalTokens=None,
            promptTokens="12",
            currentCost={"totalCost": 0.25, "promptCost": 0.1},
            hasFlag=None,
            metaData=None,
            lastUpdated="2026-11-28T10:00:00+02:00",
            createdDate="not a date",
            unknownField={"nested": True},
        ),
        summary(id="c2", currentCost=None, messages=None, functionCalls=None),
        summary(id="c3", currentCost="0.75", totalTokens=12.0, hasFlag="yes"),
        {"title": "no id is skipped"},
        42,
    ]
    upstream.get(BASE + "/api/Chat/GetConversations", json=odd)
    c1, c2, c3 = api.list_conversations(TOKEN)
    assert c1.title == "" and c1.total_tokens is None and c1.prompt_tokens == 12
    assert c1.cost == 0.25 and c1.flagged is None and c1.metadata == ()
    assert c1.updated == datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    assert c1.created is None
    assert c2.cost is None
    assert c3.cost == 0.75 and c3.total_tokens == 12 and c3.flagged is None


def test_nan_and_lone_surrogates_do_not_leak_through(
    api: AIRiskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(
        BASE + "/api/Chat/GetConversations",
        body='[{"id": "c1", "title": "bad \\ud800 text", "currentCost": NaN,'
        ' "totalTokens": Infinity}]',
        content_type="application/json",
    )
    (row,) = api.list_conversations(TOKEN)
    assert row.title == "bad \ufffd text"
    row.title.encode("utf-8")
    assert row.cost is None and row.total_tokens is None


def test_negative_zero_cost_is_zero(
    api: AIRiskClient, upstream: responses.RequestsMock
) -> None:
    # -0.0 == 0.0 with the same hash, so a kept row rendered for one would be
    # shown for the other: "$-0.0000" must never be rendered at all.
    upstream.get(BASE + "/api/Chat/GetConversations", json=[summary(currentCost=-0.0)])
    (row,) = api.list_conversations(TOKEN)
    assert row.cost == 0.0 and math.copysign(1.0, row.cost or 0.0) == 1.0


def test_bearer_auth_repr_hides_the_token() -> None:
    auth = BearerAuth(TOKEN)
    assert TOKEN not in repr(auth)
    request = requests.Request("GET", BASE, auth=auth).prepare()
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_sessions_ignore_environment_proxies_and_netrc(
    api: AIRiskClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine airisk.test login stolen password stolen\n")
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    with responses.RequestsMock() as mock:
        mock.get(BASE + "/api/Chat/ListAgents", json=[])
        api.list_agents(TOKEN)
        sent = mock.calls[0].request
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert api._session().trust_env is False


def test_retry_policy_is_get_only_and_ignores_retry_after() -> None:
    api = AIRiskClient(ClientSettings(base_url=BASE, retries=2))
    retry = api._session().get_adapter(BASE).max_retries
    assert retry.allowed_methods == frozenset({"GET"})
    assert retry.respect_retry_after_header is False
    assert retry.read == 0 and retry.total == 2
    assert 429 not in retry.status_forcelist


def test_check_token_asks_for_a_single_row(
    api: AIRiskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(
        BASE + "/api/Chat/GetConversations",
        json=[],
        match=[
            matchers.query_param_matcher(
                {"results": "1", "skip": "0", "metadatasearch": ""}
            )
        ],
    )
    api.check_token(TOKEN)
    assert json.loads("[]") == []


def test_identical_large_bodies_reuse_their_parsed_records(
    api: AIRiskClient, upstream: responses.RequestsMock
) -> None:
    messages = [
        {"id": f"m{i}", "messageType": "AI", "text": "x" * 100} for i in range(800)
    ]
    big = summary(id="c1", messages=messages)
    changed = summary(id="c1", messages=[*messages[:-1], {"id": "m799", "text": "new"}])
    url = BASE + "/api/Chat/GetConversation/c1"
    upstream.get(url, json=big)
    first = api.get_conversation(TOKEN, "c1")
    second = api.get_conversation(TOKEN, "c1")
    assert second is first, "an identical body is not parsed again"
    upstream.replace(responses.GET, url, json=changed)
    third = api.get_conversation(TOKEN, "c1")
    assert third is not first and third.messages[-1].text == "new"
    small = summary(id="c2")
    upstream.get(BASE + "/api/Chat/GetConversation/c2", json=small)
    assert api.get_conversation(TOKEN, "c2") is not api.get_conversation(TOKEN, "c2")


def test_an_identical_list_page_reuses_its_parsed_rows(
    api: AIRiskClient, upstream: responses.RequestsMock
) -> None:
    rows = [summary(id=f"c{i}", title=f"Question {i}") for i in range(50)]
    upstream.get(BASE + "/api/Chat/GetConversations", json=rows)
    first = api.list_conversations(TOKEN, results=50)
    again = api.list_conversations(TOKEN, results=50)
    assert all(a is b for a, b in zip(again, first, strict=True)), "not parsed again"
    first.clear()  # each caller gets its own list: this changes nobody else's
    assert len(api.list_conversations(TOKEN, results=50)) == 50
    rows[7]["title"] = "Renamed"
    upstream.replace(responses.GET, BASE + "/api/Chat/GetConversations", json=rows)
    changed = api.list_conversations(TOKEN, results=50)
    assert changed[0] is not again[0] and changed[7].title == "Renamed"


def test_kept_bodies_are_bounded_in_bytes(
    api: AIRiskClient, upstream: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "_REUSE_MAX_BYTES", 24 * 1024)
    for n in range(6):  # six bodies of about 5 KiB each
        body = summary(id=f"p{n}", title="t" * 5000)
        upstream.get(BASE + f"/api/Chat/GetConversation/p{n}", json=body)
    kept = [api.get_conversation(TOKEN, f"p{n}") for n in range(6)]
    assert api.get_conversation(TOKEN, "p5") is kept[5], "the newest is kept"
    assert api.get_conversation(TOKEN, "p0") is not kept[0], "the oldest went first"
    # No body over a quarter of the budget is kept: it would push out the rest.
    upstream.get(
        BASE + "/api/Chat/GetConversation/big", json=summary(id="big", title="t" * 7000)
    )
    assert api.get_conversation(TOKEN, "big") is not api.get_conversation(TOKEN, "big")
    assert api.get_conversation(TOKEN, "p5") is kept[5]


@pytest.mark.parametrize("path", ["/api/Chat/ListAgents", "/api/Chat/GetConversations"])
def test_a_404_from_the_list_endpoints_means_a_wrong_base_url(
    api: AIRiskClient, upstream: responses.RequestsMock, path: str
) -> None:
    upstream.get(BASE + path, status=404)
    call = api.list_agents if path.endswith("ListAgents") else api.list_conversations
    with pytest.raises(WrongBaseURL) as raised:
        call(TOKEN)
    assert not isinstance(raised.value, NotFound)
    assert "AIRISK_BASE_URL" in raised.value.message
    assert raised.value.title != NotFound.title


def test_an_unknown_agent_is_no_conversations_when_the_api_answers(
    api: AIRiskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(BASE + "/api/Chat/GetConversations/gone", status=404)
    # The probe (no token) finds the API: only the agent is unknown.
    upstream.get(BASE + "/api/Chat/ListAgents", status=401)
    assert api.list_conversations(TOKEN, agent_id="gone") == []
    probe = upstream.calls[-1].request
    assert "Authorization" not in probe.headers


def test_a_404_for_a_conversation_checks_the_base_url(
    api: AIRiskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(BASE + "/api/Chat/GetConversation/c1", status=404)
    upstream.get(BASE + "/api/Chat/ListAgents", status=401)
    with pytest.raises(NotFound):
        api.get_conversation(TOKEN, "c1")
    wrong = AIRiskClient(ClientSettings(base_url=BASE + "/tenant", retries=0))
    upstream.get(BASE + "/tenant/api/Chat/GetConversation/c1", status=404)
    upstream.get(BASE + "/tenant/api/Chat/ListAgents", status=404)
    with pytest.raises(WrongBaseURL):
        wrong.get_conversation(TOKEN, "c1")


@pytest.mark.parametrize(
    "reply",
    [
        {"status": 204},
        {"status": 200, "body": ""},
        {"status": 200, "body": "  "},
        {"status": 200, "body": "null"},
    ],
)
def test_an_empty_conversation_answer_is_not_found(
    api: AIRiskClient, upstream: responses.RequestsMock, reply: dict[str, Any]
) -> None:
    upstream.get(BASE + "/api/Chat/GetConversation/c1", **reply)
    with pytest.raises(NotFound) as raised:
        api.get_conversation(TOKEN, "c1")
    assert raised.value.title == "Conversation not found"


def test_numeric_message_types_are_parsed(
    api: AIRiskClient, upstream: responses.RequestsMock
) -> None:
    # A .NET enum serialised as a number (the documented names' order).
    types = [0, 1, 2, "1", 2.0, 7, None]
    body = summary(
        id="c1",
        messages=[
            {"id": f"m{i}", "messageType": t, "text": "x"} for i, t in enumerate(types)
        ],
    )
    upstream.get(BASE + "/api/Chat/GetConversation/c1", json=body)
    messages = api.get_conversation(TOKEN, "c1").messages
    assert [m.kind for m in messages] == [
        "user",
        "ai",
        "system",
        "ai",
        "system",
        "other",
        "other",
    ]
    assert [m.label for m in messages][:3] == ["User", "AI", "System"]
    assert messages[5].label == "Type 7"
    assert messages[2].is_system


@pytest.mark.parametrize(
    ("meta", "tags"),
    [
        ('["finance", "pii"]', ("finance", "pii")),
        ('  ["a", 3, null, ""] ', ("a", "3")),
        ('"urgent"', ("urgent",)),
        ('{"topic": "hr", "region": "emea"}', ("topic: hr", "region: emea")),
        ("plain words", ("plain words",)),
        ("", ()),
        ("[]", ()),
        ("null", ()),
        (["kept", 5, None], ("kept", "5")),
    ],
)
def test_metadata_as_a_json_string_is_parsed(
    api: AIRiskClient, upstream: responses.RequestsMock, meta: Any, tags: tuple
) -> None:
    upstream.get(BASE + "/api/Chat/GetConversations", json=[summary(metaData=meta)])
    (row,) = api.list_conversations(TOKEN)
    assert row.metadata == tags


def test_refused_ids_are_logged_once_without_the_token(
    api: AIRiskClient,
    upstream: responses.RequestsMock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for _ in range(3):
        with pytest.raises(NotFound):
            api.get_conversation(TOKEN, "odd.id")
        assert api.list_conversations(TOKEN, agent_id="agent/../x") == []
    assert len(upstream.calls) == 0
    refused = [r.getMessage() for r in caplog.records if "id pattern" in r.getMessage()]
    assert len(refused) == 2, refused
    assert "'odd.id'" in refused[0] and "'agent/../x'" in refused[1]
    assert not any(TOKEN in r.getMessage() for r in caplog.records)
