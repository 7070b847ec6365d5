"""Run the demo OpenID Connect provider (``oidc/provider.js``) on loopback.

The provider is the npm package ``oidc-provider`` (OpenID Certified), run by
the machine's Node.js and installed from ``oidc/package-lock.json`` with
``npm ci`` (``make oidc-deps``). ``airisk-viewer demo --team`` and the team
tests start it through :class:`DemoIdentityProvider`; it prints its issuer on
one line once it listens on a free port.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

#: Where the provider's package.json, lockfile and script live.
OIDC_DIR = Path(__file__).resolve().parents[2] / "oidc"
#: The demo people's password (see oidc/provider.js).
PASSWORD = "demo-password"
#: Demo people by login: reviewers, members whose e-mails match demo AIRisk
#: users, a person without an AIRisk account, and an unverified e-mail.
REVIEWERS = ("rita", "sam")
MEMBERS = ("alice", "bob")
NO_AIRISK_ACCOUNT = "erin"
UNVERIFIED_EMAIL = "victor"
#: The SSO group that makes a demo person a reviewer.
REVIEWER_GROUP = "airisk-reviewers"

_START_TIMEOUT = 20.0


class ProviderUnavailable(RuntimeError):
    """Node.js or the provider's packages are missing, or it did not start."""


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise ProviderUnavailable(
            "Node.js is not installed: the demo identity provider needs node 20+ "
            "(scripts/system-deps.sh installs it)."
        )
    if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        raise ProviderUnavailable(
            f"The demo identity provider's packages are not installed: run "
            f"`make oidc-deps` (npm ci in {OIDC_DIR})."
        )
    return node


class DemoIdentityProvider:
    """Start ``oidc/provider.js`` as a child process; stop it on exit.

    ``clients`` are OpenID Connect clients in oidc-provider's metadata shape
    (``client_id``, ``client_secret``, ``redirect_uris``, ...). ``jwks`` (a
    private JWK set) replaces the provider's throw-away signing key, so a
    test can sign tokens the provider would sign; ``issuer`` is the public
    issuer URL when a proxy fronts the provider. The config file and the
    provider's log go to ``workdir`` (a temporary folder by default).
    """

    def __init__(
        self,
        clients: list[dict[str, Any]],
        *,
        workdir: Path | None = None,
        port: int = 0,
        jwks: dict[str, Any] | None = None,
        id_token_ttl: int | None = None,
        issuer: str | None = None,
    ) -> None:
        self.clients = clients
        self.workdir = workdir
        self.port = port
        self.jwks = jwks
        self.id_token_ttl = id_token_ttl
        self.public_issuer = issuer
        self.issuer = ""
        #: Where the provider really listens (differs from the issuer behind
        #: a proxy).
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> DemoIdentityProvider:
        """Start the provider and wait until it prints its issuer.

        :raises ProviderUnavailable: if it cannot run or does not start.
        """
        node = _node()
        if self.workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="airisk-oidc-")
            self.workdir = Path(self._tmp.name)
        config: dict[str, Any] = {"port": self.port, "clients": self.clients}
        if self.jwks is not None:
            config["jwks"] = self.jwks
        if self.id_token_ttl is not None:
            config["id_token_ttl"] = self.id_token_ttl
        if self.public_issuer is not None:
            config["issuer"] = self.public_issuer
        config_file = self.workdir / "oidc-config.json"
        config_file.touch(mode=0o600)
        config_file.write_text(json.dumps(config))
        log = (self.workdir / "oidc-provider.log").open("ab")
        env = {"PATH": os.environ.get("PATH", ""), "NODE_ENV": "development"}
        self._process = subprocess.Popen(
            [node, str(OIDC_DIR / "provider.js"), str(config_file)],
            cwd=OIDC_DIR,
            # The provider exits when this pipe closes, so it never outlives us.
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
        )
        log.close()
        self.issuer = self._read_issuer()
        return self

    def _read_issuer(self) -> str:
        process = self._process
        assert process is not None and process.stdout is not None
        deadline = time.monotonic() + _START_TIMEOUT
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([process.stdout], [], [], max(left, 0))
            chunk = os.read(process.stdout.fileno(), 4096) if ready else b""
            if not chunk:
                self.stop()
                raise ProviderUnavailable(
                    "The demo identity provider did not start; see "
                    f"{self.workdir}/oidc-provider.log"
                )
            line += chunk
        said = json.loads(line.decode("utf-8"))
        issuer, self.url = said.get("issuer"), said.get("listening", "")
        if not isinstance(issuer, str):
            raise ProviderUnavailable("The demo identity provider printed no issuer")
        return issuer

    def stop(self) -> None:
        """Stop the provider and wait for it to exit."""
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            for pipe in (process.stdin, process.stdout):
                if pipe is not None:
                    pipe.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> DemoIdentityProvider:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
