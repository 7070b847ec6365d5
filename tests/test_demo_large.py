"""The demo API's large user (``demo-large``): 10,000 conversations, built lazily."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from webapp.demo_api import create_demo_app
from webapp.demo_api.large import LARGE_CONVERSATIONS

# Ten thousand conversations, about a second a test: not in the fast tier.
pytestmark = pytest.mark.slow

NOW = datetime(2026, 3, 4, 10, 30, 15, tzinfo=UTC)
LARGE = {"Authorization": "Bearer demo-large"}
ALICE = {"Authorization": "Bearer demo-alice"}


def test_large_history_is_built_on_first_use_only() -> None:
    app = create_demo_app(now=NOW)
    assert app.extensions["airisk_demo"].large._summaries is None


def test_large_user_pages_through_ten_thousand_conversations() -> None:
    client = create_demo_app(now=NOW).test_client()
    ids: list[str] = []
    updated: list[str] = []
    for skip in range(0, LARGE_CONVERSATIONS + 1000, 1000):
        response = client.get(
            f"/api/Chat/GetConversations?results=1000&skip={skip}", headers=LARGE
        )
        assert response.status_code == 200
        rows = response.get_json()
        ids += [row["id"] for row in rows]
        updated += [row["lastUpdated"] for row in rows]
        assert all(row["messages"] == [] for row in rows)
    assert len(ids) == len(set(ids)) == LARGE_CONVERSATIONS
    assert updated == sorted(updated, reverse=True)


def test_large_user_conversations_are_theirs_only() -> None:
    app = create_demo_app(now=NOW)
    client = app.test_client()
    first = client.get("/api/Chat/GetConversations?results=1", headers=LARGE)
    cid = first.get_json()[0]["id"]
    opened = client.get(f"/api/Chat/GetConversation/{cid}", headers=LARGE)
    assert opened.status_code == 200
    body = opened.get_json()
    assert body["id"] == cid and [m["messageType"] for m in body["messages"]] == [
        "User",
        "AI",
    ]
    assert (
        client.get(f"/api/Chat/GetConversation/{cid}", headers=ALICE).status_code == 404
    )
    long_id = app.extensions["airisk_demo"].long_conversation_id
    assert (
        client.get(f"/api/Chat/GetConversation/{long_id}", headers=LARGE).status_code
        == 404
    )


def test_large_user_leaves_the_other_users_unchanged() -> None:
    data = create_demo_app(now=NOW).extensions["airisk_demo"]
    again = create_demo_app(now=NOW).extensions["airisk_demo"]
    again.large.summaries  # noqa: B018 - building it must not touch the others
    assert data.users == again.users
    assert data.long_conversation_id == again.long_conversation_id
