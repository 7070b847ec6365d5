"""The layer rule of docs/decisions.md, enforced over every module's imports.

Layers, highest first: the app (factory and command line), ``web`` (pages),
``identity``, ``sessions`` and ``store`` (the database), ``core`` (pure
rules), ``airisk`` (the only HTTP speaker to AIRisk), ``config``. A module
imports its own layer or lower ones, never a higher one. ``core`` uses no web
framework and no HTTP library. The demo AIRisk API is a second program and
imports none of the dashboard; only the command line and the team demo
launcher start it beside a dashboard.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "webapp"

RANKS = {
    "webapp": 6,
    "webapp.cli": 6,
    "webapp.demo_team": 6,
    "webapp.web": 5,
    "webapp.identity": 4,
    "webapp.sessions": 3,
    "webapp.store": 3,
    "webapp.core": 2,
    "webapp.airisk": 1,
    "webapp.config": 0,
}
#: Third-party packages a layer must not use.
FORBIDDEN = {
    "webapp.core": {
        "flask",
        "werkzeug",
        "flask_wtf",
        "flask_session",
        "requests",
        "redis",
    },
    "webapp.airisk": {"flask", "werkzeug", "flask_wtf", "flask_session"},
}
DEMO = "webapp.demo_api"
#: Modules that start the demo API beside a dashboard, so import both.
LAUNCHERS = {"webapp.cli", "webapp.demo_team"}
#: Who may speak HTTP with ``requests``, and to whom.
HTTP_SPEAKERS = {
    "webapp.airisk": "AIRisk",
    # Authlib speaks to the company's OpenID Connect provider with requests;
    # the sign-in view catches its network errors to show a 503 page.
    "webapp.web.sso": "the SSO provider",
}


def module_name(path: Path, root: Path = ROOT) -> str:
    """Return the dotted name of the module at ``path`` under ``root``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(name: str) -> str:
    """Return the layer a module belongs to (its longest matching prefix)."""
    if name == "webapp":
        return "webapp"
    matches = [
        prefix
        for prefix in [*RANKS, DEMO]
        if prefix != "webapp" and (name == prefix or name.startswith(prefix + "."))
    ]
    return max(matches, key=len) if matches else "webapp"


def imports(path: Path, root: Path = ROOT) -> Iterator[tuple[int, str]]:
    """Yield (line, absolute module) for every import in ``path``, lazy ones too."""
    name = module_name(path, root)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module is None or target in RANKS or target == "webapp":
                # "from . import x": each name may be a module of its own.
                for alias in node.names:
                    yield node.lineno, f"{target}.{alias.name}"
            else:
                yield node.lineno, target


MODULES = sorted(PACKAGE.rglob("*.py"))


def violations(path: Path, root: Path = ROOT) -> list[str]:
    """Return the imports in ``path`` (a module under ``root``) that break the rule."""
    source = module_name(path, root)
    own = layer(source)
    found = []
    for line, target in imports(path, root):
        where = f"{path.relative_to(root)}:{line} imports {target}"
        top = target.split(".")[0]
        if top in FORBIDDEN.get(own, set()):
            found.append(f"{where}: {own} must not use {top}")
        if top != "webapp":
            continue
        other = layer(target)
        if own == DEMO or other == DEMO:
            if own != other and source not in LAUNCHERS:
                found.append(f"{where}: the demo API and the dashboard share no code")
            continue
        if RANKS[other] > RANKS[own]:
            found.append(f"{where}: {own} may not import the higher layer {other}")
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path: Path) -> None:
    assert violations(path) == []


@pytest.mark.parametrize(
    ("source", "code", "expected"),
    [
        ("webapp/core/x.py", "import flask\n", "core must not use flask"),
        ("webapp/core/x.py", "from werkzeug import x\n", "must not use werkzeug"),
        (
            "webapp/core/x.py",
            "def f():\n    import requests\n",
            "must not use requests",
        ),
        ("webapp/core/x.py", "from ..web import auth\n", "higher layer webapp.web"),
        ("webapp/airisk/x.py", "from ..core.listing import y\n", "higher layer"),
        ("webapp/sessions/x.py", "from .. import identity\n", "higher layer"),
        ("webapp/store/x.py", "from ..identity import y\n", "higher layer"),
        ("webapp/identity/x.py", "def f():\n    from ..web.auth import y\n", "higher"),
        ("webapp/core/x.py", "from ..sessions import y\n", "higher layer"),
        ("webapp/demo_api/x.py", "from ..airisk import y\n", "share no code"),
    ],
)
def test_the_rule_catches_an_upward_import(
    tmp_path: Path, source: str, code: str, expected: str
) -> None:
    path = tmp_path / source
    path.parent.mkdir(parents=True)
    path.write_text(code)
    (found,) = violations(path, tmp_path)
    assert expected in found


@pytest.mark.parametrize(
    ("source", "code"),
    [
        ("webapp/web/x.py", "from ..sessions import y\nfrom ..core import z\n"),
        ("webapp/store/x.py", "from ..sessions import y\n"),
        ("webapp/demo_team.py", "from .demo_api import y\nfrom .web import z\n"),
        ("webapp/demo_api/x.py", "from .data import y\n"),
    ],
)
def test_the_rule_allows_a_downward_import(
    tmp_path: Path, source: str, code: str
) -> None:
    path = tmp_path / source
    path.parent.mkdir(parents=True)
    path.write_text(code)
    assert violations(path, tmp_path) == []


def test_only_the_http_speakers_import_requests() -> None:
    users = set()
    for path in MODULES:
        name = module_name(path)
        if any(target.split(".")[0] == "requests" for _, target in imports(path)):
            users.add("webapp.airisk" if layer(name) == "webapp.airisk" else name)
    assert users <= set(HTTP_SPEAKERS)
