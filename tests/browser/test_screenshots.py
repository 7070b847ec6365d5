"""``make screenshots`` keeps working: run it into a temporary folder."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import BrowserContext

from .harness import screenshots_module


def png_size(path: Path) -> tuple[int, int]:
    """Return a PNG's width and height from its header."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_the_screenshot_command_writes_the_documented_pictures(
    new_context: Callable[..., BrowserContext], tmp_path: Path
) -> None:
    written = screenshots_module().take(tmp_path, new_context)
    names = [
        "token.png",
        "list.png",
        "conversation.png",
        "conversation-dark.png",
        "search.png",
        "highlight.png",
        "insights.png",
    ]
    assert [p.name for p in written] == names
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    for name in names:
        # A blank or error page compresses to a few kilobytes at this size.
        assert (tmp_path / name).stat().st_size > 30_000, name
    assert png_size(tmp_path / "conversation.png") == (1200, 1250)
    assert png_size(tmp_path / "conversation-dark.png") == (1200, 1250)
