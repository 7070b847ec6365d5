"""Review states and notes: what reviewers decided about a conversation.

A conversation is keyed by its AIRisk user id and its conversation id. A
conversation without a row is "new". Every change of a state writes a
:class:`ReviewChange` row in the same transaction, read under the row's lock,
so two instances changing one conversation at once both leave their row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError

from . import Store
from .models import NEW, Note, NoteRevision, ReviewChange, ReviewState
from .trail import Event, append_in, now

_STATE = cast(Table, ReviewState.__table__)
_CHANGE = cast(Table, ReviewChange.__table__)
_NOTE = cast(Table, Note.__table__)
_REVISION = cast(Table, NoteRevision.__table__)
#: Longest note kept, in characters.
MAX_NOTE = 20_000


@dataclass(frozen=True, slots=True)
class Review:
    """The review of one conversation as pages show it."""

    state: str = NEW
    assignee: str | None = None
    due: date | None = None
    changed_at: datetime | None = None
    changed_by: str | None = None


@dataclass(frozen=True, slots=True)
class Wanted:
    """A requested change; None fields stay as they are."""

    state: str | None = None
    assignee: str | None = None
    due: date | None = None
    #: Clear the assignee or the due date (an empty form field).
    clear_assignee: bool = False
    clear_due: bool = False


Key = tuple[str, str]


def reviews(store: Store, keys: Iterable[Key]) -> dict[Key, Review]:
    """Return the reviews of ``keys`` (user id, conversation id) in one query.

    :raises StoreUnavailable: when the database does not answer.
    """
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return {}
    found: dict[Key, Review] = {}
    with store.read() as conn:
        # Chunks keep the statement under SQLite's variable limit.
        for start in range(0, len(wanted), 400):
            chunk = wanted[start : start + 400]
            rows = conn.execute(
                select(_STATE).where(
                    tuple_(_STATE.c.airisk_user, _STATE.c.conversation).in_(chunk)
                )
            )
            for row in rows:
                found[(row.airisk_user, row.conversation)] = _review(row)
    return found


def _review(row: Any) -> Review:
    return Review(row.state, row.assignee, row.due, row.changed_at, row.changed_by)


def review(store: Store, key: Key) -> Review:
    """Return one conversation's review ("new" without a row)."""
    return reviews(store, [key]).get(key, Review())


def _current(store: Store, conn: Connection, key: Key) -> Any:
    query = select(_STATE).where(
        _STATE.c.airisk_user == key[0], _STATE.c.conversation == key[1]
    )
    if store.dialect == "postgresql":
        query = query.with_for_update()
    return conn.execute(query).first()


def change(
    store: Store,
    keys: Sequence[Key],
    wanted: Wanted,
    by: Event,
) -> int:
    """Apply ``wanted`` to every conversation of ``keys``; return how many changed.

    Each change gets a history row and a trail row, all in one transaction.

    :raises StoreUnavailable: when the database does not answer.
    """
    for attempt in range(3):
        try:
            return _change(store, keys, wanted, by)
        except IntegrityError:
            # Another instance inserted the first row of a conversation
            # between our read and our insert: read it again.
            if attempt == 2:
                raise
    return 0  # pragma: no cover


def _change(store: Store, keys: Sequence[Key], wanted: Wanted, by: Event) -> int:
    at = now()
    events = []
    with store.write() as conn:
        for key in keys:
            row = _current(store, conn, key)
            old = _review(row) if row else Review()
            new = Review(
                state=wanted.state or old.state,
                assignee=None
                if wanted.clear_assignee
                else (wanted.assignee or old.assignee),
                due=None if wanted.clear_due else (wanted.due or old.due),
            )
            if (new.state, new.assignee, new.due) == (old.state, old.assignee, old.due):
                continue
            values = {
                "state": new.state,
                "assignee": new.assignee,
                "due": new.due,
                "changed_at": at,
                "changed_by": by.email or by.subject,
            }
            if row is None:
                conn.execute(
                    insert(_STATE).values(
                        airisk_user=key[0], conversation=key[1], **values
                    )
                )
            else:
                conn.execute(
                    update(_STATE)
                    .where(
                        _STATE.c.airisk_user == key[0],
                        _STATE.c.conversation == key[1],
                    )
                    .values(**values)
                )
            conn.execute(
                insert(_CHANGE).values(
                    airisk_user=key[0],
                    conversation=key[1],
                    at=at,
                    by_subject=by.subject,
                    by_email=by.email,
                    from_state=old.state,
                    to_state=new.state,
                    from_assignee=old.assignee,
                    to_assignee=new.assignee,
                    from_due=old.due,
                    to_due=new.due,
                )
            )
            events.append(
                Event(
                    **{
                        **_who(by),
                        "action": "review.change",
                        "acting_as": key[0],
                        "conversation": key[1],
                        "target": f"{old.state} -> {new.state}",
                    }
                )
            )
        append_in(store, conn, events)
    return len(events)


def _who(by: Event) -> dict[str, Any]:
    return {
        "subject": by.subject,
        "email": by.email,
        "client": by.client,
        "request_id": by.request_id,
    }


def history(store: Store, key: Key) -> list[Any]:
    """Return every change of one conversation's review, oldest first.

    :raises StoreUnavailable: when the database does not answer.
    """
    with store.read() as conn:
        return list(
            conn.execute(
                select(_CHANGE)
                .where(
                    _CHANGE.c.airisk_user == key[0], _CHANGE.c.conversation == key[1]
                )
                .order_by(_CHANGE.c.id)
            )
        )


def keys_where(
    store: Store,
    users: Sequence[str] | None,
    *,
    states: Sequence[str] = (),
    assignee: str | None = None,
) -> dict[Key, Review]:
    """Return the reviews in ``states`` or assigned to ``assignee`` (queue, filters).

    :raises StoreUnavailable: when the database does not answer.
    """
    query = select(_STATE)
    if users is not None:
        query = query.where(_STATE.c.airisk_user.in_(list(users)))
    conditions: list[ColumnElement[bool]] = []
    if states:
        conditions.append(_STATE.c.state.in_(list(states)))
    if assignee:
        conditions.append(_STATE.c.assignee == assignee)
    if conditions:
        query = query.where(or_(*conditions))
    with store.read() as conn:
        return {
            (r.airisk_user, r.conversation): _review(r) for r in conn.execute(query)
        }


# -- notes ------------------------------------------------------------------


def notes(store: Store, key: Key) -> list[Any]:
    """Return a conversation's notes, oldest first, with their edit counts.

    :raises StoreUnavailable: when the database does not answer.
    """
    with store.read() as conn:
        return list(
            conn.execute(
                select(_NOTE)
                .where(_NOTE.c.airisk_user == key[0], _NOTE.c.conversation == key[1])
                .order_by(_NOTE.c.id)
            )
        )


def note_revisions(store: Store, note_id: int) -> list[Any]:
    """Return a note's earlier texts, oldest first."""
    with store.read() as conn:
        return list(
            conn.execute(
                select(_REVISION)
                .where(_REVISION.c.note_id == note_id)
                .order_by(_REVISION.c.id)
            )
        )


def add_note(
    store: Store,
    key: Key,
    body: str,
    span: tuple[str, str] | None,
    escalation_reason: bool,
    by: Event,
) -> int:
    """Add a note and its trail row; return its id.

    :raises StoreUnavailable: when the database does not answer.
    """
    with store.write() as conn:
        note_id = conn.execute(
            insert(_NOTE)
            .values(
                airisk_user=key[0],
                conversation=key[1],
                first=span[0] if span else None,
                last=span[1] if span else None,
                author_subject=by.subject,
                author_email=by.email,
                body=body[:MAX_NOTE],
                escalation_reason=escalation_reason,
                created_at=now(),
            )
            .returning(_NOTE.c.id)
        ).scalar_one()
        target = f"note {note_id}" + (f" on {span[0]}..{span[1]}" if span else "")
        append_in(
            store,
            conn,
            [
                Event(
                    **_who(by),
                    action="note.add",
                    acting_as=key[0],
                    conversation=key[1],
                    target=target,
                )
            ],
        )
    return int(note_id)


def edit_note(
    store: Store,
    key: Key,
    note_id: int,
    body: str,
    escalation_reason: bool,
    by: Event,
) -> bool:
    """Change a note written by ``by``, keeping its earlier text; False if not theirs.

    :raises StoreUnavailable: when the database does not answer.
    """
    with store.write() as conn:
        row = conn.execute(
            select(_NOTE).where(
                _NOTE.c.id == note_id,
                _NOTE.c.airisk_user == key[0],
                _NOTE.c.conversation == key[1],
            )
        ).first()
        if row is None or row.author_subject != by.subject:
            return False
        at = now()
        conn.execute(
            insert(_REVISION).values(note_id=note_id, body=row.body, written_at=at)
        )
        conn.execute(
            update(_NOTE)
            .where(_NOTE.c.id == note_id)
            .values(
                body=body[:MAX_NOTE],
                escalation_reason=escalation_reason,
                edited_at=at,
            )
        )
        append_in(
            store,
            conn,
            [
                Event(
                    **_who(by),
                    action="note.edit",
                    acting_as=key[0],
                    conversation=key[1],
                    target=f"note {note_id}",
                )
            ],
        )
    return True
