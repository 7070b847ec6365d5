"""The date filters every list row and conversation page goes through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from webapp.web.templating import abstime, isotime, reltime

PLUS_TWO = timezone(timedelta(hours=2))


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 28, 14, 3, 9, 123456, tzinfo=UTC),
        datetime(2026, 11, 28, 16, 3, 9, 123456, tzinfo=PLUS_TWO),
    ],
)
def test_absolute_and_iso_times_are_utc(moment: datetime) -> None:
    assert abstime(moment) == "2026-11-28 14:03 UTC"
    assert abstime(moment, seconds=True) == "2026-11-28 14:03:09 UTC"
    assert isotime(moment) == "2026-11-28T14:03:09.123456+00:00"


def test_a_new_day_across_the_offset() -> None:
    moment = datetime(2026, 11, 29, 1, 30, tzinfo=PLUS_TWO)
    assert abstime(moment) == "2026-11-28 23:30 UTC"


def test_unknown_times() -> None:
    assert abstime(None) == "unknown"
    assert isotime(None) == ""
    assert reltime(None) == "unknown"


@pytest.mark.parametrize(
    ("ago", "text"),
    [
        (timedelta(seconds=30), "just now"),
        (timedelta(minutes=1), "1 minute ago"),
        (timedelta(hours=3, minutes=59), "3 hours ago"),
        (timedelta(days=1, hours=2), "yesterday"),
        (timedelta(days=9), "9 days ago"),
        (-timedelta(minutes=5), "in the future"),
    ],
)
def test_relative_times_against_one_instant(ago: timedelta, text: str) -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert reltime(now - ago, now) == text
