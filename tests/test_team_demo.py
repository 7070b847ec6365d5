"""``airisk-viewer demo --team`` over real HTTP: sign in as a demo member."""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests

from webapp.demo_api.idp import PASSWORD

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def read_until(process: subprocess.Popen[bytes], marker: str) -> str:
    assert process.stdout is not None
    seen = b""
    deadline = time.monotonic() + 30
    while marker.encode() not in seen:
        ready, _, _ = select.select([process.stdout], [], [], 1)
        if ready:
            chunk = os.read(process.stdout.fileno(), 4096)
            assert chunk, f"demo exited: {seen!r}"
            seen += chunk
        assert time.monotonic() < deadline, seen
    return seen.decode()


def wait_for(port: int) -> None:
    """Wait until something listens on ``port`` (the dashboard binds last)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on {port}"
            time.sleep(0.05)


def test_demo_team_signs_a_member_in(tmp_path: Path) -> None:
    port, api_port, idp_port = free_port(), free_port(), free_port()
    env = {
        "PATH": os.environ["PATH"],
        "SESSION_DIR": str(tmp_path / "sessions"),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "DATABASE_URL": os.environ["DATABASE_URL"],
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "webapp.cli",
            "demo",
            "--team",
            f"--port={port}",
            f"--api-port={api_port}",
            f"--idp-port={idp_port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        said = read_until(process, "a person with no AIRisk account")
        assert f"Dashboard (team):  http://127.0.0.1:{port}/" in said
        assert f"password {PASSWORD}" in said
        assert "rita, sam  reviewers" in said and "alice, bob  members" in said
        browser = requests.Session()
        browser.trust_env = False
        base = f"http://127.0.0.1:{port}"
        wait_for(port)
        # The dashboard sends the browser to the SSO provider's sign-in form.
        form = browser.get(base + "/", timeout=10)
        assert form.url.startswith(f"http://127.0.0.1:{idp_port}/interaction/")
        action = re.search(r'action="([^"]+)"', form.text)
        assert action is not None
        page = browser.post(
            urljoin(form.url, action.group(1)),
            data={"login": "bob", "password": PASSWORD},
            timeout=10,
        )
        assert page.status_code == 200
        assert re.fullmatch(rf"{base}/u/[0-9a-f-]+/conversations", page.url)
        assert "Signed in as Bob Chen" in page.text
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)
        assert process.stdout is not None
        process.stdout.close()
