"""Typed records of the AIRisk API, and the one place that parses them.

The API is only known from public sources (see ``shared/airisk-api.md``), so
parsing is lenient: unknown fields are ignored, missing fields get defaults,
``null`` where a list is expected is an empty list, ``currentCost`` may be a
number, an object or null, and dates come with or without a zone. Only a
payload of the wrong top-level type is an error.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import MAXYEAR, MINYEAR, UTC, datetime, timedelta
from typing import Any

from .errors import BadResponse, NotFound

_SURROGATES = re.compile("[\ud800-\udfff]")
_KINDS = {"ai": "ai", "assistant": "ai", "user": "user", "system": "system"}
_LABELS = {"ai": "AI", "user": "User", "system": "System"}
#: ``messageType`` as a number: a .NET enum serialised without its names. The
#: order is the documented names' order (inferred: no numeric sample seen).
_NUMBERED_TYPES = ("User", "AI", "System")


@dataclass(frozen=True, slots=True)
class Agent:
    """An AIRisk agent (a configured LLM bot)."""

    id: str
    name: str
    description: str


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """One row of GetConversations."""

    id: str
    title: str
    user_id: str
    agent_id: str
    created: datetime | None
    updated: datetime | None
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    cost: float | None
    flagged: bool | None
    metadata: tuple[str, ...]
    #: Whether the answer carried ``metaData`` at all (no tags vs not said).
    tags_reported: bool = True


#: The facts GetConversation may leave out; the list row has them too.
LIST_FACTS = (
    "created",
    "updated",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost",
    "flagged",
)


@dataclass(frozen=True, slots=True)
class Citation:
    """A source an AI message cites."""

    id: str
    title: str
    filepath: str
    url: str
    content: str


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a conversation."""

    id: str
    type: str
    text: str
    feedback: str | None
    file_name: str
    file_url: str
    citations: tuple[Citation, ...]

    @property
    def kind(self) -> str:
        """Return "ai", "user", "system" or "other" (also the CSS class)."""
        return _KINDS.get(self.type.lower(), "other")

    @property
    def is_system(self) -> bool:
        """Return whether this is a System message (hidden by default)."""
        return self.kind == "system"

    @property
    def label(self) -> str:
        """Return who wrote the message, as shown above it."""
        return _LABELS.get(self.kind, self.type)


@dataclass(frozen=True, slots=True)
class Conversation:
    """One conversation with its messages, from GetConversation."""

    summary: ConversationSummary
    messages: tuple[Message, ...]
    #: When the dashboard fetched it from AIRisk (set by the service layer).
    fetched_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AIRiskUser:
    """One user of the tenant, as ListUsers lists them."""

    id: str
    user_name: str
    first_name: str
    last_name: str
    email: str

    @property
    def display_name(self) -> str:
        """Return "First Last", else the user name, the e-mail or the id."""
        full = f"{self.first_name} {self.last_name}".strip()
        return full or self.user_name or self.email or self.id


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """The dashboard's AIRisk API client; the repr never shows the secret."""

    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    """What AIRisk's authorize step answered: a one-time code and the state."""

    code: str = field(repr=False)
    state: str


@dataclass(frozen=True, slots=True)
class MintedToken:
    """An access token minted through OAuth2; the repr never shows it."""

    access_token: str = field(repr=False)
    expiration: datetime
    #: The AIRisk user it acts as; None for a generic (application) token.
    user_id: str | None

    def seconds_left(self, now: datetime) -> float:
        """Return the seconds until ``expiration`` (negative once past)."""
        return (self.expiration - now).total_seconds()


#: Lifetime assumed for a token whose answer has no usable ``expiration``:
#: short, so a wrong guess costs a re-mint, not a page of 401s.
ASSUMED_TOKEN_LIFETIME = timedelta(minutes=5)


def _text(value: Any) -> str:
    """Return ``value`` as a string that the UTF-8 encoder cannot choke on."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = value if isinstance(value, str) else str(value)
    if text.isascii():
        # The common case, and far cheaper than the search below.
        return text
    # A lone surrogate ("\ud800" in JSON) is valid for json.loads but makes the
    # response encoder raise: replace it here, once, for every field.
    return _SURROGATES.sub("\ufffd", text) if _SURROGATES.search(text) else text


def _optional_text(value: Any) -> str | None:
    text = _text(value)
    return text or None


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        number = float(value) + 0.0  # -0.0 becomes 0.0: "$-0.0000" means nothing
        return number if number == number and abs(number) != float("inf") else None
    if isinstance(value, str):
        try:
            return _float(float(value))
        except ValueError:
            return None
    return None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _datetime(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
        # AIRisk dates usually carry no zone; they are UTC on the server.
        parsed = parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        # 0001-01-01T00:00:00+05:00 parses but has no UTC time in range.
        return None
    if parsed.year in (MINYEAR, MAXYEAR):
        # .NET's DateTime.MinValue/MaxValue mean "not set"; and a day's or a
        # week's arithmetic on them would leave the range anyway.
        return None
    return parsed


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _tags(value: Any) -> tuple[str, ...]:
    """Return ``metaData`` as tags: an array, or JSON (or plain text) in a string.

    AIRisk documents a string array; a string holding JSON is what a server
    that stores the column as text sends, and a bare string is one tag.
    """
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return ()
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            return (_text(text),)
        if isinstance(value, str):
            value = [value]
    if isinstance(value, Mapping):
        return tuple(
            f"{_text(key)}: {_text(item)}"
            for key, item in value.items()
            if item is not None and not isinstance(item, list | Mapping)
        )
    return tuple(
        _text(tag)
        for tag in _list(value)
        if tag is not None and tag != "" and not isinstance(tag, list | Mapping)
    )


def _message_type(value: Any) -> str:
    """Return ``messageType`` as a name; a number maps to the documented names."""
    number = _int(value)
    if number is None:
        return _text(value) or "Unknown"
    if 0 <= number < len(_NUMBERED_TYPES):
        return _NUMBERED_TYPES[number]
    return f"Type {number}"


def _cost(value: Any) -> float | None:
    if isinstance(value, Mapping):
        return _float(value.get("totalCost"))
    return _float(value)


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BadResponse(f"{what}: expected a JSON object, got {type(value).__name__}")
    return value


def parse_agents(payload: Any) -> list[Agent]:
    """Parse a ListAgents answer (a JSON array).

    :raises BadResponse: if the payload is not an array.
    """
    if not isinstance(payload, list):
        raise BadResponse("ListAgents: expected a JSON array")
    agents = []
    for item in payload:
        if isinstance(item, Mapping) and _text(item.get("id")):
            agents.append(
                Agent(
                    id=_text(item.get("id")),
                    name=_text(item.get("name")) or "Unnamed agent",
                    description=_text(item.get("description")),
                )
            )
    return agents


def parse_summary(item: Mapping[str, Any]) -> ConversationSummary:
    """Parse one conversation object, ignoring its messages."""
    return ConversationSummary(
        id=_text(item.get("id")),
        title=_text(item.get("title")).strip(),
        user_id=_text(item.get("userID")),
        agent_id=_text(item.get("botID")),
        created=_datetime(item.get("createdDate")),
        updated=_datetime(item.get("lastUpdated")),
        prompt_tokens=_int(item.get("promptTokens")),
        completion_tokens=_int(item.get("completionTokens")),
        total_tokens=_int(item.get("totalTokens")),
        cost=_cost(item.get("currentCost")),
        flagged=_bool(item.get("hasFlag")),
        metadata=_tags(item.get("metaData")),
        tags_reported=item.get("metaData") is not None,
    )


def parse_summaries(payload: Any) -> list[ConversationSummary]:
    """Parse a GetConversations answer (a JSON array, no envelope).

    :raises BadResponse: if the payload is not an array.
    """
    if not isinstance(payload, list):
        raise BadResponse("GetConversations: expected a JSON array")
    return [
        parse_summary(item)
        for item in payload
        if isinstance(item, Mapping) and _text(item.get("id"))
    ]


def _parse_citation(item: Mapping[str, Any]) -> Citation:
    return Citation(
        id=_text(item.get("id")),
        title=_text(item.get("title")),
        filepath=_text(item.get("filepath")),
        url=_text(item.get("url")),
        content=_text(item.get("content")),
    )


def _parse_message(item: Mapping[str, Any], index: int) -> Message:
    return Message(
        # Messages need an id for their anchor; fall back to the position.
        id=_text(item.get("id")) or f"n{index}",
        type=_message_type(item.get("messageType")),
        text=_text(item.get("text")),
        feedback=_optional_text(item.get("feedback")),
        file_name=_text(item.get("fileName")),
        file_url=_text(item.get("fileURL")),
        citations=tuple(
            _parse_citation(c)
            for c in _list(item.get("citations"))
            if isinstance(c, Mapping)
        ),
    )


def parse_conversation(payload: Any) -> Conversation:
    """Parse a GetConversation answer (one JSON object with its messages).

    :raises NotFound: if the payload is empty (a 204, no body, ``null``).
    :raises BadResponse: if the payload is not an object.
    """
    if payload is None:
        # What ASP.NET sends when the action found nothing to return.
        raise NotFound("GetConversation: empty answer")
    item = _mapping(payload, "GetConversation")
    messages = [m for m in _list(item.get("messages")) if isinstance(m, Mapping)]
    return Conversation(
        summary=parse_summary(item),
        messages=tuple(_parse_message(m, i) for i, m in enumerate(messages)),
    )


def missing_facts(summary: ConversationSummary) -> bool:
    """Return whether a conversation lacks facts a list row could give."""
    return not summary.tags_reported or any(
        getattr(summary, name) is None for name in LIST_FACTS
    )


def with_list_facts(
    conversation: Conversation, row: ConversationSummary
) -> Conversation:
    """Return ``conversation`` with the facts it lacks taken from its list row.

    Neither public client reads dates, tokens, cost or tags from
    GetConversation, so AIRisk may leave them out there; what it did send wins.
    """
    summary = conversation.summary
    if row.id != summary.id:
        return conversation
    changes: dict[str, Any] = {
        name: getattr(row, name)
        for name in LIST_FACTS
        if getattr(summary, name) is None and getattr(row, name) is not None
    }
    if not summary.tags_reported and row.tags_reported:
        changes["metadata"] = row.metadata
        changes["tags_reported"] = True
    if not changes:
        return conversation
    return dataclasses.replace(
        conversation, summary=dataclasses.replace(summary, **changes)
    )


def parse_users(payload: Any) -> list[AIRiskUser]:
    """Parse ListUsers; entries without an id are skipped.

    :raises BadResponse: if the payload is not a JSON array.
    """
    if not isinstance(payload, list):
        raise BadResponse("ListUsers: expected a JSON array")
    users: list[AIRiskUser] = []
    for item in payload:
        if not isinstance(item, Mapping) or not _text(item.get("id")):
            continue
        users.append(
            AIRiskUser(
                id=_text(item.get("id")),
                user_name=_text(item.get("userName")),
                first_name=_text(item.get("firstName")),
                last_name=_text(item.get("lastName")),
                email=_text(item.get("email")),
            )
        )
    return users


def parse_minted_token(payload: Any, user_id: str | None, now: datetime) -> MintedToken:
    """Parse the token endpoint's answer; a missing expiration is assumed short.

    :raises BadResponse: if the payload is not an object with an access token.
    """
    body = _mapping(payload, "oauth2/Token")
    token = body.get("access_token")
    if not isinstance(token, str) or not token.strip():
        raise BadResponse("oauth2/Token: answer has no access_token")
    expiration = _datetime(body.get("expiration")) or now + ASSUMED_TOKEN_LIFETIME
    return MintedToken(token.strip(), expiration, user_id)
