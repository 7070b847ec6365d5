"""Build the deterministic demo dataset the demo AIRisk API serves.

Everything is drawn from one ``random.Random(seed)`` and anchored at ``now``, so
the same seed and ``now`` give byte-identical JSON. Records are stored as dicts
already in the API's wire shape (field names as served), so serving is only
filtering and ``json.dumps``.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from . import answers, hostile, texts
from .conversations import (
    Agent,
    Json,
    Owner,
    conversation,
    guid,
    long_conversation_messages,
    ordinary_messages,
    zulu_iso,
)
from .large import LARGE_TOKEN, LargeHistory

ALICE_TOKEN = "demo-alice"
BOB_TOKEN = "demo-bob"
EXPIRED_TOKEN = "demo-expired"
GENERIC_TOKEN = "demo-generic"
HOSTILE_TOKEN = "demo-hostile"

DEMO_TOKENS: dict[str, str] = {
    ALICE_TOKEN: "Alice Martin, the main demo user: 270+ conversations, one very long",
    BOB_TOKEN: "Bob Chen, a second user with a smaller security-focused history",
    EXPIRED_TOKEN: "an expired token: every call answers 401",
    GENERIC_TOKEN: "an application token: 403 on /api/Chat/*, 200 on ListUsers",
    LARGE_TOKEN: "a user with 10,000 short conversations, for whole-history "
    "scan benchmarks",
    HOSTILE_TOKEN: "a user whose conversations carry an XSS and Markdown-bomb "
    "corpus: the pages must stay inert",
}

ALICE_CONVERSATIONS = 270  # ordinary ones; the long conversation comes on top
LONG_CONVERSATION_PAIRS = 1000
LONG_CONVERSATION_TITLE = "Ongoing policy Q&A log (very long thread)"

# (userName, IP addresses from the documentation ranges and a private net)
_USERS = (
    ("alice.martin", ("203.0.113.24", "198.51.100.7", "10.20.4.31")),
    ("bob.chen", ("203.0.113.88", "10.20.9.12")),
    ("carol.diaz", ("198.51.100.40",)),
    ("dan.okafor", ("192.0.2.15",)),
)
#: userName -> (firstName, lastName) in ListUsers. The hostile user's name is
#: hostile too, so the user picker proves it escapes what AIRisk sends.
_NAMES = {
    "alice.martin": ("Alice", "Martin"),
    "bob.chen": ("Bob", "Chen"),
    "carol.diaz": ("Carol", "Diaz"),
    "dan.okafor": ("Dan", "Okafor"),
    "mallory.quinn": ("Mallory", "<img src=x onerror=alert(1)>Quinn"),
    "lena.larsen": ("Lena", "Larsen"),
}
EMAIL_DOMAIN = "northwind.example"


@dataclass(frozen=True)
class TokenGrant:
    """What one demo token is allowed to do."""

    token: str
    user_id: str | None  # None marks the application (generic) token

    @property
    def is_generic(self) -> bool:
        """Tell whether this is an application token rather than a user's."""
        return self.user_id is None


@dataclass(frozen=True)
class Dataset:
    """The demo tenant: agents, users and conversations in wire shape."""

    seed: int
    now: datetime
    company_id: str
    agents: list[Json]
    user_records: list[Json]
    users: dict[str, list[Json]]  # user id -> conversations, newest first
    summaries: dict[str, list[Json]]  # same order, ``messages`` emptied
    grants: dict[str, TokenGrant]
    long_conversation_id: str
    extra_agents: dict[str, list[Json]]  # user id -> agents only they see
    large: LargeHistory  # demo-large: built on first use, not in ``users``
    _by_id: dict[str, tuple[str, Json]] = field(repr=False)
    #: Conversations whose GetConversation answer leaves out dates, tokens,
    #: cost and tags (their list rows keep them), as AIRisk may.
    sparse: frozenset[str] = frozenset()

    def grant_for(self, token: str) -> TokenGrant | None:
        """Return the grant of a valid token, or None if unknown or expired.

        ``<token>@<unix seconds>`` (for example ``demo-alice@1767225600``) acts
        as ``<token>`` until that moment and is rejected after it, so a demo or
        a test can watch a token expire in the middle of a session.
        """
        base, _, until = token.partition("@")
        if until:
            # isascii: "³" passes isdigit() but int() refuses it.
            if not (until.isascii() and until.isdigit()) or time.time() >= int(until):
                return None
            token = base
        return self.grants.get(token)

    def agents_for(self, user_id: str) -> list[Json]:
        """Return the agents ListAgents shows the user: the tenant's, then extras."""
        return self.agents + self.extra_agents.get(user_id, [])

    def user_id_for(self, token: str) -> str | None:
        """Return the user id a user token acts as (None for other tokens)."""
        grant = self.grants.get(token)
        return grant.user_id if grant else None

    def summaries_for(self, user_id: str) -> list[Json]:
        """Return the user's conversation summaries, newest first."""
        if user_id == self.large.user_id:
            return self.large.summaries
        return self.summaries[user_id]

    def conversation(self, user_id: str, conversation_id: str) -> Json | None:
        """Return one of the user's conversations, or None if not theirs."""
        if user_id == self.large.user_id:
            return self.large.conversation(conversation_id)
        found = self._by_id.get(conversation_id)
        if found is None or found[0] != user_id:
            return None
        return found[1]


def _agents(rng: random.Random, now: datetime) -> tuple[list[Json], dict[str, Agent]]:
    records: list[Json] = []
    by_key: dict[str, Agent] = {}
    for key, name, description in texts.AGENT_SPECS:
        agent_id = guid(rng)
        suggestions: list[Json] = []
        for greeting in texts.SUGGESTIONS[key][:3]:
            created = now - timedelta(days=rng.uniform(200, 400))
            updated = created + timedelta(days=rng.uniform(0, 150))
            suggestions.append(
                {
                    "botID": agent_id,
                    "greeting": greeting,
                    "imageName": f"{key}-{len(suggestions) + 1}.png",
                    "id": guid(rng),
                    "version": rng.randint(1, 4),
                    "lastUpdated": zulu_iso(updated),
                    "createdDate": zulu_iso(created),
                    "deleted": False,
                    "updated": updated > created,
                    "added": rng.random() < 0.5,
                }
            )
        records.append(
            {
                "id": agent_id,
                "name": name,
                "description": description,
                "botSuggestion": suggestions,
            }
        )
        by_key[key] = Agent(agent_id, name)
    return records, by_key


def _spread(rng: random.Random, now: datetime, count: int) -> list[datetime]:
    """Return ``count`` moments: 4 today, 5 yesterday, the rest up to ~89 days."""
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday = today - timedelta(days=1)
    today_span = (now - today).total_seconds()
    moments = [today + timedelta(seconds=rng.random() * today_span) for _ in range(4)]
    moments += [yesterday + timedelta(seconds=rng.uniform(0, 86399)) for _ in range(5)]
    # Triangular with the mode at "the day before yesterday": recent days are
    # busier, as in a real history, and the oldest stays inside 90 days.
    moments += [
        yesterday - timedelta(days=rng.triangular(0, 87.5, 0))
        for _ in range(count - len(moments))
    ]
    return moments


def _history(
    rng: random.Random,
    *,
    owner: Owner,
    agents: dict[str, Agent],
    topics: tuple[texts.Topic, ...],
    title_templates: dict[str, tuple[str, ...]] | tuple[str, ...],
    now: datetime,
    count: int,
) -> list[tuple[datetime, Json]]:
    history: list[tuple[datetime, Json]] = []
    for updated in _spread(rng, now, count):
        topic = rng.choice(topics)
        agent = agents[topic.agent]
        if isinstance(title_templates, dict):
            template = rng.choice(title_templates[topic.agent])
        else:
            template = rng.choice(title_templates)
        title = answers.capitalise(answers.fill(template, rng, topic.phrase))
        created = updated - timedelta(seconds=rng.uniform(30, 86400))
        messages = ordinary_messages(rng, agent, topic.phrase, owner, now)
        conv = conversation(
            rng,
            owner=owner,
            agent=agent,
            title=title,
            tags=topic.tags,
            messages=messages,
            updated=updated,
            created=created,
        )
        history.append((updated, conv))
    return history


def _newest_first(history: list[tuple[datetime, Json]]) -> list[Json]:
    # Ties (impossible in practice) fall back to the id so order stays stable.
    history.sort(key=lambda pair: (pair[0], pair[1]["id"]), reverse=True)
    return [conv for _, conv in history]


def _user_record(user_id: str, user_name: str, company_id: str) -> Json:
    first, last = _NAMES[user_name]
    return {
        "id": user_id,
        "userName": user_name,
        "firstName": first,
        "lastName": last,
        "email": f"{user_name}@{EMAIL_DOMAIN}",
        "companyId": company_id,
    }


def build_dataset(seed: int, now: datetime) -> Dataset:
    """Build the demo tenant from ``seed``, with dates relative to ``now``.

    :raises ValueError: if ``now`` is a naive datetime.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    rng = random.Random(seed)
    company_id = guid(rng)
    agent_records, agents = _agents(rng, now)

    owners: list[Owner] = []
    user_records: list[Json] = []
    for user_name, addresses in _USERS:
        owner = Owner(guid(rng), company_id, addresses)
        owners.append(owner)
        user_records.append(_user_record(owner.user_id, user_name, company_id))
    alice, bob = owners[0], owners[1]

    alice_history = _history(
        rng,
        owner=alice,
        agents=agents,
        topics=texts.ALICE_TOPICS,
        title_templates=texts.TITLE_TEMPLATES,
        now=now,
        count=ALICE_CONVERSATIONS,
    )
    long_agent = agents["policy"]
    long_updated = now - timedelta(minutes=rng.uniform(20, 360))
    long_conv = conversation(
        rng,
        owner=alice,
        agent=long_agent,
        title=LONG_CONVERSATION_TITLE,
        tags=("policy", "log"),
        messages=long_conversation_messages(
            rng, long_agent, alice, now, LONG_CONVERSATION_PAIRS
        ),
        updated=long_updated,
        created=now - timedelta(days=61),
    )
    alice_history.append((long_updated, long_conv))

    bob_history = _history(
        rng,
        owner=bob,
        agents=agents,
        topics=texts.BOB_TOPICS,
        title_templates=texts.BOB_TITLE_TEMPLATES,
        now=now,
        count=rng.randint(25, 40),
    )

    # Drawn last, from its own generator, so Alice and Bob stay as they were.
    hostile_user = hostile.build(
        random.Random(rng.getrandbits(64)),
        company_id=company_id,
        agents=list(agents.values()),
        now=now,
    )

    users: dict[str, list[Json]] = {owner.user_id: [] for owner in owners}
    users[alice.user_id] = _newest_first(alice_history)
    users[bob.user_id] = _newest_first(bob_history)
    users[hostile_user.user_id] = hostile_user.conversations
    summaries = {
        user_id: [{**conv, "messages": []} for conv in convs]
        for user_id, convs in users.items()
    }
    by_id = {
        conv["id"]: (user_id, conv)
        for user_id, convs in users.items()
        for conv in convs
    }
    grants = {
        ALICE_TOKEN: TokenGrant(ALICE_TOKEN, alice.user_id),
        BOB_TOKEN: TokenGrant(BOB_TOKEN, bob.user_id),
        GENERIC_TOKEN: TokenGrant(GENERIC_TOKEN, None),
        HOSTILE_TOKEN: TokenGrant(HOSTILE_TOKEN, hostile_user.user_id),
        # EXPIRED_TOKEN is deliberately absent: it must always answer 401.
    }
    # Its own generators, seeded from ``seed``: the other users stay as they were.
    large = LargeHistory(seed, company_id=company_id, agents=agents, now=now)
    grants[LARGE_TOKEN] = TokenGrant(LARGE_TOKEN, large.user_id)
    user_records.append(_user_record(hostile_user.user_id, "mallory.quinn", company_id))
    user_records.append(_user_record(large.user_id, "lena.larsen", company_id))
    return Dataset(
        seed=seed,
        now=now,
        company_id=company_id,
        agents=agent_records,
        user_records=user_records,
        users=users,
        summaries=summaries,
        grants=grants,
        long_conversation_id=long_conv["id"],
        large=large,
        extra_agents={hostile_user.user_id: hostile_user.agents},
        _by_id=by_id,
        # Every ninth of Alice's, from the fifth: two on the first list page.
        sparse=frozenset(
            conv["id"]
            for index, conv in enumerate(users[alice.user_id])
            if index % 9 == 4 and conv is not long_conv
        ),
    )
