"""What the access trail costs a page: the same pages with it on and off.

Two dashboards in one process (Flask's test client), each on its own SQLite
database in WAL mode, one with ``AUDIT_TRAIL`` on and one with it off, both
on the demo API on loopback with its answers cached (so the page's own work,
the trail insert included, is what is timed). Requests alternate between the
two so a noisy machine slows both alike::

    .venv/bin/python -m bench.trail --requests 2000

Reports p50 and p95 per page and the difference; never asserted.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from webapp import create_app
from webapp.demo_api import create_demo_app
from webapp.demo_api.server import DemoServer
from webapp.store.migrate import upgrade

ALICE = "demo-alice"
PAGES = {"list": "/conversations?size=50", "conversation": "/conversations/{cid}"}


def _app(folder: Path, api: str, trail_on: bool) -> Any:
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "bench-secret-key-0123456789abcdef",
            "SESSION_DIR": str(folder / "sessions"),
            "DATABASE_URL": f"sqlite:///{folder / 'airisk-viewer.db'}",
            "AIRISK_BASE_URL": api,
            "AUDIT_TRAIL": trail_on,
            "LOG_LEVEL": "WARNING",
        }
    )
    upgrade(app.extensions["store"])
    return app


def _signed_in(app: Any) -> Any:
    browser = app.test_client()
    page = browser.get("/token").get_data(as_text=True)
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    browser.post("/token", data={"csrf_token": token, "token": ALICE})
    return browser


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(requests: int) -> dict[str, Any]:
    """Return p50/p95 per page, trail on and off, in milliseconds."""
    with tempfile.TemporaryDirectory() as tmp, DemoServer(create_demo_app()) as api:
        apps = {
            "on": _app(Path(tmp) / "on", api.url, True),
            "off": _app(Path(tmp) / "off", api.url, False),
        }
        browsers = {name: _signed_in(app) for name, app in apps.items()}
        first = browsers["on"].get("/conversations?format=json").get_json()
        cid = first["conversations"][0]["id"]
        samples: dict[str, dict[str, list[float]]] = {
            page: {"on": [], "off": []} for page in PAGES
        }
        for page, path in PAGES.items():
            url = path.format(cid=cid)
            for browser in browsers.values():  # warm caches and templates
                for _ in range(20):
                    assert browser.get(url).status_code == 200
            for _ in range(requests):
                for name, browser in browsers.items():
                    start = time.perf_counter()
                    response = browser.get(url)
                    response.get_data()
                    samples[page][name].append((time.perf_counter() - start) * 1000)
        store = apps["on"].extensions["store"]
        with store.read() as conn:
            from sqlalchemy import func, select

            from webapp.store.models import TrailRow

            rows = conn.execute(select(func.count()).select_from(TrailRow)).scalar()
        result: dict[str, Any] = {"requests_per_page": requests, "trail_rows": rows}
        for page, by_name in samples.items():
            on, off = by_name["on"], by_name["off"]
            result[page] = {
                "p50_on_ms": round(statistics.median(on), 3),
                "p50_off_ms": round(statistics.median(off), 3),
                "p50_overhead_ms": round(
                    statistics.median(on) - statistics.median(off), 3
                ),
                "p95_on_ms": round(_percentile(on, 0.95), 3),
                "p95_off_ms": round(_percentile(off, 0.95), 3),
            }
        return result


def main(argv: list[str] | None = None) -> None:
    """Run the trail on/off comparison and print its numbers as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("webapp").setLevel(logging.WARNING)
    print(json.dumps(run(args.requests), indent=2))


if __name__ == "__main__":
    main()
