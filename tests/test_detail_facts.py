"""Conversation facts GetConversation may not carry: dates, tokens, cost, tags.

Neither public client reads them from GetConversation, so AIRisk may leave
them out: the page falls back to the list row's values (from the cached list
the user came from) and says "not reported" when there is none.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import responses
from flask.testing import FlaskClient
from support import ALICE, BASE, Browser, make_app, page

from webapp.demo_api.server import DemoServer

LIST_URL = BASE + "/api/Chat/GetConversations"
AGENTS_URL = BASE + "/api/Chat/ListAgents"
ROW = {
    "id": "conv-1",
    "userID": "user-1",
    "botID": "a1",
    "title": "Expense policy",
    "promptTokens": 4000,
    "completionTokens": 321,
    "totalTokens": 4321,
    "currentCost": 1.5,
    "hasFlag": False,
    "metaData": ["hr", "pii"],
    "messages": [],
    "lastUpdated": "2026-11-20T10:00:00",
    "createdDate": "2026-11-19T08:30:00",
}
#: What GetConversation sends: no dates, tokens, cost or tags.
BARE = {
    "id": "conv-1",
    "userID": "user-1",
    "botID": "a1",
    "title": "Expense policy",
    "messages": [{"id": "m1", "messageType": "User", "text": "Hello"}],
}


def facts(response: Any) -> dict[str, str]:
    """Return the conversation's facts as shown: term -> visible text."""
    html = response.get_data(as_text=True)
    found = re.findall(r"<dt>([^<]+)</dt><dd>(.*?)</dd>", html, re.S)
    return {term: page_text(value) for term, value in found}


def page_text(fragment: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", fragment).split())


def test_missing_facts_come_from_the_list_row(
    signed_in: FlaskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(LIST_URL, json=[ROW])
    upstream.get(BASE + "/api/Chat/GetConversation/conv-1", json=BARE)
    assert signed_in.get("/conversations").status_code == 200
    shown = facts(signed_in.get("/conversations/conv-1?from="))
    assert shown["Created"] == "2026-11-19 08:30 UTC"
    assert shown["Last updated"].startswith("2026-11-20 10:00 UTC")
    assert shown["Tokens"] == "4,321 (4,000 prompt, 321 completion)"
    assert shown["Cost"] == "$1.50"
    assert shown["Tags"] == "hr pii"
    record = signed_in.get("/conversations/conv-1?from=&format=json").get_json()
    assert record["totalTokens"] == 4321 and record["tags"] == ["hr", "pii"]
    assert record["messages"][0]["text"] == "Hello"
    # The export links carry the list too, so the export says the same.
    doc = page(signed_in.get("/conversations/conv-1?from="))
    (link,) = [a["href"] for a in doc.find_all("a") if "export.json" in a["href"]]
    exported = signed_in.get(link).get_data(as_text=True)
    assert re.search(r'"totalTokens": ?4321', exported)
    assert re.search(r'"created": ?"2026-11-19T08:30:00', exported)


def test_facts_nobody_reported_say_so(
    signed_in: FlaskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(BASE + "/api/Chat/GetConversation/conv-1", json=BARE)
    shown = facts(signed_in.get("/conversations/conv-1"))
    for term in ("Created", "Last updated", "Tokens", "Cost", "Tags"):
        assert shown[term] == "not reported", term
    assert "unknown" not in shown["Last updated"]


def test_reported_facts_win_over_the_list_row(
    signed_in: FlaskClient, upstream: responses.RequestsMock
) -> None:
    upstream.get(LIST_URL, json=[ROW])
    detail = {**ROW, "totalTokens": 9999, "metaData": [], "messages": []}
    upstream.get(BASE + "/api/Chat/GetConversation/conv-1", json=detail)
    signed_in.get("/conversations")
    shown = facts(signed_in.get("/conversations/conv-1?from="))
    assert shown["Tokens"].startswith("9,999")
    assert shown["Tags"] == "none", "an empty list is reported: no tags"


def test_the_demo_omits_facts_and_the_page_shows_the_rows(
    demo_api: DemoServer, tmp_path: Path
) -> None:
    app = make_app(tmp_path, AIRISK_BASE_URL=demo_api.url)
    dataset = demo_api.app.extensions["airisk_demo"]  # type: ignore[attr-defined]
    rows = dataset.summaries[dataset.user_id_for(ALICE)]
    with DemoServer(app) as dashboard:
        browser = Browser(dashboard.url)
        browser.enter_token(ALICE, browser.get("/token"))
        browser.get("/conversations")
        sparse = [r for r in rows[:20] if r["id"] in dataset.sparse]
        assert sparse
        for row in sparse:
            html = browser.get(f"/conversations/{row['id']}?from=").text
            shown = dict(
                (t, page_text(v))
                for t, v in re.findall(r"<dt>([^<]+)</dt><dd>(.*?)</dd>", html, re.S)
            )
            if row["totalTokens"] is None:
                assert shown["Tokens"] == "not reported"
            else:
                assert shown["Tokens"].startswith(f"{row['totalTokens']:,}")
            assert shown["Created"] != "not reported"
            assert "not reported" not in shown["Last updated"]
