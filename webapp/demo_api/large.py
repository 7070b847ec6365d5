"""A demo user with a very large history, for benchmarks of whole-history scans.

``demo-large`` sees 10,000 conversations with cheap titles and tags. Nothing is
generated when the app starts: the summaries are built on the first list call,
and each conversation's (two) messages when it is first opened, so the other
demo users and the app's start-up cost stay as they were. Everything is drawn
from generators seeded with the dataset's seed, so the data is deterministic.
"""

from __future__ import annotations

import random
import threading
from datetime import datetime, timedelta

from . import texts
from .conversations import Agent, Json, Owner, conversation, guid, message

LARGE_TOKEN = "demo-large"
LARGE_CONVERSATIONS = 10_000
#: How far back the history reaches, in days (about nine conversations a day).
_HISTORY_DAYS = 3 * 365


class LargeHistory:
    """The large user's conversations, generated on first use."""

    def __init__(
        self,
        seed: int,
        *,
        company_id: str,
        agents: dict[str, Agent],
        now: datetime,
        count: int = LARGE_CONVERSATIONS,
    ) -> None:
        rng = random.Random(f"{seed}:large")
        self.user_id = guid(rng)
        self._seed = seed
        self._owner = Owner(self.user_id, company_id, ("10.20.7.77",))
        self._agents = agents
        self._now = now
        self._count = count
        self._lock = threading.Lock()
        self._summaries: list[Json] | None = None
        self._by_id: dict[str, Json] = {}

    @property
    def summaries(self) -> list[Json]:
        """Return every conversation, newest first, with ``messages`` empty."""
        with self._lock:  # concurrent first calls build the list once
            if self._summaries is None:
                self._summaries = self._build()
                self._by_id = {s["id"]: s for s in self._summaries}
            return self._summaries

    def conversation(self, conversation_id: str) -> Json | None:
        """Return one conversation with two short messages, or None if unknown."""
        summary = self._by_id.get(conversation_id) if self.summaries else None
        if summary is None:
            return None
        rng = random.Random(f"{self._seed}:large:{conversation_id}")
        return {
            **summary,
            "messages": [
                message(rng, "User", f"Question about {summary['title'].lower()}?"),
                message(rng, "AI", "Here is the **short** answer, from the log."),
            ],
        }

    def _build(self) -> list[Json]:
        rng = random.Random(f"{self._seed}:large:summaries")
        span = _HISTORY_DAYS * 86400
        moments = sorted(
            (self._now - timedelta(seconds=rng.random() * span))
            for _ in range(self._count)
        )
        summaries: list[Json] = []
        for number, updated in enumerate(reversed(moments), start=1):
            topic = rng.choice(texts.ALICE_TOPICS)
            summaries.append(
                conversation(
                    rng,
                    owner=self._owner,
                    agent=self._agents[topic.agent],
                    title=f"{topic.phrase.capitalize()} #{number}",
                    tags=topic.tags,
                    messages=[],
                    updated=updated,
                    created=updated - timedelta(seconds=rng.uniform(30, 3600)),
                )
            )
        return summaries
