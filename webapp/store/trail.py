"""The access trail: append-only rows, each hash-chained to the one before.

A row's hash covers its own fields and the previous row's hash, so changing
any field of a row breaks its own hash, and deleting a row leaves a gap in
``seq`` and a ``prev_hash`` that matches nothing. :func:`verify` walks the
chain and names the first broken link. Pruning old rows is the only delete,
and it appends a row saying where the chain now starts.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, delete, func, select

from . import Store
from .models import TrailRow

#: The ``prev_hash`` of the very first row.
GENESIS = "0" * 64
#: How a prune row says where the chain starts after it deleted rows.
_STARTS = re.compile(r"chain starts at seq (\d+)")
_TRAIL = cast(Table, TrailRow.__table__)
_FIELDS = (
    "subject",
    "email",
    "acting_as",
    "action",
    "target",
    "conversation",
    "client",
    "request_id",
)
#: Column lengths: longer values (a long search query) are cut, not refused.
_LIMITS = {c.name: getattr(c.type, "length", None) for c in _TRAIL.columns}


@dataclass(frozen=True, slots=True)
class Event:
    """What a trail row says, before it has a time, a number and a hash."""

    subject: str
    action: str
    email: str | None = None
    acting_as: str | None = None
    target: str | None = None
    conversation: str | None = None
    client: str | None = None
    request_id: str | None = None


def now() -> datetime:
    """Return the current UTC time, naive, at microsecond precision."""
    return datetime.now(UTC).replace(tzinfo=None)


def row_hash(values: dict[str, Any]) -> str:
    """Return the hash of one row's fields and the previous row's hash."""
    canonical = json.dumps(
        [
            values["seq"],
            values["at"].isoformat(timespec="microseconds"),
            *(values[name] for name in _FIELDS),
            values["prev_hash"],
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _clip(name: str, value: str | None) -> str | None:
    limit = _LIMITS.get(name)
    if value is None or limit is None:
        return value
    return value[:limit]


def _last(conn: Connection) -> tuple[int, str]:
    last = conn.execute(
        select(_TRAIL.c.seq, _TRAIL.c.hash).order_by(_TRAIL.c.seq.desc()).limit(1)
    ).first()
    return (last.seq, last.hash) if last else (0, GENESIS)


#: A trail row's columns, in order (the audit exports use them too).
COLUMNS = ("seq", "at", *_FIELDS, "prev_hash", "hash")
#: The append's two statements as plain SQL on the DBAPI cursor: through
#: SQLAlchemy's Core they cost more than SQLite's own work (bench/trail.py).
_LAST_SQL = "SELECT seq, hash FROM trail ORDER BY seq DESC LIMIT 1"
_INSERT_SQL = {
    "named": "INSERT INTO trail ({}) VALUES ({})".format(
        ", ".join(COLUMNS), ", ".join(f":{c}" for c in COLUMNS)
    ),
    "pyformat": "INSERT INTO trail ({}) VALUES ({})".format(
        ", ".join(COLUMNS), ", ".join(f"%({c})s" for c in COLUMNS)
    ),
}
#: How SQLAlchemy's DateTime stores a time in SQLite (a string that sorts).
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


def append_in(
    store: Store,
    conn: Connection,
    events: Sequence[Event],
    after: tuple[int, str] | None = None,
) -> None:
    """Append ``events`` inside the caller's write transaction."""
    if not events:
        return
    store.lock_trail(conn)
    sqlite = store.dialect == "sqlite"
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if after is None:
            cursor.execute(_LAST_SQL)
            last = cursor.fetchone()
            seq, prev = (int(last[0]), str(last[1])) if last else (0, GENESIS)
        else:
            seq, prev = after
        at = now()
        rows = []
        for event in events:
            seq += 1
            values: dict[str, Any] = {
                name: _clip(name, getattr(event, name)) for name in _FIELDS
            }
            values.update(seq=seq, at=at, prev_hash=prev)
            values["hash"] = prev = row_hash(values)
            if sqlite:
                values["at"] = at.strftime(_SQLITE_TIME)
            rows.append(values)
        sql = _INSERT_SQL["named" if sqlite else "pyformat"]
        if len(rows) == 1:
            cursor.execute(sql, rows[0])
        else:
            cursor.executemany(sql, rows)
    finally:
        cursor.close()


def append(store: Store, events: Sequence[Event]) -> None:
    """Append ``events`` in their own transaction (one round trip of writes).

    :raises StoreUnavailable: when the database does not answer.
    """
    if events:
        with store.write() as conn:
            append_in(store, conn, events)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The result of walking the chain."""

    rows: int
    #: None when every link holds; else what is wrong, naming the row.
    problem: str | None = None
    #: The ``seq`` of the first broken link.
    seq: int | None = None

    @property
    def ok(self) -> bool:
        """Return whether the chain is whole."""
        return self.problem is None


def _pruned_start(conn: Connection) -> set[int]:
    """Return the seqs at which a prune row says the chain starts."""
    targets = conn.execute(
        select(_TRAIL.c.target).where(_TRAIL.c.action == "audit.prune")
    ).scalars()
    return {int(m.group(1)) for t in targets if t and (m := _STARTS.search(t))}


def verify(store: Store) -> Verdict:
    """Walk the whole chain; return the first broken link, if any.

    :raises StoreUnavailable: when the database does not answer.
    """
    with store.read() as conn:
        starts = _pruned_start(conn)
        # Streamed in batches (a server-side cursor on PostgreSQL), closed
        # even when the walk stops at a broken link.
        result = conn.execution_options(yield_per=2000).execute(
            select(_TRAIL).order_by(_TRAIL.c.seq)
        )
        try:
            return _walk(result, starts)
        finally:
            result.close()


def _walk(rows: Iterable[Any], starts: set[int]) -> Verdict:
    count = 0
    expected_seq: int | None = None
    prev: str | None = None
    for row in rows:
        values = row._asdict()
        count += 1
        if expected_seq is None:
            if row.seq != 1 and row.seq not in starts:
                return Verdict(
                    count,
                    f"rows before seq {row.seq} are missing (deleted, not "
                    "pruned by the prune command)",
                    row.seq,
                )
            if row.seq == 1 and row.prev_hash != GENESIS:
                return Verdict(count, "seq 1 does not start the chain", 1)
        elif row.seq != expected_seq:
            return Verdict(
                count,
                f"row(s) seq {expected_seq}..{row.seq - 1} are missing "
                f"(a gap before seq {row.seq})",
                expected_seq,
            )
        elif row.prev_hash != prev:
            return Verdict(
                count, f"seq {row.seq} does not link to the row before", row.seq
            )
        if row_hash(values) != row.hash:
            return Verdict(
                count,
                f"seq {row.seq} was altered (its hash does not match its fields)",
                row.seq,
            )
        expected_seq = row.seq + 1
        prev = row.hash
    return Verdict(count)


def prune(store: Store, days: int, by: Event) -> int:
    """Delete rows older than ``days``; append a row that says so.

    :raises StoreUnavailable: when the database does not answer.
    """
    cutoff = now() - timedelta(days=days)
    with store.write() as conn:
        store.lock_trail(conn)
        last = _last(conn)
        deleted = conn.execute(delete(_TRAIL).where(_TRAIL.c.at < cutoff)).rowcount
        detail = f"deleted {deleted} rows older than {cutoff:%Y-%m-%d %H:%M:%S} UTC"
        first = conn.execute(select(func.min(_TRAIL.c.seq))).scalar()
        if deleted:
            # With nothing left the prune row itself starts the chain.
            detail += f"; chain starts at seq {first or last[0] + 1}"
        fields = {name: getattr(by, name) for name in _FIELDS}
        fields.update(action="audit.prune", target=detail)
        # After the last row: its number and hash, even if it was deleted.
        append_in(store, conn, [Event(**fields)], after=last)
    return int(deleted)


@dataclass(frozen=True, slots=True)
class TrailFilter:
    """What the auditor's page asks for (every field optional)."""

    subject: str | None = None
    acting_as: str | None = None
    conversation: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def search(
    store: Store, wanted: TrailFilter, *, limit: int = 200, before: int | None = None
) -> list[Any]:
    """Return trail rows matching ``wanted``, newest first.

    :raises StoreUnavailable: when the database does not answer.
    """
    query = select(_TRAIL).order_by(_TRAIL.c.seq.desc()).limit(limit)
    if wanted.subject:
        like = f"%{wanted.subject}%"
        query = query.where(_TRAIL.c.subject.ilike(like) | _TRAIL.c.email.ilike(like))
    if wanted.acting_as:
        query = query.where(_TRAIL.c.acting_as == wanted.acting_as)
    if wanted.conversation:
        query = query.where(_TRAIL.c.conversation == wanted.conversation)
    if wanted.action:
        query = query.where(_TRAIL.c.action == wanted.action)
    if wanted.since:
        query = query.where(_TRAIL.c.at >= wanted.since)
    if wanted.until:
        query = query.where(_TRAIL.c.at < wanted.until)
    if before is not None:
        query = query.where(_TRAIL.c.seq < before)
    with store.read() as conn:
        return list(conn.execute(query))


def seen_by(store: Store, conversation: str) -> list[Any]:
    """Return who viewed a conversation: subject, e-mail, count, last time.

    :raises StoreUnavailable: when the database does not answer.
    """
    query = (
        select(
            _TRAIL.c.subject,
            func.max(_TRAIL.c.email).label("email"),
            func.count().label("views"),
            func.max(_TRAIL.c.at).label("last"),
        )
        .where(_TRAIL.c.conversation == conversation)
        .group_by(_TRAIL.c.subject)
        .order_by(func.max(_TRAIL.c.at).desc())
    )
    with store.read() as conn:
        return list(conn.execute(query))


def actions(rows: Iterable[Any]) -> list[str]:
    """Return the distinct actions of ``rows``, sorted."""
    return sorted({row.action for row in rows})
