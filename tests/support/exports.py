"""Signed exports as tests read them: the data without the signature."""

from __future__ import annotations

from typing import Any


def csv_data(text: str) -> str:
    """Return a signed CSV export without its last row, the signature line."""
    body, _, last = text.rstrip("\r\n").rpartition("\n")
    assert last.startswith("airisk-viewer-signature:v1;"), last
    return body + "\n"


def unsigned(document: dict[str, Any]) -> dict[str, Any]:
    """Return a signed JSON export's document without its signature member."""
    assert document.pop("signature").startswith("airisk-viewer-signature:v1;")
    return document
