"""One log line per request, as text or JSON lines; never a token or session id.

Each line carries a request id (taken from a well-formed ``X-Request-ID`` or
made up, and sent back in the response), the method, the path with the values
of non-trivial query parameters dropped (a search term or a ``next=`` may be
sensitive), the status, the duration and the AIRisk calls the request made.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import Flask, g, request
from werkzeug.wrappers import Response

from ..airisk.client import upstream_stats

log = logging.getLogger("webapp.request")

#: Query parameters whose values are logged; others are logged as "-".
_PLAIN = {"page", "size", "sort", "system", "format", "refresh", "partial", "start"}
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_MARK = "_airisk_viewer_handler"
#: A text-log value printed as is: printable ASCII without spaces, quotes or
#: backslashes. Anything else (a URL can carry %20, %22 or %0a) is quoted and
#: escaped, so a request cannot forge a field or a whole log line.
_BARE_VALUE = re.compile(r"[!#-\[\]-~]+")
_LINE_BREAKERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class JSONFormatter(logging.Formatter):
    """Format a record as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as JSON, with its ``fields`` merged in."""
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Format a record as text, with its ``fields`` as key=value pairs."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802
        """Return the message part with control characters escaped."""
        return _LINE_BREAKERS.sub(_escape, super().formatMessage(record))

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a line of text."""
        line = super().format(record)
        fields = getattr(record, "fields", None)
        if fields:
            line += " " + " ".join(
                f"{key}={_text_value(value)}" for key, value in fields.items()
            )
        return line


def _text_value(value: object) -> str:
    text = str(value)
    return text if _BARE_VALUE.fullmatch(text) else json.dumps(text)


def _escape(match: re.Match[str]) -> str:
    return json.dumps(match.group())[1:-1]


def safe_path() -> str:
    """Return the request path with non-trivial query values replaced by "-"."""
    if not request.query_string:
        return request.path
    pairs = parse_qsl(request.query_string.decode("latin-1"), keep_blank_values=True)
    kept = [(key, value if key in _PLAIN else "-") for key, value in pairs]
    return request.path + "?" + urlencode(kept, safe="-")


def _start() -> None:
    g.request_started = time.perf_counter()
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
    upstream_stats.set([0, 0.0])


def _finish(response: Response) -> Response:
    started = g.get("request_started")
    if started is None:
        return response
    calls, seconds = upstream_stats.get([0, 0.0])
    response.headers["X-Request-ID"] = g.request_id
    log.info(
        "request",
        extra={
            "fields": {
                "request_id": g.request_id,
                "method": request.method,
                "path": safe_path(),
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "upstream_calls": calls,
                "upstream_ms": round(seconds * 1000, 1),
            }
        },
    )
    return response


def init_app(app: Flask) -> None:
    """Log every request, and set up the ``webapp`` logger's output once."""
    logger = logging.getLogger("webapp")
    if not any(getattr(h, _MARK, False) for h in logger.handlers):
        stream = logging.StreamHandler()
        setattr(stream, _MARK, True)
        logger.addHandler(stream)
    logger.setLevel(app.config["LOG_LEVEL"])
    for handler in logger.handlers:
        if getattr(handler, _MARK, False):
            handler.setFormatter(
                JSONFormatter()
                if app.config["LOG_FORMAT"] == "json"
                else TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
            )
    app.before_request(_start)
    app.after_request(_finish)
