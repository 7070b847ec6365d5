"""The AIRisk that ``responses`` fakes for unit tests: its URLs, a token, rows."""

from __future__ import annotations

from typing import Any

from .app import BASE

TOKEN = "alice-token-0123456789abcdef"
LIST_URL = BASE + "/api/Chat/GetConversations"
AGENTS_URL = BASE + "/api/Chat/ListAgents"
AGENTS = [
    {"id": "a1", "name": "Finance Copilot", "description": "Expenses"},
    {"id": "a2", "name": "Legal Helper", "description": None},
]


def summary(n: int, **fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": f"conv-{n}",
        "userID": "user-1",
        "botID": "a1",
        "title": f"Conversation {n}",
        "totalTokens": 1200 + n,
        "promptTokens": 1000,
        "completionTokens": 200 + n,
        "currentCost": 0.0123,
        "hasFlag": False,
        "metaData": ["finance"],
        "messages": [],
        "lastUpdated": "2026-11-28T10:00:00",
        "createdDate": "2026-11-28T09:00:00",
    }
    item.update(fields)
    return item
