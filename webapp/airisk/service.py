"""Cached access to AIRisk on behalf of one token at a time.

The views talk to this layer, not to the HTTP client: it reuses recent answers
(per token, never shared between tokens), records when each answer was fetched
so pages can say how fresh they are, bypasses the cache on "refresh", forgets
a token's answers at sign-out, and pages through the whole history for search.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from .attachments import FileCheck, check_files
from .cache import Cache
from .client import AIRiskClient
from .models import Agent, Conversation, ConversationSummary
from .scans import JOB_ID, Job, Jobs, ScanProgress, Stopped

__all__ = ["FileCheck", "History", "ScanProgress", "AIRiskService", "CachePolicy"]

T = TypeVar("T")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: Rows asked for per call while scanning the whole history.
SCAN_PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class ConversationPage:
    """One page of GetConversations and when it was fetched."""

    rows: tuple[ConversationSummary, ...]
    fetched_at: datetime
    #: An empty answer followed these rows: there is no next page.
    last: bool = False


@dataclass(frozen=True, slots=True)
class History:
    """Every conversation summary a token can see (as far as scanned)."""

    rows: tuple[ConversationSummary, ...]
    pages: int
    complete: bool
    fetched_at: datetime
    #: The scan stopped at AIRISK_SCAN_MAX: as far as a scan ever goes, so it
    #: is reused like a complete one (only a *stopped* scan is redone).
    capped: bool = False
    #: The job that scanned it (a "Stop" link names it).
    scan_id: str = ""

    @property
    def final(self) -> bool:
        """Return whether scanning again would not read further."""
        return self.complete or self.capped


@dataclass(frozen=True)
class CachePolicy:
    """How long each kind of answer is reused, in seconds."""

    pages: float = 60
    conversations: float = 60
    agents: float = 300
    history: float = 300
    max_history: int = 100_000
    #: Most conversations one "Has attachments" check opens.
    max_file_checks: int = 1000
    #: Distinct scans (or attachment checks) one token may run at once.
    scans_per_token: int = 2

    @property
    def longest(self) -> float:
        """Return the longest time anything is cached, in seconds."""
        return max(self.pages, self.conversations, self.agents, self.history)


def _signed_out_key(owner: str) -> str:
    """Return the key of a token's sign-out mark.

    Outside the token's own prefix (``owner + ":"``), so deleting the
    token's entries at sign-out keeps the mark that late writers look for.
    """
    return f"{owner}-signed-out:at"


def _now() -> datetime:
    return datetime.now(UTC)


class _Flight:
    """One fetch in progress; ``ok`` tells whether ``result`` was set."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False
        self.result: Any = None


class _Flights:
    """At most one fetch per key at a time in this process; the others wait.

    Waiters take the first fetch's result. If it failed, each waiter fetches
    for itself, so no exception object is shared between threads and a
    waiter sees its own error.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, _Flight] = {}

    def run(self, key: str, fetch: Callable[[], T]) -> T:
        """Return ``fetch()``, or the result of the same fetch already running."""
        with self._lock:
            flight = self._running.get(key)
            leader = flight is None
            if flight is None:
                flight = self._running[key] = _Flight()
        if not leader:
            # The first fetch is bounded by the client's deadline, so is this.
            flight.done.wait()
            return cast(T, flight.result) if flight.ok else fetch()
        try:
            flight.result = fetch()
            flight.ok = True
            return cast(T, flight.result)
        finally:
            with self._lock:
                del self._running[key]
            flight.done.set()


class AIRiskService:
    """The dashboard's view of AIRisk: the client plus a per-token cache."""

    def __init__(self, client: AIRiskClient, cache: Cache, policy: CachePolicy) -> None:
        self.client = client
        self.cache = cache
        self.policy = policy
        self._flights = _Flights()
        self.jobs = Jobs(policy.scans_per_token)

    def _cached(self, token: str, key: str, fresh: bool) -> tuple[str, Any]:
        full_key = f"{self.cache.token_key(token)}:{key}"
        return full_key, None if fresh else self.cache.get(full_key)

    def check_token(self, token: str) -> None:
        """Ask AIRisk whether it accepts ``token`` (uncached: this is sign-in).

        :raises TokenRejected: if AIRisk answers 401.
        :raises AIRiskError: a subclass for each other kind of failure.
        """
        self.client.check_token(token)

    def agents(self, token: str, *, fresh: bool = False) -> list[Agent]:
        """Return the token's agents.

        :raises AIRiskError: a subclass for each kind of failure.
        """
        key, hit = self._cached(token, "agents", fresh)
        if hit is not None:
            return list(hit)

        # Every page needs the agents: the first views of a token (several
        # tabs, a page and its exports) would each fetch them. One does.
        def fetch() -> tuple[Agent, ...]:
            agents = tuple(self.client.list_agents(token))
            self.cache.set(key, agents, ttl=self.policy.agents)
            return agents

        return list(self._flights.run(key, fetch))

    def page(
        self,
        token: str,
        *,
        results: int,
        skip: int,
        tag: str = "",
        agent_id: str | None = None,
        fresh: bool = False,
    ) -> ConversationPage:
        """Return one page of ``results`` conversation summaries from ``skip``.

        AIRisk may serve fewer rows than asked and sends no end marker, so a
        short answer is followed by further calls from where it ended, until
        the page is full or an empty answer shows the end (``last``).

        :raises AIRiskError: a subclass for each kind of failure.
        """
        key, hit = self._cached(
            token, f"page:{results}:{skip}:{agent_id or ''}:{tag}", fresh
        )
        if hit is not None:
            return hit
        rows: dict[str, ConversationSummary] = {}
        last = False
        while len(rows) < results:
            batch = self.client.list_conversations(
                token,
                results=results - len(rows),
                skip=skip + len(rows),
                tag=tag,
                agent_id=agent_id,
            )
            new = [row for row in batch if row.id not in rows]
            rows.update((row.id, row) for row in new)
            last = not batch
            # An answer with nothing new (an upstream that ignores ``skip``)
            # would repeat forever: show what there is.
            if not new:
                break
        # AIRisk documents no order: sort each page newest first (as the
        # public client does), so its time groups, previous/next and JSON
        # all see one order. A row with no date goes last.
        ordered = sorted(
            rows.values(), key=lambda row: row.updated or _EPOCH, reverse=True
        )
        page = ConversationPage(tuple(ordered[:results]), _now(), last)
        self.cache.set(key, page, ttl=self.policy.pages)
        return page

    def conversation(
        self, token: str, conversation_id: str, *, fresh: bool = False
    ) -> Conversation:
        """Return one conversation with its messages.

        :raises AIRiskError: a subclass for each kind of failure.
        """
        key, hit = self._cached(token, f"conversation:{conversation_id}", fresh)
        if hit is not None:
            return hit
        conversation = dataclasses.replace(
            self.client.get_conversation(token, conversation_id), fetched_at=_now()
        )
        self.cache.set(key, conversation, ttl=self.policy.conversations)
        return conversation

    def listed_row(
        self,
        token: str,
        conversation_id: str,
        *,
        results: int = 20,
        skip: int = 0,
        tag: str = "",
        agent_id: str = "",
    ) -> ConversationSummary | None:
        """Return the row a cached list shows for a conversation, if any.

        Looks in the list page the user came from (``results``...), the
        scan of that list, and the default first page and scan; never calls
        AIRisk (the row is a fallback for facts, not worth a request).
        """
        keys = [
            f"page:{results}:{skip}:{agent_id}:{tag}",
            f"history:{agent_id}:{tag}",
            "page:20:0::",
            "history::",
        ]
        for key in dict.fromkeys(keys):  # in order, without repeats
            _, hit = self._cached(token, key, False)
            for row in getattr(hit, "rows", ()):
                if row.id == conversation_id:
                    return cast(ConversationSummary, row)
        return None

    def cached_history(
        self, token: str, *, agent_id: str = "", tag: str = ""
    ) -> History | None:
        """Return a finished or stopped scan still in the cache, if any."""
        _, hit = self._cached(token, f"history:{agent_id}:{tag}", False)
        return hit

    def scan_job(
        self,
        token: str,
        *,
        agent_id: str = "",
        tag: str = "",
        fresh: bool = False,
    ) -> History | Job[History]:
        """Return a finished scan from the cache, or the job scanning now.

        AIRisk has no total and no title search, so the only way to search
        everything is to read every page. Identical scans of one token share
        one job; a new one starts only when none runs. The finished scan is
        cached; a stopped one caches what it had, marked incomplete.

        :raises ScansBusy: if the token already runs as many jobs as it may.
        """
        key, hit = self._cached(token, f"history:{agent_id}:{tag}", fresh)
        if hit is not None and hit.final:
            return cast(History, hit)
        owner = self.cache.token_key(token)

        def body(job: Job[History]) -> History:
            return self._scan(job, token, key, agent_id, tag)

        return self.jobs.join_or_start(key, owner, body, self._should_stop)

    def scan(
        self,
        token: str,
        *,
        agent_id: str = "",
        tag: str = "",
        fresh: bool = False,
        gone: Callable[[], bool] | None = None,
    ) -> Iterator[ScanProgress]:
        """Yield a scan's progress; the last step carries the history.

        :raises ScansBusy: if the token already runs as many jobs as it may.
        :raises ClientGone: when ``gone()`` says the client hung up.
        :raises AIRiskError: a subclass for each kind of failure.
        """
        found = self.scan_job(token, agent_id=agent_id, tag=tag, fresh=fresh)
        if isinstance(found, History):
            yield ScanProgress(found.pages, len(found.rows), found.rows, found)
            return
        yield from found.follow(gone)

    def _scan(
        self, job: Job[History], token: str, key: str, agent_id: str, tag: str
    ) -> History:
        rows: dict[str, ConversationSummary] = {}
        pages = skip = 0
        started = _now()
        complete = False
        try:
            while len(rows) < self.policy.max_history:
                job.check()
                # Continue from what was actually served: AIRisk may cap
                # ``results`` below what was asked, so only an empty page is
                # the end of the history (as the live client assumes).
                batch = self.client.list_conversations(
                    token,
                    results=SCAN_PAGE_SIZE,
                    skip=skip,
                    tag=tag,
                    agent_id=agent_id or None,
                )
                complete = not batch
                if complete:
                    break
                pages += 1
                skip += len(batch)
                # A conversation updated during the scan moves to the front
                # and shifts the pages: keep the first copy, drop repeats.
                new = tuple(row for row in batch if row.id not in rows)
                if not new:
                    # Nothing new on a whole page: an upstream that ignores
                    # ``skip`` would otherwise be read forever.
                    break
                rows.update((row.id, row) for row in new)
                job.publish(pages, len(rows), new)
        except Stopped:
            pass
        finally:
            capped = len(rows) >= self.policy.max_history
            history = History(
                tuple(rows.values()), pages, complete, started, capped, job.id
            )
            if rows or complete:
                self._store(job, key, history, ttl=self.policy.history)
        return history

    def known_files(self, token: str) -> dict[str, bool]:
        """Return which conversations are known to have attachments (cached)."""
        known = self.cache.get(f"{self.cache.token_key(token)}:files")
        return dict(known or {})

    def file_check(
        self, token: str, candidates: list[ConversationSummary], *, fresh: bool = False
    ) -> FileCheck | Job[FileCheck]:
        """Return which ``candidates`` have attachments, or the job checking now.

        Summaries do not say whether a conversation has files, so each
        candidate is opened once; the answers are kept per token for
        AIRISK_SCAN_TTL, a few calls are in flight at a time and one check
        opens at most ``policy.max_file_checks`` conversations.

        :raises ScansBusy: if the token already runs as many jobs as it may.
        """
        owner = self.cache.token_key(token)
        known_key = f"{owner}:files"
        known = {} if fresh else self.known_files(token)
        unknown = [row for row in candidates if row.id not in known]
        if not unknown:
            return FileCheck(known, len(candidates), len(candidates), complete=True)
        digest = hashlib.sha256("\n".join(r.id for r in unknown).encode()).hexdigest()
        key = f"{owner}:file-check:{digest[:32]}"

        def body(job: Job[FileCheck]) -> FileCheck:
            return self._check_files(job, token, known_key, known, unknown)

        return self.jobs.join_or_start(key, owner, body, self._should_stop)

    def _check_files(
        self,
        job: Job[FileCheck],
        token: str,
        known_key: str,
        known: dict[str, bool],
        unknown: list[ConversationSummary],
    ) -> FileCheck:
        found: dict[str, bool] = {}
        try:
            rows = unknown[: self.policy.max_file_checks]
            check_files(job, self.client, token, rows, found)
        finally:
            if found:
                merged = {**(self.cache.get(known_key) or {}), **known, **found}
                self._store(job, known_key, merged, ttl=self.policy.history)
        checked = len(known) + len(found)
        total = len(known) + len(unknown)
        return FileCheck({**known, **found}, checked, total, checked == total)

    def stop(self, token: str, job_id: str) -> Job[Any] | None:
        """Stop the job ``job_id`` of ``token``, here or in another process.

        Returns the job if it runs in this process (its rows are what it
        found so far), else None after asking other processes to stop it.
        """
        owner = self.cache.token_key(token)
        if not JOB_ID.fullmatch(job_id):
            return None  # no job has such a name: nothing to stop or mark
        job = self.jobs.by_id(owner, job_id)
        if job is not None:
            job.stop()
            return job
        # Another process may run it: it looks for this mark between calls.
        self.cache.set(f"{owner}:stop:{job_id}", True, ttl=self.policy.history)
        return None

    def _should_stop(self, job: Job[Any]) -> bool:
        """Return whether another process stopped ``job`` or signed its token out."""
        if self.cache.get(f"{job.owner}:stop:{job.id}"):
            return True
        return self._signed_out_since(job)

    def _store(self, job: Job[Any], key: str, value: Any, *, ttl: float) -> None:
        """Cache what ``job`` produced, unless its token signed out meanwhile."""
        if job.cancelled:
            return
        self.cache.set(key, value, ttl=ttl)
        # Written, then checked: a sign-out between the check above and the
        # write (in another process too) leaves its mark, seen here; all the
        # token's entries go, as at sign-out.
        if job.cancelled or self._signed_out_since(job):
            self.cache.delete_prefix(job.owner + ":")

    def _signed_out_since(self, job: Job[Any]) -> bool:
        """Return whether ``job``'s token signed out after the job started."""
        signed_out = self.cache.get(_signed_out_key(job.owner))
        return signed_out is not None and signed_out >= job.started

    def forget(self, token: str) -> None:
        """Drop everything cached for ``token`` and stop its jobs (on sign-out)."""
        owner = self.cache.token_key(token)
        # The mark first, then the jobs, then the entries: a job that writes
        # after the deletion sees the mark and removes what it wrote.
        self.cache.set(_signed_out_key(owner), time.time(), ttl=self.policy.longest)
        self.jobs.cancel(owner)
        self.cache.delete_prefix(owner + ":")
