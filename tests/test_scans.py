"""Whole-history scans against the real demo API on loopback.

The end of a history, scans shared between requests, scans that stop when
nobody waits for them, and the "Has attachments" check. A WSGI wrapper
counts the calls that reach the demo API.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ALICE, Counting, signed_in_reviewer

from webapp.demo_api import create_demo_app
from webapp.demo_api.server import DemoServer

#: Rows the capped demo API serves per page, whatever is asked.
CAP = 50


@pytest.fixture(scope="module")
def capped() -> Iterator[tuple[DemoServer, Counting, Any]]:
    """The demo API serving at most ``CAP`` rows per page, calls counted."""
    app = create_demo_app(max_results=CAP)
    counting = Counting(app)
    with DemoServer(counting) as server:
        yield server, counting, app.extensions["airisk_demo"]


def alice_ids(data: Any) -> list[str]:
    return [s["id"] for s in data.summaries[data.user_id_for(ALICE)]]


# -- the end of a history ----------------------------------------------------------


def test_a_capped_upstream_is_scanned_to_its_empty_page(
    capped: Any, tmp_path: Path
) -> None:
    _, counting, data = capped
    everything = alice_ids(data)
    assert len(everything) > 2 * CAP and len(everything) % CAP
    with signed_in_reviewer(capped, tmp_path) as reviewer:
        search = reviewer.get("/conversations?sort=created&format=json").json()
        assert search["complete"] is True
        assert search["scanned"] == search["total"] == len(everything)
        # The scan asked past the last short page and stopped on an empty one.
        assert counting.calls[-1].endswith(f"skip={len(everything)}&metadatasearch=")
        insights = reviewer.get("/insights.json?days=all").json()
        assert insights["complete"] is True and insights["scanned"] == len(everything)
        exported = reviewer.get("/conversations/export.csv?sort=created").text
        rows = list(csv.DictReader(io.StringIO(exported)))
        assert sorted(row["id"] for row in rows) == sorted(everything)


def test_the_list_pages_through_a_capped_upstream(capped: Any, tmp_path: Path) -> None:
    _, _, data = capped
    everything = alice_ids(data)
    seen: list[str] = []
    with signed_in_reviewer(capped, tmp_path) as reviewer:
        page = 1
        while True:
            listing = reviewer.get(f"/conversations?size=100&page={page}&format=json")
            body = listing.json()
            seen += [c["id"] for c in body["conversations"]]
            if not body["hasNext"]:
                break
            assert len(body["conversations"]) == 100, "a full page before the end"
            page += 1
    assert seen == everything
