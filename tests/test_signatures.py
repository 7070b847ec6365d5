"""Signed exports: every kind verifies, and any change, wrong key or cut fails.

The dashboard runs on the demo API; files are checked with the module a
verifier uses, the ``airisk-viewer verify`` command, the ``/verify`` page and
the ten-line script in docs/exports.md.
"""

from __future__ import annotations

import http.server
import io
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import ALICE, Browser, Page, make_app

from webapp import ConfigError, cli
from webapp.core import signatures
from webapp.demo_api.server import DemoServer
from webapp.web import evidence

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def served(demo: Any, tmp_path: Path) -> Iterator[tuple[Browser, Any, list[Any]]]:
    """A dashboard on the demo API whose export hook records its calls."""
    server, _, data = demo
    app = make_app(tmp_path, AIRISK_BASE_URL=server.url, EVIDENCE_DEPLOYMENT="acme")
    calls: list[Any] = []
    evidence.set_export_hook(app, lambda *args: calls.append(args))
    with DemoServer(app) as dashboard:
        browser = Browser(dashboard.url)
        browser.enter_token(ALICE, browser.get("/token"))
        yield browser, app, calls


def exports_of(browser: Browser, data: Any) -> dict[str, bytes]:
    """Download one file of every export kind."""
    cid = data.summaries_for(data.user_id_for(ALICE))[0]["id"]
    paths = {
        "conversation-md": f"/conversations/{cid}/export.md",
        "conversation-json": f"/conversations/{cid}/export.json",
        "conversation-html": f"/conversations/{cid}/export.html",
        "list-csv": "/conversations/export.csv",
        "list-json": "/conversations/export.json",
        "insights-csv": "/insights/agents.csv?preset=all",
        "insights-json": "/insights.json?preset=all",
    }
    files = {}
    for kind, path in paths.items():
        response = browser.get(path)
        assert response.status_code == 200, (kind, response.text[:300])
        files[kind] = response.content
    return files


def test_every_export_kind_is_signed_and_any_change_fails(
    served: Any, demo: Any
) -> None:
    browser, app, calls = served
    keys = evidence.keyring(app).public_keys()
    files = exports_of(browser, demo[2])
    for kind, data in files.items():
        verdict = signatures.verify(data, keys)
        assert verdict.valid, (kind, verdict.reason)
        assert verdict.stamp and verdict.stamp.kind == kind
        assert verdict.stamp.deployment == "acme"
        assert verdict.stamp.by.startswith("token \u2026")
        # A one-byte change anywhere: first byte, middle, in the signature
        # line's fields, in the signature itself, the very last byte.
        line = signatures.SIGNATURE_LINE.search(data)
        assert line
        for at in {0, len(data) // 2, line.start() + 30, line.end() - 5, len(data) - 1}:
            changed = bytearray(data)
            changed[at] = changed[at] ^ 0x01
            assert not signatures.verify(bytes(changed), keys).valid, (kind, at)
        # Cut short (even by one byte), or grown by one.
        for cut in (data[:-1], data[: len(data) // 2], data + b"\n"):
            assert not signatures.verify(cut, keys).valid, kind
    # The files stay valid files of their kind.
    assert json.loads(files["conversation-json"])["signature"]
    assert json.loads(files["list-json"])["signature"]
    assert json.loads(files["insights-json"])["signature"]
    # The access trail's hook heard of each export, with the digest signed.
    assert [call[1] for call in calls] == list(files)
    assert all(re.fullmatch(r"[0-9a-f]{64}", call[0]) for call in calls)


def test_a_wrong_key_and_a_rotated_key(served: Any, demo: Any, tmp_path: Path) -> None:
    browser, app, _ = served
    data = exports_of(browser, demo[2])["conversation-md"]
    old = evidence.keyring(app)
    other = signatures.parse_private_key(signatures.new_private_key_text())
    wrong = signatures.Keyring(other).public_keys()
    verdict = signatures.verify(data, wrong)
    assert not verdict.valid and old.current_id in verdict.reason
    # A signature line re-signed with another key under the old key's id fails.
    forged, _ = signatures.sign(
        data[: data.rindex(b"\nSignature: `")],
        other,
        signatures.Stamp(old.current_id, "acme", "2026-01-01", "x", "conversation-md"),
        *signatures.WRAPPING["conversation-md"],
    )
    assert not signatures.verify(forged, old.public_keys()).valid
    # Rotation: a new signing key, the old public key listed as previous.
    rotated = make_app(
        tmp_path,
        EVIDENCE_SIGNING_KEY=signatures.new_private_key_text(),
        EVIDENCE_PREVIOUS_KEYS=[signatures.public_hex(old.signing.public_key())],
    )
    document = rotated.test_client().get(evidence.KEYS_PATH).get_json()
    assert [k["status"] for k in document["keys"]] == ["current", "previous"]
    assert signatures.verify(data, signatures.parse_keys(json.dumps(document))).valid
    # Rotated without keeping the old public key: the old files fail, and say why.
    forgotten = make_app(
        tmp_path, EVIDENCE_SIGNING_KEY=signatures.new_private_key_text()
    )
    verdict = signatures.verify(data, evidence.keyring(forgotten).public_keys())
    assert not verdict.valid and "not among the keys" in verdict.reason


def test_the_key_is_generated_once_and_kept(tmp_path: Path, caplog: Any) -> None:
    app = make_app(tmp_path)
    first = evidence.keyring(app).current_id
    assert "Generated a new evidence signing key" in caplog.text
    assert (tmp_path / "evidence-key").stat().st_mode & 0o077 == 0
    again = make_app(tmp_path)
    assert evidence.keyring(again).current_id == first


def test_verify_command_and_page(served: Any, demo: Any, tmp_path: Path) -> None:
    browser, app, _ = served
    data = exports_of(browser, demo[2])["list-csv"]
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_bytes(data)
    bad.write_bytes(data.replace(b",", b";", 1))
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(browser.get(evidence.KEYS_PATH).text)
    assert cli.main(["verify", str(good), "--key", str(keys_file)]) == 0
    assert cli.main(["verify", str(bad), "--key", str(keys_file)]) == 1
    url = browser.base + evidence.KEYS_PATH
    assert cli.main(["verify", str(good), "--key", url]) == 0

    # The page: no sign-in needed, CSRF checked, nothing kept.
    stranger = Browser(browser.base)
    page = stranger.get("/verify")
    assert page.status_code == 200
    token = stranger.form_token(page)
    for body, expected in ((data, "Valid."), (bad.read_bytes(), "Not valid:")):
        answer = stranger.http.post(
            stranger.base + "/verify",
            data={"csrf_token": token},
            files={"file": ("export.csv", body)},
            timeout=30,
        )
        shown = Page(answer.text)
        assert len(shown.find_all("p", id="verdict")) == 1
        assert expected in shown.text
        if expected == "Valid.":
            assert "Signed by acme at" in shown.text
            assert "exported by token" in shown.text
    refused = stranger.http.post(
        stranger.base + "/verify", files={"file": ("x", data)}, timeout=30
    )
    assert refused.status_code == 400


def test_verify_page_refuses_a_file_over_the_limit(tmp_path: Path) -> None:
    app = make_app(tmp_path, EVIDENCE_VERIFY_MAX_BYTES=1000, WTF_CSRF_ENABLED=False)
    client = app.test_client()
    small = client.post("/verify", data={"file": (io.BytesIO(b"x" * 500), "f")})
    assert small.status_code == 200 and "Not valid" in small.text
    big = client.post("/verify", data={"file": (io.BytesIO(b"x" * 5000), "f")})
    assert big.status_code == 413


def test_the_documented_script_verifies_a_real_export(
    served: Any, demo: Any, tmp_path: Path
) -> None:
    browser, app, _ = served
    docs = (ROOT / "docs" / "exports.md").read_text()
    script = re.search(r"```python\n(.*?)```", docs, re.S)
    assert script
    assert len([line for line in script[1].splitlines() if line.strip()]) <= 11
    (tmp_path / "verify.py").write_text(script[1])
    (tmp_path / "keys.json").write_text(browser.get(evidence.KEYS_PATH).text)
    data = exports_of(browser, demo[2])["conversation-json"]
    (tmp_path / "export.json").write_bytes(data)
    (tmp_path / "edited.json").write_bytes(data.replace(b'"text": "', b'"text": "X', 1))
    # A signature's hex digits moved into a line a message quotes.
    ring = evidence.keyring(app)
    lie = signatures.Stamp(ring.current_id, "acme", "2020", "ceo", "conversation-json")
    quoted = b"airisk-viewer-signature:v1;" + lie.fields() + b";sig="
    stamp = signatures.Stamp(ring.current_id, "acme", "2026", "ada", lie.kind)
    body = b'{"text": "' + quoted + b'"'
    signed, _ = signatures.sign(
        body, ring.signing, stamp, *signatures.WRAPPING[lie.kind]
    )
    sig = signatures.SIGNATURE_LINE.findall(signed)[-1][1]
    moved = signed.replace(sig, b"").replace(quoted, quoted + sig)
    (tmp_path / "moved.json").write_bytes(moved)

    def run(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "verify.py", name, "keys.json"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    ok = run("export.json")
    assert ok.returncode == 0 and "valid" in ok.stdout, ok.stderr
    assert run("edited.json").returncode != 0
    assert run("moved.json").returncode != 0


def test_verify_without_key_uses_the_deployments_settings(
    served: Any, demo: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    browser, app, _ = served
    exported = tmp_path / "list.json"
    exported.write_bytes(exports_of(browser, demo[2])["list-json"])
    # The deployment rotated: its old key is a previous key now.
    old = signatures.public_hex(evidence.keyring(app).signing.public_key())
    monkeypatch.setenv("EVIDENCE_SIGNING_KEY", signatures.new_private_key_text())
    monkeypatch.setenv("EVIDENCE_PREVIOUS_KEYS", old)
    assert cli.main(["verify", str(exported)]) == 0
    assert "Valid: signed by acme at" in capsys.readouterr().out
    monkeypatch.delenv("EVIDENCE_PREVIOUS_KEYS")
    assert cli.main(["verify", str(exported)]) == 1
    assert "not among the keys" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("EVIDENCE_SIGNING_KEY", "not-a-key"),
        ("EVIDENCE_PREVIOUS_KEYS", ["abcd"]),
    ],
)
def test_a_bad_key_setting_stops_the_start(
    tmp_path: Path, setting: str, value: Any
) -> None:
    with pytest.raises(ConfigError, match=setting):
        make_app(tmp_path, **{setting: value})


def test_a_signature_moved_into_a_quoted_line_does_not_verify() -> None:
    # A chat message can quote a signature line with fields of its author's
    # choosing; moving the real signature's hex digits into it leaves the
    # signed bytes unchanged, so the check must also pin where the line is.
    key = signatures.parse_private_key(signatures.new_private_key_text())
    ring = signatures.Keyring(key)
    stamp = signatures.Stamp(ring.current_id, "acme", "2026-12-07", "ada", "list-csv")
    lie = signatures.Stamp(ring.current_id, "acme", "2020-01-01", "ceo", "list-csv")
    quoted = b"airisk-viewer-signature:v1;" + lie.fields() + b";sig="
    body = b"id,text\r\n1,see " + quoted + b" above\r\n"
    data, _ = signatures.sign(body, key, stamp, *signatures.WRAPPING["list-csv"])
    assert signatures.verify(data, ring.public_keys()).valid
    sig = signatures.SIGNATURE_LINE.findall(data)[-1][1]
    moved = data.replace(sig, b"").replace(quoted, quoted + sig)
    verdict = signatures.verify(moved, ring.public_keys())
    assert not verdict.valid, verdict.summary()


def test_verify_command_fetches_keys_only_over_https_or_loopback(
    tmp_path: Path, capsys: Any
) -> None:
    # Keys fetched over plain http from another host (or sent there by a
    # redirect) could be anyone's: the command refuses before connecting.
    export = tmp_path / "export.csv"
    export.write_bytes(b"x")
    plain = "http://keys.example.invalid/.well-known/airisk-viewer-keys.json"
    assert cli.main(["verify", str(export), "--key", plain]) == 2
    assert "https" in capsys.readouterr().err

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            self.send_response(302)
            self.send_header("Location", plain)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/keys.json"
        assert cli.main(["verify", str(export), "--key", url]) == 2
        assert "https" in capsys.readouterr().err
    finally:
        server.shutdown()
        server.server_close()


def test_verify_work_grows_with_the_file_not_its_square(tmp_path: Path) -> None:
    # /verify takes uploads from anyone, up to EVIDENCE_VERIFY_MAX_BYTES: a
    # file of back-to-back signature markers made the search quadratic (a
    # 200 KB file took seconds, 32 MB days). 120 s is a hang guard, ~1000
    # times what the linear check needs even on a busy machine.
    attack = tmp_path / "markers.md"
    attack.write_bytes(signatures.MARKER.encode() * (4 * 1024 * 1024 // 27))
    check = (
        "import sys; from webapp.core import signatures as s; "
        "print(s.verify(open(sys.argv[1], 'rb').read(), {}).valid)"
    )
    done = subprocess.run(
        [sys.executable, "-c", check, str(attack)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout == "False\n", done.stderr
