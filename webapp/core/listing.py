"""The conversation list's state: query string, filters, sorting, time groups.

Plain functions over records, no Flask and no HTTP, so every rule here is
tested directly. The list has two modes:

* **browse**: one AIRisk page per dashboard page (``agent`` and ``tag`` are
  passed to AIRisk as ``agentid`` and ``metadatasearch``);
* **search**: any of ``q``, the date range, ``flagged``, ``attachments``, the
  minimums, ``review``/``assignee`` or a non-default ``sort`` needs the whole
  history, which the dashboard scans once and then filters, sorts and pages itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import MAXYEAR, MINYEAR, UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
from urllib.parse import urlencode

from ..airisk import ConversationSummary, valid_id

PAGE_SIZES = (20, 50, 100)
#: Review states the list filters on (the store's STATES; core imports no store).
REVIEWS = ("new", "in review", "cleared", "escalated")
MAX_PAGE = 10_000
MAX_TEXT = 200
SORTS = {
    "updated": "Last updated",
    "created": "Created",
    "tokens": "Tokens",
    "cost": "Cost",
}


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is not None and 0 <= number < 1e15 else None


def query_date(value: str | None) -> date | None:
    """Return the date of a query value, or None if it is not a usable one.

    Years 1 and 9999 are refused like junk: a filter that far out means "no
    bound" anyway, and the day before or after it does not exist.
    """
    try:
        day = date.fromisoformat(value) if value else None
    except ValueError:
        return None
    return day if day and MINYEAR < day.year < MAXYEAR else None


def _flag(value: str | None) -> bool:
    return value in {"1", "on", "true", "yes"}


def _text(value: str | None) -> str:
    return " ".join((value or "").split())[:MAX_TEXT]


@dataclass(frozen=True)
class ListQuery:
    """Everything the list's query string can say, normalised."""

    page: int = 1
    size: int = PAGE_SIZES[0]
    agent: str = ""
    tag: str = ""
    q: str = ""
    start: date | None = None  # query key "from"
    end: date | None = None  # query key "to"
    flagged: bool = False
    attachments: bool = False
    min_tokens: float | None = None
    min_cost: float | None = None
    sort: str = "updated"
    #: Review state ("new", "in review", ...) and assignee: answered by the
    #: dashboard's database, over the whole history.
    review: str = ""
    assignee: str = ""

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> ListQuery:
        """Read the query string; a bad value falls back to its default."""
        agent = (args.get("agent") or "").strip()
        size = _int(args.get("size"), PAGE_SIZES[0])
        sort = args.get("sort") or "updated"
        start, end = query_date(args.get("from")), query_date(args.get("to"))
        if start and end and start > end:
            start, end = end, start
        return cls(
            page=min(max(_int(args.get("page"), 1), 1), MAX_PAGE),
            size=size if size in PAGE_SIZES else PAGE_SIZES[0],
            agent=agent if valid_id(agent) else "",
            tag=_text(args.get("tag")),
            q=_text(args.get("q")),
            start=start,
            end=end,
            flagged=_flag(args.get("flagged")),
            attachments=_flag(args.get("attachments")),
            min_tokens=_number(args.get("min_tokens")),
            min_cost=_number(args.get("min_cost")),
            sort=sort if sort in SORTS else "updated",
            review=review if (review := args.get("review") or "") in REVIEWS else "",
            assignee=_text(args.get("assignee")),
        )

    @property
    def searching(self) -> bool:
        """Return whether this state needs the whole history (search mode)."""
        return bool(
            self.q
            or self.start
            or self.end
            or self.flagged
            or self.attachments
            or self.min_tokens is not None
            or self.min_cost is not None
            or self.sort != "updated"
            or self.review
            or self.assignee
        )

    @property
    def skip(self) -> int:
        """Return how many rows the pages before this one hold."""
        return (self.page - 1) * self.size

    @property
    def filtered(self) -> bool:
        """Return whether any filter (not paging or sorting) is set."""
        return bool(self.args().keys() - {"page", "size", "sort"})

    def args(self, **changes: Any) -> dict[str, str]:
        """Return the query args of this state with ``changes``, defaults left out."""
        state = replace(self, **changes)
        default = ListQuery()
        out: dict[str, str] = {}
        for field in fields(self):
            value = getattr(state, field.name)
            if value == getattr(default, field.name):
                continue
            key = {"start": "from", "end": "to"}.get(field.name, field.name)
            if isinstance(value, bool):
                out[key] = "1"
            elif isinstance(value, float):
                out[key] = f"{value:g}"
            else:
                out[key] = str(value)
        return out

    def matches(self, row: ConversationSummary) -> bool:
        """Return whether ``row`` passes the filters that summaries can answer."""
        if self.q:
            needle = self.q.casefold()
            haystack = [row.title, *row.metadata]
            if not any(needle in text.casefold() for text in haystack):
                return False
        if self.agent and row.agent_id != self.agent:
            return False
        if self.tag:
            tag = self.tag.casefold()
            if not any(tag in t.casefold() for t in row.metadata):
                return False
        updated = row.updated
        if self.start and (updated is None or updated < _day_start(self.start)):
            return False
        if self.end and (
            updated is None or updated >= _day_start(self.end) + timedelta(days=1)
        ):
            return False
        if self.flagged and not row.flagged:
            return False
        if self.min_tokens is not None and (
            row.total_tokens is None or row.total_tokens < self.min_tokens
        ):
            return False
        if self.min_cost is not None and (row.cost is None or row.cost < self.min_cost):
            return False
        return True


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_SORT_KEYS: dict[str, Callable[[ConversationSummary], Any]] = {
    "updated": lambda r: r.updated or _EPOCH,
    "created": lambda r: r.created or _EPOCH,
    "tokens": lambda r: r.total_tokens if r.total_tokens is not None else -1,
    "cost": lambda r: r.cost if r.cost is not None else -1.0,
}


def sort_rows(
    rows: Iterable[ConversationSummary], sort: str
) -> list[ConversationSummary]:
    """Return ``rows`` sorted by ``sort``, largest/newest first, ties by update."""
    key = _SORT_KEYS.get(sort, _SORT_KEYS["updated"])
    by_update = sorted(rows, key=_SORT_KEYS["updated"], reverse=True)
    return sorted(by_update, key=key, reverse=True)  # stable: ties keep update order


GROUPS = ("Today", "Yesterday", "Previous 7 days", "Previous 30 days", "Older")


def calendar_days(when: datetime, now: datetime) -> int:
    """Return how many UTC calendar days ``when`` is before ``now`` (0: today).

    The one rule for both the group headings and the relative times, so a row
    that says "yesterday" is always under "Yesterday".
    """
    return (now.astimezone(UTC).date() - when.astimezone(UTC).date()).days


def time_group(when: datetime | None, now: datetime) -> str:
    """Return the AIRisk-app style group of a date, relative to ``now`` (UTC)."""
    if when is None:
        return "Older"
    days = calendar_days(when, now)
    if days <= 0:
        return "Today"
    if days == 1:
        return "Yesterday"
    if days <= 7:
        return "Previous 7 days"
    if days <= 30:
        return "Previous 30 days"
    return "Older"


def group_rows(
    rows: Iterable[ConversationSummary], now: datetime
) -> list[tuple[str, list[ConversationSummary]]]:
    """Group rows (already sorted by update) into consecutive time groups."""
    groups: list[tuple[str, list[ConversationSummary]]] = []
    for row in rows:
        name = time_group(row.updated, now)
        if not groups or groups[-1][0] != name:
            groups.append((name, []))
        groups[-1][1].append(row)
    return groups


# -- paging and previous/next ---------------------------------------------------

T = TypeVar("T")
#: The link arguments of a neighbouring conversation: its id and its list.
Link = dict[str, str]


def page_of(rows: Sequence[T], page: int, size: int) -> tuple[list[T], bool]:
    """Return page ``page`` (from 1) of ``size`` rows, and whether one follows."""
    start = (page - 1) * size
    return list(rows[start : start + size]), start + size < len(rows)


def browse_has_next(rows: int, last: bool, page: int) -> bool:
    """Return whether a browsed page of ``rows`` rows has a next page.

    AIRisk sends no total and may serve short pages: only an empty answer
    after these rows (``last``) says there is no next page.
    """
    return not last and rows > 0 and page < MAX_PAGE


def search_neighbours(
    query: ListQuery, ids: Sequence[str], cid: str
) -> tuple[Link | None, Link | None]:
    """Return the conversations before and after ``cid`` in a search's matches."""
    if cid not in ids:
        return None, None
    at = ids.index(cid)

    def link(index: int) -> Link | None:
        if not 0 <= index < len(ids):
            return None
        state = query.args(page=index // query.size + 1)
        return {"cid": ids[index], "from": urlencode(state)}

    return link(at - 1), link(at + 1)


def browse_neighbours(
    query: ListQuery, cid: str, page_ids: Callable[[int], list[str]]
) -> tuple[Link | None, Link | None]:
    """Return the conversations before and after ``cid`` in a browsed list.

    ``page_ids(n)`` returns the ids of page ``n``; the pages before and after
    are asked for only when ``cid`` is first or last on its own.
    """
    ids = page_ids(query.page)
    if cid not in ids:
        return None, None
    at = ids.index(cid)
    previous = nxt = None
    if at > 0:
        previous = {"cid": ids[at - 1], "from": urlencode(query.args())}
    elif query.page > 1:
        before = page_ids(query.page - 1)
        if before:
            state = query.args(page=query.page - 1)
            previous = {"cid": before[-1], "from": urlencode(state)}
    if at + 1 < len(ids):
        nxt = {"cid": ids[at + 1], "from": urlencode(query.args())}
    elif len(ids) == query.size:
        after = page_ids(query.page + 1)
        if after:
            nxt = {"cid": after[0], "from": urlencode(query.args(page=query.page + 1))}
    return previous, nxt
