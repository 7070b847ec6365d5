"""Reading one conversation: message windows, find, highlighted ranges.

Plain functions over messages (no Flask), so each rule is tested directly.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..airisk import Message

#: Messages shown per window of a long conversation.
WINDOW = 200


def window_start(ids: list[str], anchor: str | None, start: str, size: int) -> int:
    """Return the first index of the window to show.

    The window holding ``anchor`` (a message id) wins; else the one holding
    the ``start`` index (a query value, so possibly junk).
    """
    if anchor in ids:
        return ids.index(anchor) // size * size
    try:
        first = max(0, int(start))
    except ValueError:
        first = 0
    return min(first, max(0, len(ids) - 1)) // size * size


def highlight_span(value: str, messages: Sequence[Message]) -> tuple[int, int] | None:
    """Return the first and last index of ``first..last`` (or one id), or None."""
    first, _, last = value.partition("..")
    ids = [m.id for m in messages]
    if first not in ids:
        return None
    start = ids.index(first)
    end = ids.index(last) if last in ids else start
    return min(start, end), max(start, end)


def message_numbers(value: str, total: int) -> tuple[int, int]:
    """Return the message numbers ``first-last`` names, clamped to 1..total.

    Junk (a query value) means the first window.
    """
    first, _, last = value.partition("-")
    # isascii: Unicode digits pass isdigit() but not int(); the length keeps
    # int() away from its limit on huge digit strings.
    if not all(n.isascii() and n.isdigit() and len(n) < 10 for n in (first, last)):
        return 1, min(total, WINDOW)
    low = min(max(int(first), 1), max(total, 1))
    return low, min(max(int(last), low), total)


def highlight_range(value: str, messages: list[Message]) -> tuple[set[str], str | None]:
    """Return the ids in ``first..last`` (or one id), and the first id."""
    first, _, last = value.partition("..")
    ids = [m.id for m in messages]
    if first not in ids:
        return set(), None
    start = ids.index(first)
    end = ids.index(last) if last in ids else start
    start, end = min(start, end), max(start, end)
    return set(ids[start : end + 1]), ids[start]


def find_matches(
    needle: str, messages: list[Message]
) -> list[tuple[int, Message, int]]:
    """Return (position, message, count) for each message containing ``needle``."""
    if not needle:
        return []
    folded = needle.casefold()
    found = []
    for position, message in enumerate(messages):
        count = message.text.casefold().count(folded)
        if count:
            found.append((position, message, count))
    return found
