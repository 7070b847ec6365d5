"""Insights over a scanned history: the period, totals, top-N and chart series.

Plain functions over conversation summaries, no Flask and no HTTP, so every
number on the insights page comes from here and each rule is tested directly
(their JSON and CSV shape is in ``exports.py``).
Days, weekdays and hours are UTC, as everywhere else in the dashboard.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from ..airisk import ConversationSummary, valid_id
from .listing import query_date

#: The period presets, in days (``?days=``); the default is 30.
PRESETS = (7, 30, 90)
DEFAULT_DAYS = 30
#: A longer custom range is shortened to this many days (ending at ``to``).
MAX_DAYS = 366
#: Entries in each top list.
TOP_N = 5
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
#: Summaries carry no messages; the page and the JSON say so instead of a number.
MESSAGES_UNKNOWN = "not known from summaries"
#: Costs are summed exactly, then rounded to AIRisk's own precision.
COST_DIGITS = 6

K = TypeVar("K", str, int, date)


@dataclass(frozen=True)
class Period:
    """An inclusive range of UTC days; ``preset`` is 7/30/90, or None if custom."""

    start: date
    end: date
    preset: int | None = DEFAULT_DAYS
    shortened: bool = False

    @classmethod
    def last(cls, days: int, today: date) -> Period:
        """Return the last ``days`` days, today included."""
        return cls(today - timedelta(days=days - 1), today, days)

    @classmethod
    def from_args(cls, args: Mapping[str, str], today: date) -> Period:
        """Read ``days`` or ``from``/``to``; bad values fall back to the default."""
        start, end = query_date(args.get("from")), query_date(args.get("to"))
        if start is None and end is None:
            days = args.get("days", "")
            # isascii: "³" passes isdigit() but int() refuses it.
            number = int(days) if days.isascii() and days.isdigit() else None
            preset = number if number in PRESETS else None
            return cls.last(preset or DEFAULT_DAYS, today)
        if end is None:
            # "From" alone runs to today (or is one day, if in the future).
            assert start is not None
            end = max(start, today)
        if start is None:
            # "To" alone: the default length, ending there.
            start = end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            start, end = end, start
        shortened = (end - start).days + 1 > MAX_DAYS
        if shortened:
            start = end - timedelta(days=MAX_DAYS - 1)
        return cls(start, end, None, shortened)

    @property
    def length(self) -> int:
        """Return the number of days in the period."""
        return (self.end - self.start).days + 1

    def days(self) -> list[date]:
        """Return every day of the period, oldest first."""
        return [self.start + timedelta(days=n) for n in range(self.length)]

    def contains(self, when: datetime | None) -> bool:
        """Return whether the UTC day of ``when`` falls in the period."""
        return when is not None and self.start <= utc_day(when) <= self.end

    def args(self) -> dict[str, str]:
        """Return the query args of this period, the default left out."""
        if self.preset is None:
            return {"from": self.start.isoformat(), "to": self.end.isoformat()}
        return {} if self.preset == DEFAULT_DAYS else {"days": str(self.preset)}


@dataclass(frozen=True)
class InsightsQuery:
    """Everything the insights page's query string can say, normalised."""

    period: Period
    agent: str = ""

    @classmethod
    def from_args(cls, args: Mapping[str, str], today: date) -> InsightsQuery:
        """Read the query string; a bad value falls back to its default."""
        agent = (args.get("agent") or "").strip()
        return cls(Period.from_args(args, today), agent if valid_id(agent) else "")

    def args(self, **changes: str | None) -> dict[str, str]:
        """Return the query args of this state with ``changes`` (None removes)."""
        out = self.period.args()
        if self.agent:
            out["agent"] = self.agent
        for key, value in changes.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = value
        return out


def utc_day(when: datetime) -> date:
    """Return the UTC calendar day of ``when``."""
    return when.astimezone(UTC).date()


@dataclass(frozen=True)
class Totals:
    """Sums over the conversations of a period."""

    conversations: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    #: Conversations whose summary has no total token count.
    without_tokens: int = 0
    cost: float = 0.0
    #: Conversations whose summary has no cost.
    without_cost: int = 0
    flagged: int = 0
    #: Conversations whose summary does not say whether they were flagged.
    flag_unknown: int = 0

    @property
    def flagged_share(self) -> float | None:
        """Return flagged / conversations, or None for an empty period."""
        return self.flagged / self.conversations if self.conversations else None


@dataclass(frozen=True)
class Ranked:
    """One entry of a top list: an agent id, a day or an hour, and its value."""

    key: Any
    value: float


@dataclass(frozen=True)
class Day:
    """One day of the daily series."""

    day: date
    conversations: int
    flagged: int
    tokens: int
    cost: float


@dataclass(frozen=True)
class AgentShare:
    """One agent's conversations in the period and their share of all."""

    agent_id: str
    conversations: int
    share: float


@dataclass(frozen=True)
class Insights:
    """Everything the insights page shows, computed from one history."""

    period: Period
    agent: str
    totals: Totals
    top_by_conversations: list[Ranked]
    top_by_tokens: list[Ranked]
    top_by_cost: list[Ranked]
    top_flagged: list[Ranked]
    busiest_days: list[Ranked]
    busiest_hours: list[Ranked]
    daily: list[Day]
    #: ``heatmap[weekday][hour]``: conversations, Monday first, hours in UTC.
    heatmap: tuple[tuple[int, ...], ...]
    agents: list[AgentShare]
    #: Conversations with no last-updated date: in no period, so not counted.
    undated: int


def top(values: Mapping[K, float], n: int = TOP_N) -> list[Ranked]:
    """Return the ``n`` largest non-zero values, ties broken by the smaller key."""
    ranked = sorted(
        ((key, value) for key, value in values.items() if value > 0),
        key=lambda pair: (-pair[1], pair[0]),
    )
    return [Ranked(key, value) for key, value in ranked[:n]]


def _cost(values: Iterable[float]) -> float:
    # fsum: the total must not depend on the order the rows arrived in.
    return round(math.fsum(values), COST_DIGITS)


def compute(
    rows: Iterable[ConversationSummary], period: Period, agent: str = ""
) -> Insights:
    """Compute the insights of ``rows`` updated in ``period`` (and of ``agent``)."""
    rows = [row for row in rows if not agent or row.agent_id == agent]
    undated = sum(1 for row in rows if row.updated is None)
    chosen = [row for row in rows if period.contains(row.updated)]
    by_agent: Counter[str] = Counter()
    tokens_by_agent: Counter[str] = Counter()
    costs_by_agent: defaultdict[str, list[float]] = defaultdict(list)
    flagged_by_agent: Counter[str] = Counter()
    by_day: Counter[date] = Counter()
    flagged_by_day: Counter[date] = Counter()
    tokens_by_day: Counter[date] = Counter()
    costs_by_day: defaultdict[date, list[float]] = defaultdict(list)
    by_hour: Counter[int] = Counter()
    heat = [[0] * 24 for _ in WEEKDAYS]
    for row in chosen:
        assert row.updated is not None  # period.contains() said so
        when = row.updated.astimezone(UTC)
        day = when.date()
        by_agent[row.agent_id] += 1
        by_day[day] += 1
        by_hour[when.hour] += 1
        heat[when.weekday()][when.hour] += 1
        if row.total_tokens is not None:
            tokens_by_agent[row.agent_id] += row.total_tokens
            tokens_by_day[day] += row.total_tokens
        if row.cost is not None:
            costs_by_agent[row.agent_id].append(row.cost)
            costs_by_day[day].append(row.cost)
        if row.flagged:
            flagged_by_agent[row.agent_id] += 1
            flagged_by_day[day] += 1
    costs = [row.cost for row in chosen if row.cost is not None]
    totals = Totals(
        conversations=len(chosen),
        prompt_tokens=sum(r.prompt_tokens or 0 for r in chosen),
        completion_tokens=sum(r.completion_tokens or 0 for r in chosen),
        total_tokens=sum(r.total_tokens or 0 for r in chosen),
        without_tokens=sum(1 for r in chosen if r.total_tokens is None),
        cost=_cost(costs),
        without_cost=len(chosen) - len(costs),
        flagged=sum(1 for r in chosen if r.flagged),
        flag_unknown=sum(1 for r in chosen if r.flagged is None),
    )
    agent_costs = {key: _cost(values) for key, values in costs_by_agent.items()}
    return Insights(
        period=period,
        agent=agent,
        totals=totals,
        top_by_conversations=top(by_agent),
        top_by_tokens=top(tokens_by_agent),
        top_by_cost=top(agent_costs),
        top_flagged=top(flagged_by_agent),
        busiest_days=top(by_day),
        busiest_hours=top(by_hour),
        daily=[
            Day(
                day,
                by_day[day],
                flagged_by_day[day],
                tokens_by_day[day],
                _cost(costs_by_day[day]),
            )
            for day in period.days()
        ],
        heatmap=tuple(tuple(hours) for hours in heat),
        agents=[
            AgentShare(item.key, int(item.value), item.value / len(chosen))
            for item in top(by_agent, n=len(by_agent))
        ],
        undated=undated,
    )
