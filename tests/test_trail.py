"""The access trail as pages write it: one row per data request, none for
health or static files, never a token or conversation text; a database that
does not answer is a 503, not unrecorded data; ``audit verify`` and ``prune``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from support import csrf_token, enter_token, make_app, page

from webapp.cli import main
from webapp.demo_api.data import ALICE_TOKEN
from webapp.demo_api.server import DemoServer
from webapp.store import Store, trail
from webapp.store.models import TrailRow

pytestmark = pytest.mark.slow


@pytest.fixture
def app(demo_api: DemoServer, tmp_path: Path) -> Flask:
    return make_app(tmp_path, AIRISK_BASE_URL=demo_api.url)


@pytest.fixture
def alice(app: Flask) -> FlaskClient:
    client = app.test_client()
    assert enter_token(client, ALICE_TOKEN).status_code == 303
    return client


def rows(app: Flask) -> list[Any]:
    store: Store = app.extensions["store"]
    with store.read() as conn:
        return list(conn.execute(select(TrailRow.__table__).order_by(TrailRow.seq)))


def first_cid(client: FlaskClient) -> str:
    listing = client.get("/conversations?format=json").get_json()
    return str(listing["conversations"][0]["id"])


def data_routes(cid: str) -> list[tuple[str, str]]:
    return [
        ("/conversations", "list.view"),
        ("/conversations?format=json", "list.view"),
        ("/conversations?q=policy&format=json", "search.view"),
        ("/conversations?q=policy", "search.view"),
        (f"/conversations/{cid}", "conversation.view"),
        (f"/conversations/{cid}?format=json", "conversation.view"),
        (f"/conversations/{cid}/export.md", "conversation.export"),
        (f"/conversations/{cid}/export.json", "conversation.export"),
        (f"/conversations/{cid}/export.html", "conversation.export"),
        ("/conversations/export.csv", "list.export"),
        ("/conversations/export.json", "list.export"),
        ("/insights.json", "insights.view"),
        ("/insights", "insights.view"),
        ("/insights/conversations.csv", "insights.export"),
        ("/review", "queue.view"),
    ]


#: Streamed, signed exports: signed when their last byte is written, after
#: the request's row, so their signature gets a row of its own.
STREAMED_EXPORTS = {"/conversations/export.csv", "/conversations/export.json"}
SIGNATURE = re.compile(r"[a-z-]+ sha256:[0-9a-f]{64}")


def test_every_data_route_writes_exactly_one_row(
    app: Flask, alice: FlaskClient
) -> None:
    cid = first_cid(alice)
    for path, action in data_routes(cid):
        before = len(rows(app))
        response = alice.get(path)
        assert response.status_code == 200, path
        response.get_data()  # a streamed answer runs to its end
        written = rows(app)[before:]
        if path in STREAMED_EXPORTS:
            assert [r.action for r in written] == [action, "export.signed"], path
            assert SIGNATURE.fullmatch(written[1].target), written[1].target
            written = written[:1]
        assert [r.action for r in written] == [action], path
        row = written[0]
        signed = ("/export.", "insights.json", ".csv")
        if any(part in path for part in signed) and path not in STREAMED_EXPORTS:
            # The export's own row names the digest its signature covers.
            assert SIGNATURE.search(row.target or ""), (path, row.target)
        assert row.subject == "token:" + ALICE_TOKEN[-4:]
        assert row.client == "127.0.0.1"
        assert row.request_id == response.headers["X-Request-ID"]
        if "/conversations/" + cid in path:
            assert row.conversation == cid
            # Token mode learns the AIRisk user from the conversation itself.
            assert row.acting_as


@pytest.mark.parametrize(
    "path", ["/healthz", "/readyz", "/static/style.css", "/token", "/no-such-page"]
)
def test_health_static_and_other_routes_write_none(
    app: Flask, alice: FlaskClient, path: str
) -> None:
    before = len(rows(app))
    response = alice.get(path)
    response.get_data()
    response.close()
    assert len(rows(app)) == before


def test_sign_in_and_sign_out_are_recorded(app: Flask) -> None:
    client = app.test_client()
    enter_token(client, ALICE_TOKEN)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/conversations")})
    actions = [r.action for r in rows(app)]
    assert actions[0] == "sign-in"
    assert actions[-1] == "sign-out"
    assert rows(app)[-1].subject == "token:" + ALICE_TOKEN[-4:]


def test_the_trail_holds_no_token_and_no_conversation_text(
    app: Flask, alice: FlaskClient
) -> None:
    cid = first_cid(alice)
    record = alice.get(f"/conversations/{cid}?format=json").get_json()
    for path, _ in data_routes(cid):
        alice.get(path).get_data()
    dumped = repr([tuple(r) for r in rows(app)])
    assert ALICE_TOKEN not in dumped
    texts = [m["text"] for m in record["messages"] if len(m["text"] or "") > 20]
    assert texts and not any(text[:20] in dumped for text in texts)
    assert trail.verify(app.extensions["store"]).ok


def test_a_database_that_does_not_answer_is_a_503_page_not_data(
    demo_api: DemoServer, tmp_path: Path
) -> None:
    app = make_app(
        tmp_path,
        AIRISK_BASE_URL=demo_api.url,
        DATABASE_URL="postgresql://nobody@127.0.0.1:9/none",
    )
    client = app.test_client()
    enter_token(client, ALICE_TOKEN)
    response = client.get("/conversations")
    assert response.status_code == 503
    assert "review database does not answer" in page(response).text
    assert "Alice" not in response.get_data(as_text=True)
    assert client.get("/readyz").status_code == 503


def test_with_the_trail_off_nothing_is_recorded(
    demo_api: DemoServer, tmp_path: Path
) -> None:
    app = make_app(tmp_path, AIRISK_BASE_URL=demo_api.url, AUDIT_TRAIL=False)
    client = app.test_client()
    enter_token(client, ALICE_TOKEN)
    assert client.get("/conversations").status_code == 200
    assert rows(app) == []


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Store]:
    store = Store(os.environ["DATABASE_URL"])
    yield store
    store.dispose()


def _views(store: Store, count: int) -> None:
    for number in range(count):
        trail.append(
            store, [trail.Event(subject="s", action="list.view", target=str(number))]
        )


def test_audit_verify_names_a_tampered_row(
    database: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    _views(database, 3)
    assert main(["audit", "verify"]) == 0
    assert "intact: 3 rows" in capsys.readouterr().out
    with database.write() as conn:
        conn.execute(
            update(TrailRow).where(TrailRow.seq == 2).values(action="sign-out")
        )
    assert main(["audit", "verify"]) == 1
    assert "BROKEN at seq 2" in capsys.readouterr().out


def test_db_upgrade_and_prune_commands(
    database: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "upgrade"]) == 0
    assert "newest migration" in capsys.readouterr().out
    _views(database, 2)
    assert main(["audit", "prune", "--days", "30"]) == 0
    assert "Deleted 0" in capsys.readouterr().out
    last = trail.search(database, trail.TrailFilter(), limit=1)[0]
    assert last.action == "audit.prune"
    assert last.subject.startswith("command:")
    assert main(["audit", "verify"]) == 0


def test_an_export_signature_is_recorded_with_the_export_or_after_it(
    demo_api: DemoServer, tmp_path: Path
) -> None:
    """What the signed exports' hook does, from inside a view and after a stream."""
    from flask import Response, stream_with_context

    from webapp.web import audit

    app = make_app(tmp_path, AIRISK_BASE_URL=demo_api.url)

    # Stand-ins for the evidence module's two kinds of export.
    @app.get("/signed-at-once")
    def signed_at_once() -> str:
        audit.record_export_signature("ab" * 32, "conversation-md", "x", "c1")
        return "signed"

    @app.get("/signed-stream")
    def signed_stream() -> Response:
        def body() -> Iterator[str]:
            yield "rows"
            audit.record_export_signature("cd" * 32, "list-csv", "x", "q")

        return Response(stream_with_context(body()))

    client = app.test_client()
    enter_token(client, ALICE_TOKEN)
    before = len(rows(app))
    client.get("/signed-at-once")
    response = client.get("/signed-stream")
    response.get_data()
    response.close()
    written = rows(app)[before:]
    assert [r.action for r in written] == ["export.signed", "export.signed"]
    assert written[0].target == "conversation-md sha256:" + "ab" * 32
    assert written[1].target == "list-csv sha256:" + "cd" * 32
    assert trail.verify(app.extensions["store"]).ok
