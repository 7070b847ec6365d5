"""The list's query string, filters, sorting and time groups (no HTTP)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from webapp.airisk import ConversationSummary
from webapp.core.listing import (
    MAX_PAGE,
    ListQuery,
    browse_has_next,
    browse_neighbours,
    group_rows,
    page_of,
    search_neighbours,
    sort_rows,
    time_group,
)

NOW = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


def row(n: int, **fields: Any) -> ConversationSummary:
    values: dict[str, Any] = {
        "id": f"c{n}",
        "title": f"Conversation {n}",
        "user_id": "u",
        "agent_id": "a1",
        "created": NOW - timedelta(days=n + 1),
        "updated": NOW - timedelta(days=n),
        "prompt_tokens": None,
        "completion_tokens": None,
        "total_tokens": 100 * n,
        "cost": 0.01 * n,
        "flagged": False,
        "metadata": (),
    }
    values.update(fields)
    return ConversationSummary(**values)


def test_defaults_and_round_trip() -> None:
    query = ListQuery.from_args({})
    assert query == ListQuery()
    assert query.args() == {}
    assert not query.searching and not query.filtered
    full = {
        "page": "3",
        "size": "50",
        "agent": "a-1",
        "tag": "pii",
        "q": "vendor nda",
        "from": "2026-11-01",
        "to": "2026-11-20",
        "flagged": "1",
        "attachments": "1",
        "min_tokens": "1000",
        "min_cost": "0.5",
        "sort": "cost",
    }
    query = ListQuery.from_args(full)
    assert query.args() == full
    assert ListQuery.from_args(query.args()) == query
    assert query.searching and query.filtered


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"page": "x", "size": "7"}, ListQuery()),
        ({"page": "0"}, ListQuery()),
        ({"agent": "../etc"}, ListQuery()),
        ({"from": "yesterday", "to": "2026-13-01"}, ListQuery()),
        ({"min_tokens": "-5", "min_cost": "nan"}, ListQuery()),
        ({"sort": "random"}, ListQuery()),
        ({"q": "  spaced   out  "}, ListQuery(q="spaced out")),
        ({"q": "x" * 500}, ListQuery(q="x" * 200)),
        (
            {"from": "2026-11-20", "to": "2026-11-01"},
            ListQuery(start=date(2026, 11, 1), end=date(2026, 11, 20)),
        ),
    ],
)
def test_bad_values_fall_back(args: dict[str, str], expected: ListQuery) -> None:
    assert ListQuery.from_args(args) == expected


def test_browse_filters_do_not_need_a_scan() -> None:
    assert not ListQuery.from_args({"agent": "a1", "tag": "x", "page": "2"}).searching
    for key, value in [
        ("q", "x"),
        ("from", "2026-01-01"),
        ("flagged", "1"),
        ("attachments", "1"),
        ("min_tokens", "1"),
        ("sort", "created"),
    ]:
        assert ListQuery.from_args({key: value}).searching, key


def test_search_matches_titles_and_tags_case_insensitively() -> None:
    query = ListQuery(q="nda")
    assert query.matches(row(1, title="Vendor NDA review"))
    assert query.matches(row(2, metadata=("legal", "NDA-2026")))
    assert not query.matches(row(3, title="Expenses"))


def test_filters_combine() -> None:
    query = ListQuery(
        q="policy",
        agent="a2",
        flagged=True,
        min_tokens=500,
        min_cost=0.05,
        start=date(2026, 11, 20),
        end=date(2026, 11, 27),
    )
    good = row(
        5, title="Policy", agent_id="a2", flagged=True, updated=NOW - timedelta(days=3)
    )
    assert query.matches(good)
    for change in [
        {"title": "Other"},
        {"agent_id": "a1"},
        {"flagged": None},
        {"total_tokens": 499},
        {"total_tokens": None},
        {"cost": 0.04},
        {"updated": datetime(2026, 11, 19, 23, 59, tzinfo=UTC)},
        {"updated": datetime(2026, 11, 28, 0, 0, tzinfo=UTC)},
        {"updated": None},
    ]:
        changed = row(5, **{**_fields(good), **change})
        assert not query.matches(changed), change
    # The end date is inclusive: all of that day counts.
    assert query.matches(
        row(
            5,
            **{**_fields(good), "updated": datetime(2026, 11, 27, 23, 59, tzinfo=UTC)},
        )
    )


def _fields(record: ConversationSummary) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__slots__ if name != "id"}


def test_sorting_is_descending_with_missing_values_last() -> None:
    rows = [row(1, total_tokens=None), row(2), row(3, cost=None), row(4)]
    assert [r.id for r in sort_rows(rows, "tokens")] == ["c4", "c3", "c2", "c1"]
    assert [r.id for r in sort_rows(rows, "cost")] == ["c4", "c2", "c1", "c3"]
    assert [r.id for r in sort_rows(rows, "updated")] == ["c1", "c2", "c3", "c4"]
    assert [r.id for r in sort_rows(rows, "created")] == ["c1", "c2", "c3", "c4"]


@pytest.mark.parametrize(
    ("delta", "group"),
    [
        (timedelta(hours=14), "Today"),
        (timedelta(hours=16), "Yesterday"),
        (timedelta(days=3), "Previous 7 days"),
        (timedelta(days=7), "Previous 7 days"),
        (timedelta(days=8), "Previous 30 days"),
        (timedelta(days=30), "Previous 30 days"),
        (timedelta(days=31), "Older"),
    ],
)
def test_time_groups(delta: timedelta, group: str) -> None:
    assert time_group(NOW - delta, NOW) == group


def test_group_rows_keeps_order_and_groups() -> None:
    rows = [row(0), row(1), row(3), row(4), row(40)]
    groups = group_rows(rows, NOW)
    assert [(name, [r.id for r in items]) for name, items in groups] == [
        ("Today", ["c0"]),
        ("Yesterday", ["c1"]),
        ("Previous 7 days", ["c3", "c4"]),
        ("Older", ["c40"]),
    ]


@pytest.mark.parametrize("hour", [0, 1, 10, 23])
def test_relative_times_and_groups_follow_one_calendar_rule(hour: int) -> None:
    """'yesterday' is the Yesterday group, 'N days ago' a later one, always."""
    from webapp.web.templating import reltime

    now = datetime(2026, 11, 28, hour, 30, tzinfo=UTC)
    for step in range(0, 10 * 24 * 3):  # every 20 minutes over ten days
        when = now - timedelta(minutes=20 * step)
        group, text = time_group(when, now), reltime(when, now)
        if group == "Today":
            assert "day" not in text, (when, text)
        elif group == "Yesterday":
            assert text == "yesterday", (when, text)
        else:
            days = int(text.split()[0])
            assert text.endswith("days ago") and days == (now.date() - when.date()).days
            assert (group == "Previous 7 days") == (days <= 7), (when, text)


# -- paging and previous/next --------------------------------------------------


def test_skip_counts_the_rows_of_earlier_pages() -> None:
    assert ListQuery(page=3, size=20).skip == 40
    assert ListQuery().skip == 0


@pytest.mark.parametrize(
    ("page", "expected", "more"),
    [(1, ["a", "b"], True), (2, ["c", "d"], True), (3, ["e"], False), (4, [], False)],
)
def test_page_of_cuts_a_page_and_says_whether_another_follows(
    page: int, expected: list[str], more: bool
) -> None:
    assert page_of(list("abcde"), page, 2) == (expected, more)


@pytest.mark.parametrize(
    ("rows", "last", "page", "expected"),
    [(2, False, 1, True), (2, True, 1, False), (0, False, 1, False)],
)
def test_a_browsed_page_has_a_next_one_until_an_empty_or_last_answer(
    rows: int, last: bool, page: int, expected: bool
) -> None:
    assert browse_has_next(rows, last, page) is expected


def test_browse_has_next_stops_at_the_last_page_allowed() -> None:
    assert browse_has_next(20, False, MAX_PAGE) is False


def test_search_neighbours_cross_a_page_boundary() -> None:
    query = ListQuery(size=2, q="x")
    previous, nxt = search_neighbours(query, ["a", "b", "c", "d"], "c")
    assert previous == {"cid": "b", "from": urlencode(query.args(page=1))}
    assert nxt == {"cid": "d", "from": urlencode(query.args(page=2))}


def test_search_neighbours_of_the_ends_and_of_a_stranger() -> None:
    query = ListQuery(size=2, q="x")
    assert search_neighbours(query, ["a", "b"], "a")[0] is None
    assert search_neighbours(query, ["a", "b"], "b")[1] is None
    assert search_neighbours(query, ["a", "b"], "z") == (None, None)


def test_browse_neighbours_fetch_the_next_page_only_past_a_full_page() -> None:
    pages = {1: ["a", "b"], 2: ["c", "d"], 3: []}
    asked: list[int] = []

    def page_ids(number: int) -> list[str]:
        asked.append(number)
        return pages[number]

    query = ListQuery(size=2, page=2)
    previous, nxt = browse_neighbours(query, "c", page_ids)
    assert previous == {"cid": "b", "from": urlencode(query.args(page=1))}
    assert nxt == {"cid": "d", "from": urlencode(query.args())}
    assert asked == [2, 1]
    asked.clear()
    previous, nxt = browse_neighbours(query, "d", page_ids)
    assert (previous, nxt) == ({"cid": "c", "from": urlencode(query.args())}, None)
    assert asked == [2, 3]


def test_browse_neighbours_of_a_conversation_not_on_its_page() -> None:
    assert browse_neighbours(ListQuery(size=2), "z", lambda n: ["a", "b"]) == (
        None,
        None,
    )
