"""The database layer on SQLite and on a real PostgreSQL: migrations, the
hash-chained trail, review states under concurrency."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select, text, update
from support.postgres import PostgresServer

from webapp.store import Store, StoreUnavailable, trail
from webapp.store.migrate import upgrade
from webapp.store.models import CLEARED, ESCALATED, IN_REVIEW, NEW, TrailRow
from webapp.store.reviews import Wanted, change, history, review

pytestmark = pytest.mark.slow

WHO = trail.Event(subject="sso|ann", email="ann@example.com", action="x")


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    else:
        url = request.getfixturevalue("postgres").new_database()
    from webapp.store import database_url

    db = Store(database_url(url, str(tmp_path)))
    upgrade(db)
    yield db
    db.dispose()


def _views(store: Store, count: int) -> None:
    for number in range(count):
        trail.append(
            store,
            [
                trail.Event(
                    subject="sso|ann",
                    email="ann@example.com",
                    action="conversation.view",
                    conversation=f"c{number}",
                    acting_as="u1",
                )
            ],
        )


def test_upgrade_is_idempotent_and_ping_says_current(store: Store) -> None:
    upgrade(store)
    assert store.ping() is True


def test_an_intact_chain_verifies(store: Store) -> None:
    _views(store, 5)
    verdict = trail.verify(store)
    assert verdict.ok and verdict.rows == 5


def test_a_tampered_row_is_named(store: Store) -> None:
    _views(store, 5)
    with store.write() as conn:
        conn.execute(
            update(TrailRow).where(TrailRow.seq == 3).values(action="list.view")
        )
    verdict = trail.verify(store)
    assert not verdict.ok
    assert verdict.seq == 3
    assert "seq 3 was altered" in str(verdict.problem)


def test_a_deleted_row_is_named_as_a_gap(store: Store) -> None:
    _views(store, 5)
    with store.write() as conn:
        conn.execute(delete(TrailRow).where(TrailRow.seq == 4))
    verdict = trail.verify(store)
    assert verdict.seq == 4
    assert "seq 4..4 are missing" in str(verdict.problem)


def test_deleting_the_oldest_rows_without_the_prune_command_is_named(
    store: Store,
) -> None:
    _views(store, 4)
    with store.write() as conn:
        conn.execute(delete(TrailRow).where(TrailRow.seq <= 2))
    verdict = trail.verify(store)
    assert verdict.seq == 3
    assert "rows before seq 3 are missing" in str(verdict.problem)


def test_pruning_leaves_a_row_and_a_chain_that_verifies(store: Store) -> None:
    _views(store, 4)
    with store.write() as conn:
        old = trail.now() - timedelta(days=40)
        # Back-date two rows and re-chain them as if written 40 days ago.
        rows = conn.execute(select(TrailRow.__table__).order_by(TrailRow.seq))
        prev = trail.GENESIS
        for row in list(rows):
            values = row._asdict()
            if values["seq"] <= 2:
                values["at"] = old
            values["prev_hash"] = prev
            values["hash"] = prev = trail.row_hash(values)
            conn.execute(
                update(TrailRow)
                .where(TrailRow.seq == values["seq"])
                .values(at=values["at"], prev_hash=values["prev_hash"], hash=prev)
            )
    assert trail.verify(store).ok
    deleted = trail.prune(store, 30, WHO)
    assert deleted == 2
    verdict = trail.verify(store)
    assert verdict.ok, verdict.problem
    last = trail.search(store, trail.TrailFilter(), limit=1)[0]
    assert last.action == "audit.prune"
    assert "chain starts at seq 3" in last.target
    assert last.subject == "sso|ann"


def test_pruning_everything_still_chains(store: Store) -> None:
    _views(store, 2)
    with store.write() as conn:
        conn.execute(update(TrailRow).values(at=trail.now() - timedelta(days=99)))
        # Re-hash so the chain is intact before the prune.
        prev = trail.GENESIS
        for row in list(conn.execute(select(TrailRow.__table__).order_by("seq"))):
            values = row._asdict()
            values["prev_hash"] = prev
            values["hash"] = prev = trail.row_hash(values)
            conn.execute(
                update(TrailRow)
                .where(TrailRow.seq == values["seq"])
                .values(prev_hash=values["prev_hash"], hash=prev)
            )
    assert trail.prune(store, 1, WHO) == 2
    verdict = trail.verify(store)
    assert verdict.ok and verdict.rows == 1


def test_a_state_change_keeps_history_and_a_trail_row(store: Store) -> None:
    key = ("u1", "c1")
    assert review(store, key).state == NEW
    change(store, [key], Wanted(state=IN_REVIEW, assignee="bob@example.com"), WHO)
    change(store, [key], Wanted(state=CLEARED), WHO)
    assert review(store, key).state == CLEARED
    assert review(store, key).assignee == "bob@example.com"
    steps = [(h.from_state, h.to_state) for h in history(store, key)]
    assert steps == [(NEW, IN_REVIEW), (IN_REVIEW, CLEARED)]
    rows = trail.search(store, trail.TrailFilter(action="review.change"))
    assert [r.target for r in rows] == ["in review -> cleared", "new -> in review"]
    assert trail.verify(store).ok


def test_concurrent_changes_of_one_conversation_keep_both_rows(store: Store) -> None:
    key = ("u1", "c-race")
    other = Store(store.url)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(db: Store, state: str) -> None:
        try:
            barrier.wait()
            change(db, [key], Wanted(state=state), WHO)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(store, ESCALATED)),
        threading.Thread(target=run, args=(other, CLEARED)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    other.dispose()
    assert not errors
    steps = history(store, key)
    assert len(steps) == 2
    # The second change starts from what the first one left.
    assert steps[0].from_state == NEW
    assert steps[1].from_state == steps[0].to_state
    assert trail.verify(store).ok


def test_a_database_that_does_not_answer_is_store_unavailable(tmp_path: Path) -> None:
    down = Store("postgresql+psycopg://nobody@127.0.0.1:9/none")
    assert down.ping() is False
    with pytest.raises(StoreUnavailable):
        with down.read() as conn:
            conn.execute(text("SELECT 1"))


def test_a_database_without_its_tables_is_store_unavailable(tmp_path: Path) -> None:
    """The trail's append uses the driver's cursor: its errors are 503s too."""
    empty = Store(f"sqlite:///{tmp_path / 'never-upgraded.db'}")
    assert empty.ping() is False
    with pytest.raises(StoreUnavailable):
        trail.append(empty, [trail.Event(subject="s", action="sign-in")])


def test_a_page_on_a_database_never_upgraded_is_a_503_page(tmp_path: Path) -> None:
    from support import ALICE, enter_token, make_app

    from webapp.demo_api import create_demo_app
    from webapp.demo_api.server import DemoServer

    with DemoServer(create_demo_app()) as api:
        app = make_app(
            tmp_path,
            AIRISK_BASE_URL=api.url,
            DATABASE_URL=f"sqlite:///{tmp_path / 'never-upgraded.db'}",
        )
        client = app.test_client()
        response = enter_token(client, ALICE)
    assert response.status_code == 503
    text = response.get_data(as_text=True)
    assert "Traceback" not in text
