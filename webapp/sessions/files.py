"""The filesystem session store: one JSON file per signed-in session."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .base import _SESSION_ID, SafeSessions, SessionLimit, StoreUnavailable, _dumps

log = logging.getLogger(__name__)

#: The filesystem store recounts its folder (and drops expired records) at
#: most this often, and at the global cap at most every _SWEEP_AT_CAP.
_SWEEP_EVERY = 3600
_SWEEP_AT_CAP = 30


class FileSessions(SafeSessions):
    """Signed-in sessions as JSON files in one folder, counted exactly.

    Layout under ``directory``: ``signed-in/<id>`` (the records),
    ``clients/<client>`` (each client's session ids, oldest first),
    ``state.json`` (how many records exist, when the folder was last
    recounted) and ``lock``. Every change of the count happens under an
    exclusive ``flock`` on ``lock``, so several processes keep it exact;
    reading a session takes no lock. No request lists the folder except a
    recount at most once an hour (or every 30 s while at the cap), which
    also drops records that expired unread.
    """

    def __init__(self, directory: str, **limits: Any) -> None:
        super().__init__(**limits)
        self._records = os.path.join(directory, "signed-in")
        self._clients = os.path.join(directory, "clients")
        self._tmp = os.path.join(directory, "tmp")
        self._state = os.path.join(directory, "state.json")
        self._lock = os.path.join(directory, "lock")
        for folder in (self._records, self._clients, self._tmp):
            os.makedirs(folder, mode=0o700, exist_ok=True)

    # Primitives -----------------------------------------------------------

    def _read(self, sid: str) -> dict[str, Any] | None:
        try:
            record = self._load_record(sid)
        except OSError as exc:
            raise StoreUnavailable(type(exc).__name__) from exc
        if record is None:
            return None
        if record["e"] <= time.time():
            self._remove(sid)
            return None
        data = record["d"]
        return data if isinstance(data, dict) else None

    def _create(self, sid: str, data: dict[str, Any], ttl: int, client: str) -> None:
        try:
            with self._locked():
                now = time.time()
                state = self._load_state()
                try:
                    self._make_room(state, client, now)
                    self._write_record(sid, data, now + ttl)
                    state["n"] += 1
                    self._add_to_client(client, sid, now)
                finally:
                    self._write_json(self._state, state)
        except OSError as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    def _replace(self, sid: str, data: dict[str, Any], ttl: int) -> bool:
        try:
            with self._locked():
                if not os.path.exists(self._record_path(sid)):
                    return False
                self._write_record(sid, data, time.time() + ttl)
                return True
        except OSError as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    def _remove(self, sid: str) -> None:
        try:
            with self._locked():
                state = self._load_state()
                if self._drop(sid, state):
                    self._write_json(self._state, state)
        except OSError as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    def _probe(self) -> None:
        path = os.path.join(self._tmp, "readiness-" + secrets.token_hex(8))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, b"ok")
            finally:
                os.close(fd)
            os.unlink(path)
        except OSError as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    # Under the lock -------------------------------------------------------

    def _make_room(self, state: dict[str, Any], client: str, now: float) -> None:
        """Evict ``client``'s own oldest sessions past its cap; check the total.

        :raises SessionLimit: when the store is full of other clients' sessions.
        """
        if now - state["swept"] > _SWEEP_EVERY or (
            state["n"] >= self.max_signed_in and now - state["swept"] > _SWEEP_AT_CAP
        ):
            self._sweep(state, now)
        mine = [
            entry for entry in self._load_client(client) if self._alive(entry[0], now)
        ]
        while len(mine) >= self.max_per_client:
            oldest, _ = mine.pop(0)
            self._drop(oldest, state)
        self._write_json(self._client_path(client), mine)
        if state["n"] >= self.max_signed_in:
            raise SessionLimit()

    def _alive(self, sid: str, now: float) -> bool:
        record = self._load_record(sid)
        return record is not None and record["e"] > now

    def _drop(self, sid: str, state: dict[str, Any]) -> bool:
        try:
            os.unlink(self._record_path(sid))
        except FileNotFoundError:
            return False
        state["n"] = max(0, state["n"] - 1)
        return True

    def _add_to_client(self, client: str, sid: str, now: float) -> None:
        mine = self._load_client(client)
        mine.append([sid, now])
        self._write_json(self._client_path(client), mine)

    def _sweep(self, state: dict[str, Any], now: float) -> None:
        """Recount the records, dropping expired and unreadable ones."""
        count = 0
        with os.scandir(self._records) as entries:
            for entry in entries:
                record = self._load_record(entry.name)
                if record is None or record["e"] <= now:
                    try:
                        os.unlink(entry.path)
                    except FileNotFoundError:
                        pass
                else:
                    count += 1
        with os.scandir(self._clients) as entries:
            for entry in entries:
                kept = [e for e in self._load_client(entry.name) if self._exists(e[0])]
                if kept:
                    self._write_json(entry.path, kept)
                else:
                    os.unlink(entry.path)
        with os.scandir(self._tmp) as entries:
            for entry in entries:
                # Left by a process that died mid-write.
                if entry.stat().st_mtime < now - 60:
                    os.unlink(entry.path)
        if count != state["n"]:
            log.info("Session store recount: %d records (was %d)", count, state["n"])
        state["n"] = count
        state["swept"] = now

    # Files ------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # flock locks belong to an open file description, so threads of one
        # process exclude each other too (fcntl/lockf locks would not).
        fd = os.open(self._lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _record_path(self, sid: str) -> str:
        if not _SESSION_ID.fullmatch(sid):
            raise ValueError("not a session id")
        return os.path.join(self._records, sid)

    def _client_path(self, client: str) -> str:
        return os.path.join(self._clients, client)

    def _exists(self, sid: str) -> bool:
        return _SESSION_ID.fullmatch(sid) is not None and os.path.exists(
            self._record_path(sid)
        )

    def _load_record(self, sid: str) -> dict[str, Any] | None:
        if not _SESSION_ID.fullmatch(sid):
            return None
        try:
            with open(self._record_path(sid), "rb") as f:
                record = json.loads(f.read())
        except FileNotFoundError:
            return None
        except (ValueError, UnicodeError):
            return None
        if (
            not isinstance(record, dict)
            or not isinstance(record.get("e"), int | float)
            or not isinstance(record.get("d"), dict)
        ):
            return None
        return record

    def _write_record(self, sid: str, data: dict[str, Any], expires: float) -> None:
        self._write_json(self._record_path(sid), {"e": expires, "d": data})

    def _load_state(self) -> dict[str, Any]:
        try:
            with open(self._state, "rb") as f:
                state = json.loads(f.read())
            if isinstance(state.get("n"), int) and isinstance(
                state.get("swept"), int | float
            ):
                return {"n": state["n"], "swept": state["swept"]}
        except FileNotFoundError:
            pass
        except (ValueError, UnicodeError, AttributeError):
            pass
        # First use (or a damaged file): recount at once.
        return {"n": 0, "swept": 0}

    def _load_client(self, client: str) -> list[list[Any]]:
        try:
            with open(self._client_path(client), "rb") as f:
                entries = json.loads(f.read())
        except FileNotFoundError:
            return []
        except (ValueError, UnicodeError):
            return []
        if not isinstance(entries, list):
            return []
        return [
            e
            for e in entries
            if isinstance(e, list) and len(e) == 2 and isinstance(e[0], str)
        ]

    def _write_json(self, path: str, value: Any) -> None:
        # Write a new file and rename it over the old one: a reader sees the
        # old record or the new one, never half of one.
        tmp = os.path.join(self._tmp, secrets.token_hex(12))
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, _dumps(value))
        finally:
            os.close(fd)
        os.replace(tmp, path)
