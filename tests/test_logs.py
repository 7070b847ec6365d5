"""Request log lines: one per request, and nothing a request can forge."""

from __future__ import annotations

import logging
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import make_app

from webapp.web.logs import JSONFormatter, TextFormatter

FIELDS = [
    "request_id",
    "method",
    "path",
    "status",
    "duration_ms",
    "upstream_calls",
    "upstream_ms",
]


class Lines(logging.Handler):
    """Keep each formatted record."""

    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(formatter)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def text_lines() -> Iterator[Lines]:
    handler = Lines(TextFormatter("%(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger("webapp.request")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


@pytest.mark.parametrize(
    "path",
    [
        "/x%0a2026-12-07 INFO webapp.request request status=200",
        "/x%0d%0aforged",
        "/x%e2%80%a8forged",  # U+2028, a line break to some log viewers
        '/x%20status=200%20path="/',
        "/x%5c%22",
    ],
)
def test_a_request_path_cannot_forge_a_text_log_line_or_field(
    tmp_path: Path, text_lines: Lines, path: str
) -> None:
    app = make_app(tmp_path, LOG_FORMAT="text")
    app.test_client().get(path)
    (line,) = text_lines.lines
    assert len(line.splitlines()) == 1
    assert "\u2028" not in line
    level, name, message, *fields = shlex.split(line)
    assert (level, name, message) == ("INFO", "webapp.request", "request")
    assert [field.split("=", 1)[0] for field in fields] == FIELDS
    logged_path = dict(field.split("=", 1) for field in fields)["path"]
    assert logged_path.startswith("/x")


def test_plain_values_stay_readable(tmp_path: Path, text_lines: Lines) -> None:
    make_app(tmp_path).test_client().get("/healthz?page=2")
    (line,) = text_lines.lines
    assert " path=/healthz?page=2 status=200 " in line


def test_json_lines_carry_the_path_as_data() -> None:
    record = logging.LogRecord("webapp.request", 20, __file__, 1, "request", (), None)
    record.fields = {"path": "/x\nforged"}
    assert '"path": "/x\\nforged"' in JSONFormatter().format(record)
