"""Generate demo conversations and messages in the AIRisk wire shape.

Dates are deliberately written in mixed forms (milliseconds, seven-digit .NET
ticks, whole seconds; no zone on conversations, ``Z`` on citations) so clients
that parse leniently are exercised. Every form parses with
``datetime.fromisoformat`` on Python 3.11.
"""

from __future__ import annotations

import random
import string
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from . import answers, texts

Json = dict[str, Any]

_ALNUM = string.ascii_letters + string.digits
_FILES_BASE = "https://files.demo.aicrisk.com"


def guid(rng: random.Random) -> str:
    """Return a version-4 GUID string drawn from the seeded generator."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def naive_iso(moment: datetime, rng: random.Random) -> str:
    """Format a UTC moment without a zone, in one of the forms ASP.NET emits."""
    naive = moment.astimezone(UTC).replace(tzinfo=None)
    form = rng.random()
    if form < 0.75:
        return naive.isoformat(timespec="milliseconds")
    if form < 0.9:
        # DateTime's round-trip format has seven fractional digits.
        return naive.isoformat(timespec="microseconds") + str(rng.randint(0, 9))
    return naive.isoformat(timespec="seconds")


def zulu_iso(moment: datetime) -> str:
    """Format a UTC moment with a ``Z`` suffix."""
    naive = moment.astimezone(UTC).replace(tzinfo=None)
    return naive.isoformat(timespec="milliseconds") + "Z"


def _token(rng: random.Random, prefix: str) -> str:
    return prefix + "".join(rng.choices(_ALNUM, k=24))


@dataclass(frozen=True)
class Owner:
    """Who a generated conversation belongs to."""

    user_id: str
    company_id: str
    ip_addresses: tuple[str, ...]


@dataclass(frozen=True)
class Agent:
    """The fields of an agent that conversation generation needs."""

    id: str
    name: str


def message(rng: random.Random, message_type: str, text: str) -> Json:
    """Return a Message dict with no attachment, citations or feedback."""
    return {
        "id": guid(rng),
        "messageType": message_type,
        "text": text,
        "feedback": None,
        "fileURL": None,
        "fileName": None,
        "file64": None,
        "fileIds": [],
        "citations": [],
    }


def _attach(rng: random.Random, msg: Json, company_id: str) -> None:
    name = rng.choice(texts.ATTACHMENT_NAMES)
    blob = f"{company_id}/{guid(rng)}/{name}"
    roll = rng.random()
    # Most uploads are https URLs; a few legacy rows hold a bare blob name or
    # plain http, which a client must not turn into a clickable link blindly.
    if roll < 0.8:
        url = f"{_FILES_BASE}/{blob}"
    elif roll < 0.9:
        url = blob
    else:
        url = f"http://files.demo.aicrisk.com/{blob}"
    msg["fileName"] = name
    msg["fileURL"] = url
    msg["fileIds"] = [_token(rng, "file-")]


def _cite(
    rng: random.Random, blocks: list[str], company_id: str, now: datetime
) -> list[Json]:
    count = rng.randint(1, 3)
    annotation = rng.randint(1, 9)
    citations: list[Json] = []
    markers: list[str] = []
    for index, doc in enumerate(rng.sample(texts.KNOWLEDGE_BASE, count)):
        label = rng.choice(("source", doc.filepath.rsplit("/", 1)[-1]))
        markers.append(f"【{annotation}:{index}†{label}】")
        created = now - timedelta(days=rng.uniform(120, 700))
        updated = created + timedelta(days=rng.uniform(0, 100))
        citations.append(
            {
                "id": guid(rng),
                "title": doc.title,
                "filepath": doc.filepath,
                "url": f"{_FILES_BASE}/kb/{company_id}/{doc.filepath}",
                "content": doc.snippet,
                "chunk_id": f"{doc.filepath.rsplit('/', 1)[-1]}-chunk-"
                f"{rng.randint(0, 120):03d}",
                "companyId": company_id,
                "lastUpdated": zulu_iso(updated),
                "createdDate": zulu_iso(created),
            }
        )
    # Markers sit at the end of the first paragraph, as the assistant puts them.
    blocks[0] = blocks[0] + "".join(markers)
    return citations


def _feedback(rng: random.Random) -> str | None:
    roll = rng.random()
    if roll < 0.1:
        return "Like"
    if roll < 0.14:
        return "Dislike"
    return None


def ordinary_messages(
    rng: random.Random, agent: Agent, topic: str, owner: Owner, now: datetime
) -> list[Json]:
    """Return 2-14 alternating User/AI messages, sometimes after a System one."""
    messages: list[Json] = []
    if rng.random() < 0.25:
        messages.append(
            message(
                rng,
                "System",
                f"You are {agent.name}, an assistant for Northwind Traders. Answer "
                "from the company knowledge base and cite your sources.",
            )
        )
    for turn in range(rng.randint(2, 14)):
        if turn % 2 == 0:
            pool = texts.USER_OPENERS if turn == 0 else texts.USER_FOLLOW_UPS
            msg = message(rng, "User", answers.fill(rng.choice(pool), rng, topic))
            if rng.random() < 0.12:
                _attach(rng, msg, owner.company_id)
        else:
            blocks = answers.ai_answer(rng, topic)
            citations: list[Json] = []
            if rng.random() < 0.25:
                citations = _cite(rng, blocks, owner.company_id, now)
            msg = message(rng, "AI", "\n\n".join(blocks))
            msg["citations"] = citations
            msg["feedback"] = _feedback(rng)
        messages.append(msg)
    return messages


def long_conversation_messages(
    rng: random.Random, agent: Agent, owner: Owner, now: datetime, pairs: int
) -> list[Json]:
    """Return a System message and ``pairs`` short User/AI exchanges."""
    messages = [
        message(
            rng,
            "System",
            f"You are {agent.name}. Keep answers short; this thread is a running log.",
        )
    ]
    topics = [t.phrase for t in texts.ALICE_TOPICS]
    for index in range(pairs):
        topic = rng.choice(topics)
        question = answers.fill(rng.choice(texts.LONG_QUESTIONS), rng, topic)
        messages.append(message(rng, "User", f"#{index + 1} {question}"))
        # Markdown every tenth answer keeps the payload near 1 MB, not 3 MB.
        if index % 5 == 4:
            answer = answers.short_markdown(rng, topic)
        else:
            answer = answers.fill(rng.choice(texts.LONG_ANSWERS), rng, topic)
        msg = message(rng, "AI", answer)
        if index % 97 == 13:
            blocks = [answer]
            msg["citations"] = _cite(rng, blocks, owner.company_id, now)
            msg["text"] = blocks[0]
        msg["feedback"] = _feedback(rng) if index % 7 == 0 else None
        messages.append(msg)
    return messages


def _cost(
    rng: random.Random, conv: Json, agent: Agent, updated: datetime
) -> float | Json | None:
    total = conv["totalTokens"]
    roll = rng.random()
    if total is None or roll < 0.1:
        return None if roll < 0.5 else round(rng.uniform(0.001, 0.2), 6)
    prompt_cost = round(conv["promptTokens"] * 0.0000025, 6)
    completion_cost = round(conv["completionTokens"] * 0.00001, 6)
    additional = round(rng.choice((0.0, 0.0, 0.003, 0.01)), 6)
    total_cost = round(prompt_cost + completion_cost + additional, 6)
    if roll < 0.8:
        return total_cost
    stamp = naive_iso(updated, rng)
    return {
        "botID": agent.id,
        "conversationID": conv["id"],
        "userID": conv["userID"],
        "botName": agent.name,
        "date": stamp,
        "promptTokens": conv["promptTokens"],
        "completionTokens": conv["completionTokens"],
        "totalTokens": total,
        "promptCost": prompt_cost,
        "completionCost": completion_cost,
        "additionalCost": additional,
        "totalCost": total_cost,
        "id": guid(rng),
        "companyId": conv["companyId"],
        "lastUpdated": stamp,
        "createdDate": stamp,
    }


def _meta_data(rng: random.Random, tags: tuple[str, ...]) -> list[str] | None:
    roll = rng.random()
    if roll < 0.1:
        return None
    if roll < 0.18 or not tags:
        return []
    chosen = list(tags[: rng.randint(1, len(tags))])
    if rng.random() < 0.2:
        chosen.append(rng.choice(("urgent", "draft", "follow-up", "emea")))
    return chosen


def _has_flag(rng: random.Random) -> bool | None:
    roll = rng.random()
    if roll < 0.12:
        return True
    if roll < 0.16:
        return None
    return False


def conversation(
    rng: random.Random,
    *,
    owner: Owner,
    agent: Agent,
    title: str,
    tags: tuple[str, ...],
    messages: list[Json],
    updated: datetime,
    created: datetime,
) -> Json:
    """Return a full Conversation dict; field order follows the contract."""
    # A second of headroom keeps createdDate <= lastUpdated after either is
    # truncated to milliseconds or seconds by naive_iso.
    created = min(created, updated - timedelta(seconds=1))
    tokens: list[int | None] = [None, None, None]
    if rng.random() >= 0.07:
        prompt = rng.randint(40, 4000) * max(1, len(messages) // 2)
        completion = rng.randint(20, 1800) * max(1, len(messages) // 2)
        tokens = [prompt, completion, prompt + completion]
    conv: Json = {
        "id": guid(rng),
        "userID": owner.user_id,
        "botID": agent.id,
        "title": title,
        "threadID": _token(rng, "thread_"),
        "vectorStoreID": _token(rng, "vs_"),
        "runID": _token(rng, "run_"),
        "ipAddress": rng.choice(owner.ip_addresses),
        "promptTokens": tokens[0],
        "completionTokens": tokens[1],
        "totalTokens": tokens[2],
        "hasFlag": _has_flag(rng),
        "hasMore": False,
        "removedFromHistory": False,
        "messages": messages,
        "metaData": _meta_data(rng, tags),
        "functionCalls": [],
        "currentCost": None,
        "companyId": owner.company_id,
        "lastUpdated": naive_iso(updated, rng),
        "createdDate": naive_iso(created, rng),
    }
    conv["currentCost"] = _cost(rng, conv, agent, updated)
    return conv
