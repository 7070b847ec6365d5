"""Review states and notes from the conversation page and the list (token mode)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from support import csrf_token, enter_token, make_app, page

from webapp.demo_api.data import ALICE_TOKEN
from webapp.demo_api.server import DemoServer
from webapp.store import reviews, trail

pytestmark = pytest.mark.slow


@pytest.fixture
def app(demo_api: DemoServer, tmp_path: Path) -> Flask:
    return make_app(tmp_path, AIRISK_BASE_URL=demo_api.url)


@pytest.fixture
def alice(app: Flask) -> FlaskClient:
    client = app.test_client()
    assert enter_token(client, ALICE_TOKEN).status_code == 303
    return client


def listing(client: FlaskClient) -> list[dict[str, Any]]:
    return list(client.get("/conversations?format=json").get_json()["conversations"])


def test_a_state_set_on_the_conversation_page_shows_there_with_history(
    app: Flask, alice: FlaskClient
) -> None:
    cid = listing(alice)[0]["id"]
    path = f"/conversations/{cid}"
    response = alice.post(
        f"{path}/review",
        data={
            "csrf_token": csrf_token(alice, path),
            "state": "escalated",
            "back": path,
        },
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith(path)
    shown = page(alice.get(path)).text
    assert "State: escalated" in shown
    assert "new → escalated" in shown
    actions = [
        r.action for r in trail.search(app.extensions["store"], trail.TrailFilter())
    ]
    assert "review.change" in actions


def test_a_post_without_csrf_changes_nothing(app: Flask, alice: FlaskClient) -> None:
    cid = listing(alice)[0]["id"]
    response = alice.post(f"/conversations/{cid}/review", data={"state": "cleared"})
    assert response.status_code == 400
    assert "State: new" in page(alice.get(f"/conversations/{cid}")).text


def test_a_bad_state_is_refused(alice: FlaskClient) -> None:
    cid = listing(alice)[0]["id"]
    path = f"/conversations/{cid}"
    response = alice.post(
        f"{path}/review", data={"csrf_token": csrf_token(alice, path), "state": "gone"}
    )
    assert response.status_code == 400


def test_a_bulk_change_sets_every_selected_row_and_the_list_shows_it(
    alice: FlaskClient,
) -> None:
    rows = listing(alice)[:3]
    response = alice.post(
        "/conversations/review",
        data={
            "csrf_token": csrf_token(alice, "/conversations"),
            "cid": [rows[0]["id"], rows[1]["id"]],
            "state": "in review",
            "assignee": "rita@example.com",
        },
    )
    assert response.status_code == 303
    doc = page(alice.get("/conversations"))
    states = {
        a["data-cid"]: a["data-state"]
        for a in doc.find_all("span")
        if a.get("data-state")
    }
    assert states[rows[0]["id"]] == "in review"
    assert states[rows[1]["id"]] == "in review"
    assert states[rows[2]["id"]] == "new"
    mine = alice.get("/conversations?review=in+review&format=json").get_json()
    assert {c["id"] for c in mine["conversations"]} == {rows[0]["id"], rows[1]["id"]}


def test_a_note_on_a_highlighted_range_is_sanitized_and_editable(
    app: Flask, alice: FlaskClient
) -> None:
    cid = listing(alice)[0]["id"]
    record = alice.get(f"/conversations/{cid}?format=json").get_json()
    first, last = record["messages"][0]["id"], record["messages"][1]["id"]
    path = f"/conversations/{cid}?highlight={first}..{last}"
    response = alice.post(
        f"/conversations/{cid}/notes",
        data={
            "csrf_token": csrf_token(alice, path),
            "body": "**Leak** of a key <script>alert(1)</script>",
            "highlight": f"{first}..{last}",
            "escalation": "1",
            "back": path,
        },
    )
    assert response.status_code == 303
    html = alice.get(path).get_data(as_text=True)
    assert "<strong>Leak</strong>" in html
    assert "<script>alert(1)" not in html
    # Beside the last message of its range, inside that message's item.
    item = html.split(f'id="m-{last}"', 1)[1].split("</li>", 1)[0]
    assert "note-aside" in item and "<strong>Leak</strong>" in item
    doc = page(alice.get(path))
    assert f"messages {first}..{last}" in doc.text
    assert "escalation reason" in doc.text
    assert "State: escalated" in doc.text
    key = (record["userId"], cid)
    (note,) = reviews.notes(app.extensions["store"], key)
    edit = alice.post(
        f"/conversations/{cid}/notes/{note.id}",
        data={"csrf_token": csrf_token(alice, path), "body": "Key leak, confirmed"},
    )
    assert edit.status_code == 303
    doc = page(alice.get(path))
    assert "Key leak, confirmed" in doc.text
    assert "Earlier versions (1)" in doc.text


def test_a_conversation_the_token_cannot_see_gets_no_review(
    alice: FlaskClient,
) -> None:
    path = "/conversations/00000000-0000-0000-0000-000000000000"
    response = alice.post(
        f"{path}/review",
        data={"csrf_token": csrf_token(alice, "/conversations"), "state": "cleared"},
    )
    assert response.status_code == 404


def test_the_queue_lists_escalated_and_assigned_conversations(
    alice: FlaskClient,
) -> None:
    rows = listing(alice)[:2]
    alice.post(
        "/conversations/review",
        data={
            "csrf_token": csrf_token(alice, "/conversations"),
            "cid": [rows[0]["id"]],
            "state": "escalated",
        },
    )
    alice.post(
        "/conversations/review",
        data={
            "csrf_token": csrf_token(alice, "/conversations"),
            "cid": [rows[1]["id"]],
            "state": "in review",
            "assignee": "token:" + ALICE_TOKEN[-4:],
        },
    )
    doc = page(alice.get("/review"))
    assert "Escalated (1)" in doc.text
    assert "Assigned to me (1)" in doc.text
    links = {a["href"] for a in doc.find_all("a") if a.get("href")}
    assert f"/conversations/{rows[0]['id']}" in links
    assert "/conversations?flagged=1&review=new" in links
    # No scan yet: the queue starts none, it links to one.
    assert "Scan the whole history for flagged conversations" in doc.text


def test_the_queue_reuses_a_finished_scan_for_flagged_and_not_reviewed(
    alice: FlaskClient,
) -> None:
    flagged = alice.get("/conversations?flagged=1&size=100&format=json").get_json()
    ids = [c["id"] for c in flagged["conversations"]]
    assert len(ids) > 2
    alice.post(
        "/conversations/review",
        data={
            "csrf_token": csrf_token(alice, "/conversations"),
            "cid": [ids[0]],
            "state": "cleared",
        },
    )
    doc = page(alice.get("/review"))
    expected = flagged["total"] - 1
    assert f"{expected} flagged, not reviewed" in doc.text
    links = {a["href"] for a in doc.find_all("a") if a.get("href")}
    assert f"/conversations/{ids[1]}" in links
    assert f"/conversations/{ids[0]}" not in links
