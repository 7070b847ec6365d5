"""Normalized records, the evidence hash, and the export formats.

The JSON twins and every export use the same normalized records (documented
in ``docs/exports.md``); the insights page's JSON and per-chart CSV are at
the end. A conversation's evidence hash is the SHA-256 of its
*canonical JSON*: the normalized conversation record serialized with sorted
keys, no insignificant whitespace, UTF-8 and non-ASCII characters kept as is.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from ..airisk import Conversation, ConversationSummary, Message
from .stats import MESSAGES_UNKNOWN, WEEKDAYS, Insights, Ranked

#: Version of the normalized record format; bump it when a field changes.
FORMAT = "airisk-viewer/1"


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def summary_record(
    row: ConversationSummary, agent_names: dict[str, str]
) -> dict[str, Any]:
    """Return the normalized record of a conversation summary."""
    return {
        "id": row.id,
        "title": row.title,
        "userId": row.user_id,
        "agentId": row.agent_id,
        "agentName": agent_names.get(row.agent_id),
        "created": _iso(row.created),
        "updated": _iso(row.updated),
        "promptTokens": row.prompt_tokens,
        "completionTokens": row.completion_tokens,
        "totalTokens": row.total_tokens,
        "cost": row.cost,
        "flagged": row.flagged,
        "tags": list(row.metadata),
    }


def message_record(message: Message, number: int) -> dict[str, Any]:
    """Return the normalized record of message ``number`` (1-based, all counted)."""
    return {
        "number": number,
        "id": message.id,
        "type": message.type,
        "text": message.text,
        "feedback": message.feedback,
        "fileName": message.file_name or None,
        "fileUrl": message.file_url or None,
        "citations": [
            {
                "id": c.id,
                "title": c.title,
                "filepath": c.filepath,
                "url": c.url,
                "content": c.content,
            }
            for c in message.citations
        ],
    }


def conversation_record(
    conversation: Conversation, agent_names: dict[str, str]
) -> dict[str, Any]:
    """Return the normalized record of a conversation with all its messages."""
    record = summary_record(conversation.summary, agent_names)
    record["messages"] = [
        message_record(m, number)
        for number, m in enumerate(conversation.messages, start=1)
    ]
    return record


def canonical_json(record: Any) -> bytes:
    """Return the canonical JSON bytes of ``record`` (what the hash covers)."""
    return json.dumps(
        record, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def evidence_hash(record: Any) -> str:
    """Return the SHA-256 (hex) of the canonical JSON of ``record``."""
    return hashlib.sha256(canonical_json(record)).hexdigest()


@dataclass(frozen=True)
class Signing:
    """Who signs an export and where a reader checks it (for the header)."""

    deployment: str
    key_id: str
    verify_url: str
    keys_url: str


@dataclass(frozen=True)
class Evidence:
    """The header every conversation export starts with."""

    conversation_id: str
    user_id: str
    agent: str
    created: str | None
    updated: str | None
    flagged: bool | None
    tags: tuple[str, ...]
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    cost: float | None
    #: Messages in the conversation (System messages included).
    message_count: int
    #: Numbers (1-based, AIRisk's order) of the messages this export holds.
    exported: tuple[int, int] | None
    #: Numbers of the highlighted range, if any.
    highlight: tuple[int, int] | None
    exported_at: str
    exported_by: str
    url: str
    sha256: str
    signing: Signing

    @classmethod
    def of(
        cls,
        record: dict[str, Any],
        url: str,
        *,
        total: int,
        exported_at: str,
        exported_by: str,
        signing: Signing,
        highlight: tuple[int, int] | None = None,
    ) -> Evidence:
        """Build the evidence header of a normalized conversation record.

        ``record`` may hold a part of the conversation (a range or a
        window); ``total`` is how many messages the whole one has.
        """
        numbers = [m["number"] for m in record["messages"]]
        whole = numbers == list(range(1, total + 1))
        return cls(
            conversation_id=record["id"],
            user_id=record["userId"],
            agent=record["agentName"] or record["agentId"],
            created=record["created"],
            updated=record["updated"],
            flagged=record["flagged"],
            tags=tuple(record["tags"]),
            prompt_tokens=record["promptTokens"],
            completion_tokens=record["completionTokens"],
            total_tokens=record["totalTokens"],
            cost=record["cost"],
            message_count=total,
            exported=None if whole or not numbers else (numbers[0], numbers[-1]),
            highlight=highlight,
            exported_at=exported_at,
            exported_by=exported_by,
            url=url,
            sha256=evidence_hash(record),
            signing=signing,
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the header as a JSON object (camelCase keys)."""
        return {
            "format": FORMAT,
            "conversationId": self.conversation_id,
            "userId": self.user_id,
            "agent": self.agent,
            "created": self.created,
            "updated": self.updated,
            "flagged": self.flagged,
            "tags": list(self.tags),
            "promptTokens": self.prompt_tokens,
            "completionTokens": self.completion_tokens,
            "totalTokens": self.total_tokens,
            "cost": self.cost,
            "messageCount": self.message_count,
            "exportedMessages": _span(self.exported),
            "highlight": _span(self.highlight),
            "exportedAt": self.exported_at,
            "exportedBy": self.exported_by,
            "url": self.url,
            "signedBy": self.signing.deployment,
            "keyId": self.signing.key_id,
            "verifyAt": self.signing.verify_url,
            "publicKeys": self.signing.keys_url,
            "sha256": self.sha256,
            "hashOf": "canonical JSON of the 'conversation' object (docs/exports.md)",
        }

    def lines(self) -> list[tuple[str, str]]:
        """Return (label, value) pairs for text formats."""
        if self.total_tokens is None:
            tokens = "not reported"
        else:
            tokens = f"{self.total_tokens:,}"
            if self.prompt_tokens is not None:
                tokens += (
                    f" ({self.prompt_tokens:,} prompt, "
                    f"{self.completion_tokens or 0:,} completion)"
                )
        flag = {True: "Flagged by AIRisk", False: "Not flagged", None: "Not scanned"}
        messages = f"{self.message_count:,}"
        if self.exported:
            first, last = self.exported
            messages = f"{first:,}-{last:,} of {self.message_count:,} (this export)"
        highlight = "none"
        if self.highlight:
            highlight = "messages {:,}-{:,}".format(*self.highlight)
        return [
            ("Conversation ID", self.conversation_id),
            ("User ID (AIRisk)", self.user_id),
            ("Agent", self.agent),
            ("Created", self.created or "not reported"),
            ("Last updated", self.updated or "not reported"),
            ("Flag", flag[self.flagged]),
            ("Tags", ", ".join(self.tags) or "none"),
            ("Tokens", tokens),
            ("Cost", "not reported" if self.cost is None else str(self.cost)),
            ("Messages", messages),
            ("Highlighted", highlight),
            ("Exported at (UTC)", self.exported_at),
            ("Exported by", self.exported_by),
            ("Dashboard URL", self.url),
            ("Signed by", f"{self.signing.deployment} (key {self.signing.key_id})"),
            ("Verify at", self.signing.verify_url),
            ("Public keys", self.signing.keys_url),
            ("SHA-256 of canonical JSON", self.sha256),
        ]


def _span(span: tuple[int, int] | None) -> dict[str, int] | None:
    return {"from": span[0], "to": span[1]} if span else None


def export_json(record: dict[str, Any], evidence: Evidence) -> str:
    """Return the JSON export without its closing brace (the signature goes there)."""
    text = json.dumps(
        {"evidence": evidence.as_dict(), "conversation": record},
        ensure_ascii=False,
        indent=2,
    )
    return text[: -len("\n}")]


# Every ASCII punctuation character can be backslash-escaped in CommonMark,
# and escaping all of them leaves no markup: no HTML, link, image, entity,
# emphasis, heading or table syntax survives in a field.
_MD_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_MD_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def md_text(text: str) -> str:
    """Return ``text`` as Markdown that renders as exactly this text, on one line."""
    # A line break in a field could start a heading or a list of its own.
    return _MD_PUNCTUATION.sub(r"\\\1", _MD_LINE_BREAK.sub(" ", text))


def md_code(text: str) -> str:
    """Return ``text`` as a Markdown code span that no backtick inside can close."""
    text = _MD_LINE_BREAK.sub(" ", text)
    if not text.strip():
        return md_text(text) or "(none)"
    fence = "`" * (_longest_backtick_run(text) + 1)
    # A space pads a span that starts or ends with a backtick (or with spaces
    # on both ends, which the renderer would trim).
    pad = " " if text[0] in "` " or text[-1] in "` " else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_link(url: str) -> str:
    # Only a plain https URL becomes a link; anything else is shown as text.
    if url.startswith("https://") and not any(
        ch.isspace() or ord(ch) < 32 or ch in "<>\\`" for ch in url
    ):
        return f"<{url}>"
    return md_text(url)


def export_markdown(record: dict[str, Any], evidence: Evidence) -> str:
    """Return the Markdown export: the evidence list, then every message.

    Every field is escaped or fenced, so a Markdown renderer (even one that
    passes raw HTML) shows each one as text and the only headings are ours.
    """
    out = [f"# {md_text(record['title'] or 'Untitled conversation')}", ""]
    out += ["Evidence:", ""]
    out += [f"- {label}: {md_code(value)}" for label, value in evidence.lines()]
    out += [
        "",
        'The last line of this file ("Signature") signs every byte of it: check it at '
        '"Verify at" or, without the dashboard, with the public keys and the '
        "script in the dashboard's docs/exports.md.",
        "",
    ]
    first, last = evidence.highlight or (0, 0)
    for message in record["messages"]:
        number = message["number"]
        marked = first <= number <= last
        out.append(
            f"## {number}. {md_text(message['type'])} "
            f"(message {md_text(message['id'])})" + (" [highlighted]" if marked else "")
        )
        out.append("")
        if marked:
            out += [
                f"> Highlighted as evidence (messages {first:,}-{last:,}).",
                "",
            ]
        if message["feedback"]:
            out += [f"Feedback: {md_text(message['feedback'])}", ""]
        # Message text is quoted verbatim in a fence long enough that no
        # backtick run inside it can close it.
        fence = "`" * max(3, _longest_backtick_run(message["text"]) + 1)
        body = [message["text"]] if message["text"] else []
        out += [f"{fence}text", *body, fence, ""]
        if message["fileName"] or message["fileUrl"]:
            attachment = message["fileName"] or message["fileUrl"]
            out += [f"Attachment: {md_code(attachment)}", ""]
        for index, citation in enumerate(message["citations"], start=1):
            source = citation["title"] or citation["filepath"]
            out.append(f"{index}. Source: {md_text(source)}")
            if citation["url"]:
                out.append(f"   {_md_link(citation['url'])}")
        if message["citations"]:
            out.append("")
    return "\n".join(out)


def _longest_backtick_run(text: str) -> int:
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return longest


CSV_FIELDS = (
    "id",
    "title",
    "userId",
    "agentId",
    "agentName",
    "created",
    "updated",
    "promptTokens",
    "completionTokens",
    "totalTokens",
    "cost",
    "flagged",
    "tags",
)


def csv_cell(value: Any) -> str:
    """Return ``value`` as a CSV cell a spreadsheet will not run as a formula."""
    if value is None:
        return ""
    if isinstance(value, list):
        value = ";".join(value)
    text = str(value)
    # A cell starting with = + - @ (or tab/CR) is a formula in spreadsheets:
    # prefix it so an exported title cannot run anything when opened.
    if text[:1] in {"=", "+", "-", "@", "\t", "\r"}:
        return "'" + text
    return text


def csv_lines(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Yield the CSV export line by line (header first), for streaming."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_FIELDS)
    yield buffer.getvalue()
    for record in records:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([csv_cell(record[field]) for field in CSV_FIELDS])
        yield buffer.getvalue()


def csv_document(fields: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """Return ``rows`` as one CSV document, ``fields`` as its header and columns."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(fields)
    writer.writerows([csv_cell(row[field]) for field in fields] for row in rows)
    return buffer.getvalue()


def json_lines(
    header: dict[str, Any], records: Iterable[dict[str, Any]]
) -> Iterator[str]:
    """Yield one JSON document ``{...header, "conversations": [...]}`` in pieces."""
    head = json.dumps(header, ensure_ascii=False)
    yield head[:-1] + (', "conversations": [' if header else '"conversations": [')
    for index, record in enumerate(records):
        yield ("," if index else "") + "\n" + json.dumps(record, ensure_ascii=False)
    # The signature member and the closing brace follow (webapp.core.signatures).
    yield "\n]"


# -- insights as JSON and CSV rows ----------------------------------------------

#: The charts by the name in ``/insights/<chart>.csv``, with their columns.
CHARTS: dict[str, tuple[str, ...]] = {
    "conversations": ("day", "conversations", "flagged"),
    "tokens": ("day", "tokens"),
    "cost": ("day", "cost"),
    "heatmap": ("weekday", "hour", "conversations"),
    "agents": ("agentId", "agentName", "conversations", "share"),
}


def _ranked(
    items: list[Ranked], key: str, value: str, names: Mapping[str, str]
) -> list[dict[str, Any]]:
    out = []
    for item in items:
        entry: dict[str, Any] = {key: _plain(item.key)}
        if key == "agentId":
            entry["agentName"] = names.get(item.key)
        entry[value] = item.value
        out.append(entry)
    return out


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def chart_rows(
    insights: Insights, chart: str, names: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Return the data of one chart as flat records (the CSV's rows).

    :raises KeyError: if ``chart`` is not one of :data:`CHARTS`.
    """
    if chart == "conversations":
        return [
            {
                "day": d.day.isoformat(),
                "conversations": d.conversations,
                "flagged": d.flagged,
            }
            for d in insights.daily
        ]
    if chart == "tokens":
        return [{"day": d.day.isoformat(), "tokens": d.tokens} for d in insights.daily]
    if chart == "cost":
        return [{"day": d.day.isoformat(), "cost": d.cost} for d in insights.daily]
    if chart == "heatmap":
        return [
            {"weekday": WEEKDAYS[weekday], "hour": hour, "conversations": count}
            for weekday, hours in enumerate(insights.heatmap)
            for hour, count in enumerate(hours)
        ]
    if chart == "agents":
        return [
            {
                "agentId": a.agent_id,
                "agentName": names.get(a.agent_id),
                "conversations": a.conversations,
                "share": round(a.share, 6),
            }
            for a in insights.agents
        ]
    raise KeyError(chart)


def insights_record(insights: Insights, names: Mapping[str, str]) -> dict[str, Any]:
    """Return everything the insights page shows as one JSON-ready object."""
    t = insights.totals
    share = t.flagged_share
    return {
        "period": {
            "from": insights.period.start.isoformat(),
            "to": insights.period.end.isoformat(),
            "days": insights.period.length,
            "preset": insights.period.preset,
            "shortened": insights.period.shortened,
            "timezone": "UTC",
        },
        "agent": (
            {"id": insights.agent, "name": names.get(insights.agent)}
            if insights.agent
            else None
        ),
        "totals": {
            "conversations": t.conversations,
            "messages": None,
            "messagesNote": MESSAGES_UNKNOWN,
            "promptTokens": t.prompt_tokens,
            "completionTokens": t.completion_tokens,
            "totalTokens": t.total_tokens,
            "withoutTokens": t.without_tokens,
            "cost": t.cost,
            "withoutCost": t.without_cost,
            "flagged": t.flagged,
            "flaggedShare": round(share, 6) if share is not None else None,
            "flagUnknown": t.flag_unknown,
            "undated": insights.undated,
        },
        "top": {
            "agentsByConversations": _ranked(
                insights.top_by_conversations, "agentId", "conversations", names
            ),
            "agentsByTokens": _ranked(
                insights.top_by_tokens, "agentId", "tokens", names
            ),
            "agentsByCost": _ranked(insights.top_by_cost, "agentId", "cost", names),
            "flaggedAgents": _ranked(insights.top_flagged, "agentId", "flagged", names),
            "busiestDays": _ranked(
                insights.busiest_days, "day", "conversations", names
            ),
            "busiestHours": _ranked(
                insights.busiest_hours, "hour", "conversations", names
            ),
        },
        "charts": {chart: chart_rows(insights, chart, names) for chart in CHARTS},
    }
