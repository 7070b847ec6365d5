"""The demo AIRisk API with its calls counted."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Counting:
    """WSGI middleware that records the path and query of every call."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        with self.lock:
            self.calls.append(
                environ["PATH_INFO"] + "?" + environ.get("QUERY_STRING", "")
            )
        return self.app(environ, start_response)

    def count(self, fragment: str) -> int:
        with self.lock:
            return sum(fragment in call for call in self.calls)
