"""Cached access to AIRisk on behalf of one token at a time.

The views talk to this layer, not to the HTTP client: it reuses recent answers
(per token, never shared between tokens), records when each answer was fetched
so pages can say how fresh they are, bypasses the cache on "refresh", forgets
a token's answers at sign-out, and pages through the whole history for search.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from .cache import Cache
from .client import AIRiskClient
from .models import Agent, Conversation, ConversationSummary

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

    @property
    def final(self) -> bool:
        """Return whether scanning again would not read further."""
        return self.complete or self.capped


@dataclass(frozen=True, slots=True)
class ScanProgress:
    """How far a whole-history scan has come; ``history`` is set when done."""

    pages: int
    conversations: int
    new_rows: tuple[ConversationSummary, ...]
    history: History | None = None


@dataclass(frozen=True)
class CachePolicy:
    """How long each kind of answer is reused, in seconds."""

    pages: float = 60
    conversations: float = 60
    agents: float = 300
    history: float = 300
    max_history: int = 100_000


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

    def _cached(self, token: str, key: str, fresh: bool) -> tuple[str, Any]:
        full_key = f"{self.cache.token_key(token)}:{key}"
        return full_key, None if fresh else self.cache.get(full_key)

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
        search: str = "",
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
            token, f"page:{results}:{skip}:{agent_id or ''}:{search}", fresh
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
                search=search,
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
        search: str = "",
        agent_id: str = "",
    ) -> ConversationSummary | None:
        """Return the row a cached list shows for a conversation, if any.

        Looks in the list page the user came from (``results``...), the
        scan of that list, and the default first page and scan; never calls
        AIRisk (the row is a fallback for facts, not worth a request).
        """
        keys = [
            f"page:{results}:{skip}:{agent_id}:{search}",
            f"history:{agent_id}:{search}",
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
        self, token: str, *, agent_id: str = "", search: str = ""
    ) -> History | None:
        """Return a finished or stopped scan still in the cache, if any."""
        _, hit = self._cached(token, f"history:{agent_id}:{search}", False)
        return hit

    def scan(
        self,
        token: str,
        *,
        agent_id: str = "",
        search: str = "",
        fresh: bool = False,
    ) -> Iterator[ScanProgress]:
        """Page through the whole history, yielding progress after each page.

        AIRisk has no total and no title search, so the only way to search
        everything is to read every page. The finished scan is cached; a scan
        that is stopped (the generator closed) caches what it had, marked
        incomplete, so "stop" keeps the results found so far.

        :raises AIRiskError: a subclass for each kind of failure.
        """
        key, hit = self._cached(token, f"history:{agent_id}:{search}", fresh)
        if hit is not None and hit.final:
            yield ScanProgress(hit.pages, len(hit.rows), hit.rows, hit)
            return
        rows: dict[str, ConversationSummary] = {}
        pages = skip = 0
        started = _now()
        complete = False
        try:
            while len(rows) < self.policy.max_history:
                # Continue from what was actually served: AIRisk may cap
                # ``results`` below what was asked, so only an empty page is
                # the end of the history (as the live client assumes).
                batch = self.client.list_conversations(
                    token,
                    results=SCAN_PAGE_SIZE,
                    skip=skip,
                    search=search,
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
                yield ScanProgress(pages, len(rows), new)
        finally:
            if rows or complete:
                capped = len(rows) >= self.policy.max_history
                history = History(
                    tuple(rows.values()), pages, complete, started, capped
                )
                self.cache.set(key, history, ttl=self.policy.history)
        # Every page's rows were yielded with it: the last step brings none.
        yield ScanProgress(pages, len(rows), (), history)

    def forget(self, token: str) -> None:
        """Drop everything cached for ``token`` (on sign-out)."""
        self.cache.delete_prefix(self.cache.token_key(token) + ":")
