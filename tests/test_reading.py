"""Reading one conversation: which window shows, what a highlight covers, find."""

from __future__ import annotations

import pytest

from webapp.airisk import Message
from webapp.core.reading import (
    find_matches,
    highlight_range,
    message_numbers,
    window_start,
)


def message(n: int, text: str = "") -> Message:
    return Message(
        id=f"m{n}",
        type="User",
        text=text or f"message {n}",
        feedback=None,
        file_name="",
        file_url="",
        citations=(),
    )


IDS = [f"m{n}" for n in range(450)]


@pytest.mark.parametrize(
    ("anchor", "start", "first"),
    [
        (None, "", 0),
        ("m0", "", 0),
        ("m199", "", 0),
        ("m200", "", 200),
        ("m449", "0", 400),
        ("m250", "400", 200),  # the anchored message wins over start=
        (None, "250", 200),
        (None, "9999", 400),  # past the end: the last window
        (None, "-5", 0),
        (None, "junk", 0),
        ("nope", "200", 200),
    ],
)
def test_the_window_holds_the_anchor_else_the_start(
    anchor: str | None, start: str, first: int
) -> None:
    assert window_start(IDS, anchor, start, 200) == first


def test_an_empty_conversation_starts_at_zero() -> None:
    assert window_start([], None, "5", 200) == 0


MESSAGES = [message(n) for n in range(6)]


@pytest.mark.parametrize(
    ("value", "ids", "first"),
    [
        ("m1..m3", {"m1", "m2", "m3"}, "m1"),
        ("m3..m1", {"m1", "m2", "m3"}, "m1"),  # reversed: the same range
        ("m4", {"m4"}, "m4"),
        ("m4..gone", {"m4"}, "m4"),  # an unknown end: just the first
        ("gone..m4", set(), None),
        ("", set(), None),
    ],
)
def test_a_highlight_covers_exactly_its_range(
    value: str, ids: set[str], first: str | None
) -> None:
    assert highlight_range(value, MESSAGES) == (ids, first)


def test_find_counts_case_insensitive_matches_per_message() -> None:
    messages = [
        message(0, "Policy and POLICY"),
        message(1, "none"),
        message(2, "policy"),
    ]
    found = [
        (position, m.id, count)
        for position, m, count in find_matches("policy", messages)
    ]
    assert found == [(0, "m0", 2), (2, "m2", 1)]
    assert find_matches("", messages) == []
    assert find_matches("straße".upper(), [message(0, "Die Straße")])[0][2] == 1


@pytest.mark.parametrize(
    ("value", "total", "expected"),
    [
        ("402-601", 2001, (402, 601)),
        ("1900-2500", 2001, (1900, 2001)),
        ("5-2", 10, (5, 5)),
        ("0-3", 10, (1, 3)),
        ("junk", 2001, (1, 200)),
        ("\u0663-5", 10, (1, 10)),
        ("9" * 5000 + "-1", 10, (1, 10)),
    ],
)
def test_message_numbers_of_a_print_window(
    value: str, total: int, expected: tuple[int, int]
) -> None:
    assert message_numbers(value, total) == expected
