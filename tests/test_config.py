"""Configuration: defaults, environment, refusal of unsafe setups, docs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from webapp import ConfigError, create_app
from webapp.cli import main
from webapp.config import Defaults, load, setting_names

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_in_the_readme_table() -> None:
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", readme, flags=re.M))
    assert set(setting_names()) <= documented
    assert documented <= set(setting_names()), "the table lists no stale settings"


def test_environment_overrides_defaults() -> None:
    config = load(
        {
            "AIRISK_BASE_URL": "https://acme.aicrisk.com",
            "AIRISK_READ_TIMEOUT": "2.5",
            "SESSION_IDLE_MINUTES": "20",
            "SESSION_COOKIE_SECURE": "yes",
            "TRUSTED_HOSTS": "reviews.acme.example, localhost",
        }
    )
    assert config["AIRISK_BASE_URL"] == "https://acme.aicrisk.com"
    assert config["AIRISK_READ_TIMEOUT"] == 2.5
    assert config["SESSION_IDLE_MINUTES"] == 20
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["TRUSTED_HOSTS"] == ["reviews.acme.example", "localhost"]
    assert load({})["AIRISK_BASE_URL"] == Defaults.AIRISK_BASE_URL


def test_bad_values_name_the_setting() -> None:
    with pytest.raises(ConfigError, match="SESSION_IDLE_MINUTES"):
        load({"SESSION_IDLE_MINUTES": "soon"})
    with pytest.raises(ConfigError, match="SESSION_COOKIE_SECURE"):
        load({"SESSION_COOKIE_SECURE": "maybe"})


def test_list_row_cache_size_is_a_setting(tmp_path: Path) -> None:
    base = {"TESTING": True, "SESSION_DIR": str(tmp_path)}
    rows = create_app(base).jinja_env.globals["list_rows"]
    assert rows.cache_info().maxsize == Defaults.LIST_ROW_CACHE
    none = create_app({**base, "LIST_ROW_CACHE": 0}).jinja_env.globals["list_rows"]
    assert none.cache_info().maxsize == 0
    with pytest.raises(ConfigError, match="LIST_ROW_CACHE"):
        create_app({**base, "LIST_ROW_CACHE": -1})


def test_refuses_to_start_without_a_secret_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        create_app({"SESSION_DIR": str(tmp_path)})
    with pytest.raises(ConfigError, match="too short"):
        create_app({"SESSION_DIR": str(tmp_path), "SECRET_KEY": "dev"})
    monkeypatch.setenv("SECRET_KEY", "an-environment-secret-0123456789")
    assert create_app({"SESSION_DIR": str(tmp_path)}).secret_key


def test_debug_and_tests_get_a_generated_key(tmp_path: Path) -> None:
    app = create_app({"TESTING": True, "SESSION_DIR": str(tmp_path)})
    assert len(app.secret_key or "") >= 32


@pytest.mark.parametrize(
    "url", ["demo.aicrisk.com", "ftp://x.example", "https://", "https://x.example/?a=1"]
)
def test_refuses_a_bad_base_url(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError, match="AIRISK_BASE_URL"):
        create_app(
            {"TESTING": True, "SESSION_DIR": str(tmp_path), "AIRISK_BASE_URL": url}
        )


@pytest.mark.parametrize(
    "url",
    ["reviews.example", "javascript:alert(1)", "https://", "https://x.example/#a"],
)
def test_refuses_a_bad_public_url(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError, match="PUBLIC_URL"):
        create_app({"TESTING": True, "SESSION_DIR": str(tmp_path), "PUBLIC_URL": url})


def test_trusted_hosts_are_enforced(tmp_path: Path) -> None:
    app = create_app(
        {
            "TESTING": True,
            "SESSION_DIR": str(tmp_path),
            "TRUSTED_HOSTS": ["reviews.example"],
        }
    )
    client = app.test_client()
    assert client.get("/token", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/token", headers={"Host": "reviews.example"}).status_code == 200


def test_cli_reports_config_errors_without_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["demo", "--latency-ms", "-5"])
    assert "--latency-ms must not be negative" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_help_lists_both_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "webapp.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "demo" in result.stdout and "demo-api" in result.stdout


@pytest.mark.slow
def test_wheel_ships_templates_and_static(tmp_path: Path) -> None:
    """A non-editable install must find templates/ and static/."""
    source = tmp_path / "src"
    for name in ("webapp", "templates", "static"):
        shutil.copytree(
            ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in (ROOT / "templates").rglob("*.html"):
        assert f"webapp/templates/{path.relative_to(ROOT / 'templates')}" in names
    for path in (ROOT / "static").iterdir():
        assert f"webapp/static/{path.name}" in names
