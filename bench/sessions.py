"""Session floods: what anonymous requests and sign-ins cost the session store.

Issue 17 measured an idle token page going from about 3 ms to 2.95 s after
5,000 anonymous requests (each new session rescanned the folder). This runs
the dashboard in process (Flask's test client; the demo API on loopback for
the sign-in check) with the filesystem store and reports, before and after a
flood, the token page's median time, the files in the session folder, and
the directory listings per request::

    .venv/bin/python -m bench.sessions --flood 6000 --sign-ins 300

Numbers are for reading side by side in one run, never asserted.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from webapp import create_app
from webapp.demo_api import create_demo_app
from webapp.demo_api.server import DemoServer

ALICE = "demo-alice"


def _median_ms(action: Callable[[], Any], times: int) -> float:
    samples = []
    for _ in range(times):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


class _Listings:
    """Count os.listdir / os.scandir calls (directory scans)."""

    def __init__(self) -> None:
        self.count = 0
        self._listdir, self._scandir = os.listdir, os.scandir

    def __enter__(self) -> _Listings:
        def listdir(*args: Any) -> Any:
            self.count += 1
            return self._listdir(*args)

        def scandir(*args: Any) -> Any:
            self.count += 1
            return self._scandir(*args)

        os.listdir, os.scandir = listdir, scandir  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        os.listdir, os.scandir = self._listdir, self._scandir


def _files(folder: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(folder))


def _sign_in(app: Any, address: str) -> int:
    browser = app.test_client()
    browser.environ_base["REMOTE_ADDR"] = address
    page = browser.get("/token").get_data(as_text=True)
    marker = 'name="csrf_token" value="'
    token = page.split(marker, 1)[1].split('"', 1)[0]
    response = browser.post("/token", data={"csrf_token": token, "token": ALICE})
    return int(response.status_code)


def run(flood: int, sign_ins: int) -> dict[str, float]:
    """Return the measurements of one run."""
    with tempfile.TemporaryDirectory() as tmp, DemoServer(create_demo_app()) as api:
        folder = Path(tmp) / "sessions"
        app = create_app(
            {
                "TESTING": True,
                "SECRET_KEY": "bench-secret-key-0123456789abcdef",
                "SESSION_DIR": str(folder),
                "AIRISK_BASE_URL": api.url,
                "SESSION_MAX_SIGNED_IN": max(10, sign_ins // 2),
                "SESSION_MAX_PER_CLIENT": 5,
                "LOG_LEVEL": "WARNING",
            }
        )

        def token_page() -> None:
            app.test_client().get("/token")

        result: dict[str, float] = {"token_page_ms_before": _median_ms(token_page, 50)}
        with _Listings() as listings:
            for i in range(flood):
                visitor = app.test_client()
                visitor.get(f"/missing-{i}")
                visitor.get("/token")
        result["flood_requests"] = 2 * flood
        result["listings_during_flood"] = listings.count
        result["files_after_flood"] = _files(folder)
        result["token_page_ms_after"] = _median_ms(token_page, 50)
        start = time.perf_counter()
        with _Listings() as listings:
            # Two clients take turns: one is capped per client, and together
            # they pass the global cap, so both limits are exercised.
            statuses = [_sign_in(app, f"192.0.2.{i % 40}") for i in range(sign_ins)]
        elapsed = time.perf_counter() - start
        result["sign_ins"] = sign_ins
        result["sign_in_ms_mean"] = elapsed * 1000 / max(1, sign_ins)
        result["sign_ins_refused"] = sum(s == 503 for s in statuses)
        result["listings_during_sign_ins"] = listings.count
        result["session_records"] = _files(folder / "signed-in")
        return result


def main(argv: list[str] | None = None) -> None:
    """Run the session-flood measurement and print its numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flood", type=int, default=6000)
    parser.add_argument("--sign-ins", type=int, default=300)
    args = parser.parse_args(argv)
    # The demo API's access log would drown the numbers.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    for name, value in run(args.flood, args.sign_ins).items():
        print(f"{name:28} {value:g}")


if __name__ == "__main__":
    main()
