"""Tests for the built-in demo AIRisk API (webapp.demo_api)."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.error import HTTPError, URLError

import pytest
from flask import Flask
from flask.testing import FlaskClient

from webapp.demo_api import DEMO_TOKENS, create_demo_app
from webapp.demo_api.data import Dataset
from webapp.demo_api.server import DemoServer

NOW = datetime(2026, 3, 4, 10, 30, 15, tzinfo=UTC)
ALICE = {"Authorization": "Bearer demo-alice"}
BOB = {"Authorization": "Bearer demo-bob"}
GENERIC = {"Authorization": "Bearer demo-generic"}

AGENT_FIELDS = {"id", "name", "description", "botSuggestion"}
SUGGESTION_FIELDS = {
    "botID",
    "greeting",
    "imageName",
    "id",
    "version",
    "lastUpdated",
    "createdDate",
    "deleted",
    "updated",
    "added",
}
CONVERSATION_FIELDS = {
    "id",
    "userID",
    "botID",
    "title",
    "threadID",
    "vectorStoreID",
    "runID",
    "ipAddress",
    "promptTokens",
    "completionTokens",
    "totalTokens",
    "hasFlag",
    "hasMore",
    "removedFromHistory",
    "messages",
    "metaData",
    "functionCalls",
    "currentCost",
    "companyId",
    "lastUpdated",
    "createdDate",
}
MESSAGE_FIELDS = {
    "id",
    "messageType",
    "text",
    "feedback",
    "fileURL",
    "fileName",
    "file64",
    "fileIds",
    "citations",
}
CITATION_FIELDS = {
    "id",
    "title",
    "filepath",
    "url",
    "content",
    "chunk_id",
    "companyId",
    "lastUpdated",
    "createdDate",
}
COST_FIELDS = {
    "botID",
    "conversationID",
    "userID",
    "botName",
    "date",
    "promptTokens",
    "completionTokens",
    "totalTokens",
    "promptCost",
    "completionCost",
    "additionalCost",
    "totalCost",
    "id",
    "companyId",
    "lastUpdated",
    "createdDate",
}
MARKER = re.compile(r"【\d+:(\d+)†[^】]+】")


@pytest.fixture(scope="module")
def app() -> Flask:
    return create_demo_app(now=NOW)


@pytest.fixture(scope="module")
def data(app: Flask) -> Dataset:
    dataset: Dataset = app.extensions["airisk_demo"]
    return dataset


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="module")
def alice(data: Dataset) -> list[dict[str, Any]]:
    user_id = data.user_id_for("demo-alice")
    assert user_id is not None
    return data.users[user_id]


@pytest.fixture(scope="module")
def alice_messages(alice: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for conv in alice for m in conv["messages"]]


def parse(stamp: str) -> datetime:
    moment = datetime.fromisoformat(stamp)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/problem+json; charset=utf-8"
    body = response.get_json(force=True)
    assert {"type", "title", "status", "traceId"} <= body.keys()
    assert body["status"] == status
    return body


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "demo-alice"},
        {"Authorization": "Basic demo-alice"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Bearer demo-expired"},
        # "³" passes str.isdigit() but not int().
        {"Authorization": "Bearer demo-alice@\u00b3"},
    ],
)
@pytest.mark.parametrize(
    "path",
    ["/api/Chat/ListAgents", "/api/Chat/GetConversations", "/api/Users/ListUsers"],
)
def test_bad_tokens_get_401_problem(
    client: FlaskClient, headers: dict[str, str], path: str
) -> None:
    response = client.get(path, headers=headers)
    body = assert_problem(response, 401)
    assert body["title"] == "Unauthorized"
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


@pytest.mark.parametrize(
    "path",
    [
        "/api/Chat/ListAgents",
        "/api/Chat/GetConversations",
        "/api/Chat/GetConversations/some-agent",
        "/api/Chat/GetConversation/some-id",
    ],
)
def test_generic_token_is_forbidden_on_chat(client: FlaskClient, path: str) -> None:
    assert_problem(client.get(path, headers=GENERIC), 403)


@pytest.mark.parametrize("headers", [ALICE, BOB])
def test_user_tokens_are_forbidden_on_list_users(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    assert_problem(client.get("/api/Users/ListUsers", headers=headers), 403)


def test_generic_token_lists_users(client: FlaskClient, data: Dataset) -> None:
    response = client.get("/api/Users/ListUsers", headers=GENERIC)
    assert response.status_code == 200
    users = response.get_json()
    assert isinstance(users, list) and len(users) >= 2
    for user in users:
        assert set(user) == {
            "id",
            "userName",
            "firstName",
            "lastName",
            "email",
            "companyId",
        }
    assert {u["id"] for u in users} >= {
        data.user_id_for("demo-alice"),
        data.user_id_for("demo-bob"),
    }


def test_demo_tokens_are_described() -> None:
    assert set(DEMO_TOKENS) == {
        "demo-alice",
        "demo-bob",
        "demo-expired",
        "demo-generic",
        "demo-large",
        "demo-hostile",
    }
    assert all(desc and "\n" not in desc for desc in DEMO_TOKENS.values())


def test_agents_shape(client: FlaskClient, data: Dataset) -> None:
    response = client.get("/api/Chat/ListAgents", headers=ALICE)
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    agents = response.get_json()
    assert isinstance(agents, list) and len(agents) >= 4
    assert agents == data.agents
    assert any(agent["description"] is None for agent in agents)
    for agent in agents:
        assert set(agent) == AGENT_FIELDS
        assert 1 <= len(agent["botSuggestion"]) <= 3
        for suggestion in agent["botSuggestion"]:
            assert set(suggestion) == SUGGESTION_FIELDS
            assert suggestion["botID"] == agent["id"]
            assert suggestion["lastUpdated"].endswith("Z")
            assert parse(suggestion["createdDate"]) <= parse(suggestion["lastUpdated"])


def test_summaries_are_a_bare_array_newest_first(
    client: FlaskClient, alice: list[dict[str, Any]]
) -> None:
    response = client.get("/api/Chat/GetConversations", headers=ALICE)
    page = response.get_json()
    assert isinstance(page, list) and len(page) == 20  # default page size
    everything = client.get(
        "/api/Chat/GetConversations?results=1000", headers=ALICE
    ).get_json()
    assert [s["id"] for s in everything] == [c["id"] for c in alice]
    stamps = [parse(s["lastUpdated"]) for s in everything]
    assert stamps == sorted(stamps, reverse=True)
    for summary in everything:
        assert set(summary) == CONVERSATION_FIELDS
        assert summary["messages"] == []


def test_pagination_walk_covers_everything_once(
    client: FlaskClient, alice: list[dict[str, Any]]
) -> None:
    seen: list[str] = []
    skip = 0
    while True:
        page = client.get(
            f"/api/Chat/GetConversations?results=50&skip={skip}", headers=ALICE
        ).get_json()
        seen += [s["id"] for s in page]
        if len(page) < 50:
            break
        skip += 50
    assert len(alice) >= 261
    assert len(seen) == len(set(seen)) == len(alice)
    assert set(seen) == {c["id"] for c in alice}
    beyond = f"/api/Chat/GetConversations?results=50&skip={len(alice)}"
    assert client.get(beyond, headers=ALICE).get_json() == []


def test_agent_filter_by_query_and_path(client: FlaskClient, data: Dataset) -> None:
    agent_id = data.agents[0]["id"]
    by_query = client.get(
        f"/api/Chat/GetConversations?agentid={agent_id}&results=1000", headers=ALICE
    ).get_json()
    by_path = client.get(
        f"/api/Chat/GetConversations/{agent_id}?results=1000", headers=ALICE
    ).get_json()
    assert by_query == by_path
    assert by_query and all(s["botID"] == agent_id for s in by_query)
    unknown = client.get("/api/Chat/GetConversations/no-such-agent", headers=ALICE)
    assert unknown.status_code == 200 and unknown.get_json() == []
    blank = client.get("/api/Chat/GetConversations?agentid=", headers=ALICE)
    assert len(blank.get_json()) == 20


@pytest.mark.parametrize(
    "path",
    [
        "/api/Chat/GetConversations/{agent}?results=1000",
        "/api/Chat/GetConversations/{agent}/?results=1000",
        "/api/chat/getconversations/{agent}?results=1000",
        "/API/CHAT/GetConversations/{agent}/?results=1000",
        "/api/Chat/GetConversations/?agentid={agent}&results=1000",
        "/api/chat/GETCONVERSATIONS?agentid={agent}&results=1000",
    ],
)
def test_agent_filter_routes_as_aspnet_does(
    client: FlaskClient, data: Dataset, path: str
) -> None:
    # ASP.NET routing ignores the case of literal segments and a trailing slash.
    agent_id = data.agents[0]["id"]
    expected = client.get(
        f"/api/Chat/GetConversations/{agent_id}?results=1000", headers=ALICE
    ).get_json()
    response = client.get(path.format(agent=agent_id), headers=ALICE)
    assert response.status_code == 200
    assert response.get_json() == expected
    assert expected and all(s["botID"] == agent_id for s in expected)


@pytest.mark.parametrize(
    "path",
    [
        "/api/Chat/ListAgents/",
        "/api/chat/listagents",
        "/api/Chat/GetConversation/{cid}/",
        "/api/CHAT/getconversation/{cid}",
    ],
)
def test_other_paths_route_as_aspnet_does(
    client: FlaskClient, alice: list[dict[str, Any]], path: str
) -> None:
    response = client.get(path.format(cid=alice[0]["id"]), headers=ALICE)
    assert response.status_code == 200
    assert isinstance(response.get_json(), list | dict)


def test_unknown_paths_still_answer_404(client: FlaskClient) -> None:
    for path in ("/api/Chat/Nothing", "/api/GetConversations", "/Chat/ListAgents"):
        assert_problem(client.get(path, headers=ALICE), 404)


def test_metadatasearch_is_case_insensitive_substring(
    client: FlaskClient, alice: list[dict[str, Any]]
) -> None:
    found = client.get(
        "/api/Chat/GetConversations?metadatasearch=FIN&results=1000", headers=ALICE
    ).get_json()
    expected = [
        c["id"] for c in alice if any("fin" in tag for tag in c["metaData"] or [])
    ]
    assert expected and [s["id"] for s in found] == expected
    none = client.get(
        "/api/Chat/GetConversations?metadatasearch=zzz-nothing", headers=ALICE
    ).get_json()
    assert none == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("results=abc", "results"),
        ("results=0", "results"),
        ("results=1001", "results"),
        ("results=-5", "results"),
        ("skip=-1", "skip"),
        ("skip=1.5", "skip"),
    ],
)
def test_invalid_paging_is_400(client: FlaskClient, query: str, field: str) -> None:
    response = client.get(f"/api/Chat/GetConversations?{query}", headers=ALICE)
    body = assert_problem(response, 400)
    assert body["title"] == "One or more validation errors occurred."
    assert field in body["errors"]


def test_conversation_shape(
    client: FlaskClient, data: Dataset, alice: list[dict[str, Any]]
) -> None:
    conv = next(
        c
        for c in alice
        if c["id"] not in data.sparse and any(m["citations"] for m in c["messages"])
    )
    response = client.get(f"/api/Chat/GetConversation/{conv['id']}", headers=ALICE)
    body = response.get_json()
    assert body == conv
    assert set(body) == CONVERSATION_FIELDS
    assert body["userID"] == data.user_id_for("demo-alice")
    assert body["botID"] in {a["id"] for a in data.agents}
    for message in body["messages"]:
        assert set(message) == MESSAGE_FIELDS
        for citation in message["citations"]:
            assert set(citation) == CITATION_FIELDS
            assert citation["url"].startswith("https://")
            assert citation["createdDate"].endswith("Z")


def test_users_cannot_read_each_other(client: FlaskClient, data: Dataset) -> None:
    alice_id, bob_id = data.user_id_for("demo-alice"), data.user_id_for("demo-bob")
    assert alice_id and bob_id
    alice_conv, bob_conv = data.users[alice_id][0]["id"], data.users[bob_id][0]["id"]
    for headers, conv_id in ((BOB, alice_conv), (ALICE, bob_conv), (ALICE, "nope")):
        response = client.get(f"/api/Chat/GetConversation/{conv_id}", headers=headers)
        assert_problem(response, 404)
    own = client.get(f"/api/Chat/GetConversation/{bob_conv}", headers=BOB)
    assert own.status_code == 200


def test_bob_has_a_smaller_different_history(
    data: Dataset, alice: list[dict[str, Any]]
) -> None:
    bob_id = data.user_id_for("demo-bob")
    assert bob_id
    bob = data.users[bob_id]
    assert 25 <= len(bob) <= 40
    assert len({c["botID"] for c in bob}) < len(data.agents)
    assert not {c["title"] for c in bob} & {c["title"] for c in alice}


def test_unknown_paths_and_methods(client: FlaskClient) -> None:
    assert_problem(client.get("/api/Chat/Nope", headers=ALICE), 404)
    assert_problem(client.get("/", headers=ALICE), 404)
    response = client.post("/api/Chat/ListAgents", headers=ALICE)
    assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]


def test_same_seed_and_now_is_byte_identical(data: Dataset) -> None:
    paths = [
        "/api/Chat/ListAgents",
        "/api/Chat/GetConversations?results=1000",
        f"/api/Chat/GetConversation/{data.long_conversation_id}",
    ]
    first, second = create_demo_app(now=NOW), create_demo_app(now=NOW)
    other = create_demo_app(seed=7, now=NOW)
    for path in paths[:2]:
        body = first.test_client().get(path, headers=ALICE).data
        assert body == second.test_client().get(path, headers=ALICE).data
        assert body != other.test_client().get(path, headers=ALICE).data
    body = first.test_client().get(paths[2], headers=ALICE).data
    assert body == second.test_client().get(paths[2], headers=ALICE).data


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError):
        create_demo_app(now=datetime(2026, 1, 1))


def test_dates_spread_over_90_days(alice: list[dict[str, Any]]) -> None:
    today = NOW.replace(hour=0, minute=0, second=0, microsecond=0)
    updated = [parse(c["lastUpdated"]) for c in alice]
    assert sum(today <= u < NOW for u in updated) >= 3
    assert sum(today - timedelta(days=1) <= u < today for u in updated) >= 3
    assert all(u <= NOW for u in updated)
    assert min(updated) >= NOW - timedelta(days=90)
    assert min(updated) < NOW - timedelta(days=60)
    for conv in alice:
        assert parse(conv["createdDate"]) <= parse(conv["lastUpdated"])
    # Conversation dates carry no zone, in more than one precision.
    stamps = [c["lastUpdated"] for c in alice]
    assert all(not s.endswith("Z") and "+" not in s for s in stamps)
    assert len({len(s) for s in stamps}) >= 2


def test_long_conversation(client: FlaskClient, data: Dataset) -> None:
    response = client.get(
        f"/api/Chat/GetConversation/{data.long_conversation_id}", headers=ALICE
    )
    conv = response.get_json()
    assert "long" in conv["title"].lower()
    messages = conv["messages"]
    assert messages[0]["messageType"] == "System"
    assert sum(m["messageType"] in ("User", "AI") for m in messages[1:]) >= 2000
    assert parse(conv["lastUpdated"]) >= NOW - timedelta(days=1)
    assert len(response.data) < 1_200_000


def test_messages_alternate(alice: list[dict[str, Any]], data: Dataset) -> None:
    for conv in alice:
        if conv["id"] == data.long_conversation_id:
            continue
        kinds = [m["messageType"] for m in conv["messages"]]
        if kinds[0] == "System":
            kinds = kinds[1:]
        assert 2 <= len(kinds) <= 14
        assert kinds == ["User" if i % 2 == 0 else "AI" for i in range(len(kinds))]


def test_markdown_features_occur(alice_messages: list[dict[str, Any]]) -> None:
    ai_text = "\n".join(m["text"] for m in alice_messages if m["messageType"] == "AI")
    for feature in (
        "**",
        "_",
        "\n- ",
        "\n1. ",
        "```python\n",
        "```sql\n",
        "```json\n",
        "| --- |",
        "](https://",
        " https://",
        "`CC-",
    ):
        assert feature in ai_text, feature
    assert "<" not in ai_text.replace("<=", "")  # no HTML in this dataset


def test_citations_match_markers(alice_messages: list[dict[str, Any]]) -> None:
    cited = [m for m in alice_messages if m["citations"]]
    assert len(cited) >= 10
    for message in cited:
        indexes = [int(i) for i in MARKER.findall(message["text"])]
        assert indexes == list(range(len(message["citations"])))
    assert any("†source】" in m["text"] for m in cited)
    assert any(".pdf】" in m["text"] for m in cited)


def test_attachments_feedback_and_system(
    alice_messages: list[dict[str, Any]],
) -> None:
    attached = [m for m in alice_messages if m["fileName"]]
    assert attached and all(m["messageType"] == "User" for m in attached)
    assert all(m["file64"] is None and m["fileIds"] for m in attached)
    urls = [m["fileURL"] for m in attached]
    assert any(u.startswith("https://files.demo.aicrisk.com/") for u in urls)
    assert any(not u.startswith("https://") for u in urls)
    feedback = {m["feedback"] for m in alice_messages}
    assert feedback == {None, "Like", "Dislike"}
    assert any(m["messageType"] == "System" for m in alice_messages)


def test_conversation_field_variety(alice: list[dict[str, Any]]) -> None:
    costs = [c["currentCost"] for c in alice]
    assert any(isinstance(c, float) for c in costs)
    assert any(c is None for c in costs)
    objects = [c for c in costs if isinstance(c, dict)]
    assert objects and all(set(c) == COST_FIELDS for c in objects)
    flags = [c["hasFlag"] for c in alice]
    assert 0.08 <= flags.count(True) / len(flags) <= 0.2
    assert None in flags
    assert any(c["metaData"] is None for c in alice)
    assert any(c["metaData"] == [] for c in alice)
    assert any(c["totalTokens"] is None for c in alice)
    assert all(c["threadID"].startswith("thread_") for c in alice)
    assert len({c["title"] for c in alice}) > 100


def test_latency_is_added() -> None:
    client = create_demo_app(now=NOW, latency_ms=50).test_client()
    started = time.perf_counter()
    client.get("/api/Chat/ListAgents", headers=ALICE)
    assert time.perf_counter() - started >= 0.05


@pytest.fixture()
def server(app: Flask) -> Iterator[DemoServer]:
    with DemoServer(app) as running:
        yield running


def test_demo_server_serves_real_http(server: DemoServer) -> None:
    assert server.port != 0
    assert server.url == f"http://127.0.0.1:{server.port}"
    request = urllib.request.Request(f"{server.url}/api/Chat/ListAgents", headers=ALICE)
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
        assert isinstance(json.load(response), list)
    with pytest.raises(HTTPError) as caught:
        urllib.request.urlopen(f"{server.url}/api/Chat/ListAgents", timeout=5)
    with caught.value:
        assert caught.value.code == 401


def test_demo_server_stops_cleanly(app: Flask) -> None:
    server = DemoServer(app).start()
    url = f"{server.url}/api/Chat/ListAgents"
    server.stop()
    server.stop()  # idempotent
    with pytest.raises(URLError):
        urllib.request.urlopen(url, timeout=2)


SPARSE_OMITS = {
    "createdDate",
    "lastUpdated",
    "promptTokens",
    "completionTokens",
    "totalTokens",
    "currentCost",
    "metaData",
}


def test_some_conversations_omit_their_facts_in_get_conversation(
    client: FlaskClient, data: Dataset, alice: list[dict[str, Any]]
) -> None:
    # Neither public client reads dates, tokens, cost or tags from
    # GetConversation: the demo leaves them out of some, as AIRisk may.
    page = [c["id"] for c in alice[:20]]
    sparse = [cid for cid in page if cid in data.sparse]
    assert 1 <= len(sparse) < len(page)
    body = client.get(f"/api/Chat/GetConversation/{sparse[0]}", headers=ALICE)
    assert set(body.get_json()) == CONVERSATION_FIELDS - SPARSE_OMITS
    listed = client.get("/api/Chat/GetConversations", headers=ALICE).get_json()
    row = next(r for r in listed if r["id"] == sparse[0])
    assert set(row) == CONVERSATION_FIELDS, "the list row keeps them"
