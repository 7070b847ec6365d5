"""Sample where a gunicorn worker spends its time, with py-spy, and summarise."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

#: Frames that only carry a request to the app (server loop, thread pool).
_SCAFFOLDING = ("gunicorn", "concurrent", "threading", "selectors", "socketserver")
#: Samples per second.
RATE = 200
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def py_spy() -> str | None:
    """Return the py-spy executable beside this Python, else on the PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def record(pid: int, seconds: float, rate: int = RATE) -> str:
    """Sample the thread holding ``pid``'s GIL for ``seconds``; return stacks.

    Only GIL-holding samples (``--gil``): a worker runs Python on one core at
    a time, so they are the work that limits it. py-spy's idle detection
    counts threads blocked in ``recv`` on the upstream as busy, and would
    bury the profile under socket waits.

    :raises RuntimeError: if py-spy is missing or cannot attach (it needs
        ptrace: root, or ``kernel.yama.ptrace_scope=0``).
    """
    exe = py_spy()
    if exe is None:
        raise RuntimeError("py-spy is not installed (make bench installs it)")
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as out:
        done = subprocess.run(
            [
                exe,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(max(1, round(seconds))),
            ]
            + ["--rate", str(rate), "--format", "raw", "--function"]
            + ["--output", out.name, "--gil"],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
        if done.returncode != 0:
            raise RuntimeError(f"py-spy failed: {done.stderr.strip()[-500:]}")
        return Path(out.name).read_text()


def component(path: str) -> str:
    """Name the package (or module, or "templates") a source file belongs to.

    py-spy names files relative to their ``sys.path`` entry (``flask/app.py``,
    ``socket.py``, ``webapp/auth.py``); compiled templates by their file name.
    """
    if path.endswith(".html"):
        return "templates"
    path = path.split("site-packages/", 1)[-1]
    if "/lib/python3" in path:
        path = path.split("/lib/python3", 1)[1].split("/", 1)[-1]
    if "/webapp/" in path:
        path = "webapp/" + path.rsplit("/webapp/", 1)[1]
    head, _, rest = path.partition("/")
    if head == "webapp":
        return path
    return head.removesuffix(".py") if rest else path.removesuffix(".py")


def _scaffolding(name: str) -> bool:
    return name.startswith(_SCAFFOLDING)


def _frames(stack: str) -> list[tuple[str, str]]:
    frames = []
    for raw in stack.split(";"):
        match = _FRAME.match(raw)
        if match:
            frames.append((match["func"], match["file"]))
    return frames


def summarise(collapsed: str, top: int = 15) -> dict[str, Any]:
    """Return total samples, self time per component and top inclusive frames."""
    total = 0
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = _frames(stack)
        if not frames:
            continue
        total += count
        self_time[component(frames[-1][1])] += count
        seen = set()
        for func, path in frames:
            name = f"{component(path)}:{func}"
            if name not in seen and not _scaffolding(component(path)):
                seen.add(name)
                inclusive[name] += count

    def share(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"name": name, "samples": n, "percent": 100 * n / total}
            for name, n in counter.most_common(top)
        ]

    return {
        "samples": total,
        "self_by_component": share(self_time) if total else [],
        "inclusive": share(inclusive) if total else [],
    }
