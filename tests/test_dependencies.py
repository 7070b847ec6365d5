"""Dependency floors exclude known-vulnerable releases; the lock covers them all.

pip-audit needs a vulnerability database this project's machines cannot
reach, so the advisories that matter are written down here (and in
docs/security.md), and the floors in pyproject.toml are checked against them.
"""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent

#: First release without the advisories listed, per package.
FIXED: dict[str, tuple[str, str]] = {
    "flask": ("3.1.3", "CVE-2025-47278, GHSA-68rp-wp8r-4726"),
    "werkzeug": ("3.1.6", "CVE-2024-49766/49767, GHSA-87hc-h4r5-73f7, -29vq-"),
    "jinja2": ("3.1.6", "CVE-2024-56201, CVE-2024-56326, CVE-2025-27516"),
    "requests": ("2.33.0", "CVE-2024-35195, CVE-2024-47081, CVE-2026-25645"),
    "urllib3": ("2.7.0", "CVE-2025-66418/66471, CVE-2026-21441/44431/44432"),
    "cryptography": ("50.0.0", "CVE-2026-39892, GHSA-537c-gmf6-5ccf, -69247"),
    "gunicorn": ("27.0.0", "CVE-2024-1135, CVE-2024-6827, CVE-2026-134820"),
    "setuptools": ("78.1.1", "CVE-2024-6345, CVE-2025-47273"),
    "authlib": ("1.6.12", "CVE-2026-27962, CVE-2026-41425, CVE-2026-44681"),
}


def project() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def requirements() -> list[Requirement]:
    """Return the runtime and dev requirements of pyproject.toml."""
    meta = project()
    extras = meta["optional-dependencies"]
    assert isinstance(extras, dict)
    listed = [*meta["dependencies"], *extras["dev"]]  # type: ignore[misc]
    return [Requirement(line) for line in listed]


def floor(requirement: Requirement) -> Version | None:
    """Return the lowest version ``requirement`` admits via ``>=``, if any."""
    lows = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
    return max(lows) if lows else None


def pins() -> dict[str, str]:
    """Return constraints.txt as {canonical name: pinned version}."""
    found = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line)
        assert match, f"not an exact pin: {line!r}"
        found[canonicalize_name(match.group(1))] = match.group(2)
    return found


@pytest.mark.parametrize("name", sorted(FIXED))
def test_floors_exclude_releases_with_known_vulnerabilities(name: str) -> None:
    fixed, advisories = FIXED[name]
    declared = {canonicalize_name(r.name): r for r in requirements()}
    assert name in declared, f"{name} must be a declared dependency with a floor"
    low = floor(declared[name])
    assert low is not None and low >= Version(fixed), (
        f"{declared[name]} admits releases before {fixed} ({advisories})"
    )
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]
    for line in build["requires"]:
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) == name:
            assert (floor(requirement) or Version("0")) >= Version(fixed)


def test_the_lock_pins_every_requirement_within_its_range() -> None:
    locked = pins()
    missing = []
    for requirement in requirements():
        name = canonicalize_name(requirement.name)
        if name not in locked:
            missing.append(name)
            continue
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"constraints.txt pins {name}=={locked[name]}, outside {requirement}"
        )
    assert not missing, f"run `make lock`: constraints.txt lacks {missing}"
    for name, (fixed, _) in FIXED.items():
        assert Version(locked[name]) >= Version(fixed)


def test_the_environment_was_installed_from_the_lock() -> None:
    """`make` installs with ``-c constraints.txt``: what is installed matches."""
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet -c $(LOCK) -e '.[dev]'" in makefile
    differ = {}
    for name, pinned in pins().items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            continue  # an extra that is not installed here (bench)
        if Version(installed) != Version(pinned):
            differ[name] = (installed, pinned)
    assert not differ, f"installed != constraints.txt (run make): {differ}"
