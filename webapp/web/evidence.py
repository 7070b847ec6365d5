"""Signed exports on the web: the signing key, the public keys, ``/verify``.

The signing and checking rules are in :mod:`webapp.core.signatures` (no Flask);
this module loads the key, signs responses, serves the public keys at a
stable address and lets anyone check a file, signed in or not.

**The export hook** (for the access trail): every signed export calls the
function set with :func:`set_export_hook` once, with the SHA-256 the key
signed (hex; it names the file), the export kind, who exported it and what
(a conversation id or the list/insights query). The default does nothing.
For a streamed export the call comes when the last byte has been written.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    jsonify,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired

from ..config import ConfigError
from ..core import signatures
from ..core.signatures import Ed25519PrivateKey, Ed25519PublicKey
from ..identity.state import load_state
from .auth import team_mode, token_hint

log = logging.getLogger(__name__)

bp = Blueprint("evidence", __name__)

#: ``hook(digest, kind, who, target)``, called once per signed export.
ExportHook = Callable[[str, str, str, str], None]

_HOOK = "evidence.export_hook"
_KEYRING = "evidence.keyring"
KEYS_PATH = "/.well-known/airisk-viewer-keys.json"


def _no_hook(digest: str, kind: str, who: str, target: str) -> None:
    """Record nothing: the default until the access trail sets its own."""


def set_export_hook(app: Flask, hook: ExportHook) -> None:
    """Make ``hook`` the function every signed export of ``app`` calls."""
    app.extensions[_HOOK] = hook


def init_app(app: Flask) -> None:
    """Check the evidence settings, register the pages and the default hook.

    :raises ConfigError: if a configured key cannot be read.
    """
    previous, key = configured_keys(app.config)
    app.extensions["evidence.previous"] = previous
    if key is not None:
        app.extensions[_KEYRING] = signatures.Keyring(key, previous)
    app.extensions.setdefault(_HOOK, _no_hook)
    app.register_blueprint(bp)


def configured_keys(
    settings: Mapping[str, Any],
) -> tuple[tuple[Ed25519PublicKey, ...], Ed25519PrivateKey | None]:
    """Return the previous public keys and the signing key the settings name.

    :raises ConfigError: if a configured key cannot be read.
    """
    previous = []
    for text in settings["EVIDENCE_PREVIOUS_KEYS"] or ():
        try:
            previous.append(signatures.parse_public_key(text))
        except signatures.BadKey as exc:
            raise ConfigError(f"EVIDENCE_PREVIOUS_KEYS: {exc}.") from None
    key = None
    if settings["EVIDENCE_SIGNING_KEY"]:
        try:
            key = signatures.parse_private_key(settings["EVIDENCE_SIGNING_KEY"])
        except signatures.BadKey as exc:
            raise ConfigError(f"EVIDENCE_SIGNING_KEY: {exc}.") from None
    return tuple(previous), key


def key_file(settings: Mapping[str, Any], instance_path: str) -> Path:
    """Return where a generated signing key is kept."""
    configured = settings["EVIDENCE_KEY_FILE"]
    return Path(configured) if configured else Path(instance_path) / "evidence-key"


def published_keys(
    settings: Mapping[str, Any], instance_path: str
) -> dict[str, Ed25519PublicKey]:
    """Return the public keys the settings name, never generating one.

    :raises ConfigError: if a configured key cannot be read.
    :raises OSError: if no key is configured and none was generated yet.
    """
    previous, key = configured_keys(settings)
    if key is None:
        key = _key_from_file(key_file(settings, instance_path), create=False)
    return signatures.Keyring(key, previous).public_keys()


def keyring(app: Flask | None = None) -> signatures.Keyring:
    """Return the keys of ``app``; generate the signing key once if none is set."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    ring = app.extensions.get(_KEYRING)
    if ring is None:
        key = _key_from_file(key_file(app.config, app.instance_path), create=True)
        ring = signatures.Keyring(key, app.extensions["evidence.previous"])
        app.extensions[_KEYRING] = ring
    return ring


def _key_from_file(path: Path, *, create: bool) -> signatures.Ed25519PrivateKey:
    if not path.exists() and create:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside, then linked into place: of two workers starting at
        # once, one key wins and both read it, never a half-written file.
        scratch = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(signatures.new_private_key_text() + "\n")
        try:
            os.link(scratch, path)
            log.warning(
                "Generated a new evidence signing key in %s. Keep this file (or "
                "set EVIDENCE_SIGNING_KEY): exports signed with it verify only "
                "while its public key is published.",
                path,
            )
        except FileExistsError:
            pass
        finally:
            scratch.unlink()
    return signatures.parse_private_key(path.read_text())


def deployment(app: Flask | None = None) -> str:
    """Return the name a signature gives this deployment."""
    config = (app or current_app).config
    if config["EVIDENCE_DEPLOYMENT"]:
        return str(config["EVIDENCE_DEPLOYMENT"])
    if config["PUBLIC_URL"]:
        return urlsplit(str(config["PUBLIC_URL"])).netloc
    return "airisk-viewer"


def exporter() -> str:
    """Return who is exporting, as signatures and headers name them.

    Token mode knows a person only by their token: its last four characters.
    Team mode names the SSO identity: name and e-mail, else the SSO subject.
    """
    if team_mode():
        state = load_state()
        if state is None:
            return "anonymous"
        named = " ".join(
            p for p in (state.name, f"<{state.email}>" if state.email else "") if p
        )
        return named or f"SSO subject {state.subject}"
    hint = token_hint()
    return f"token {hint}" if hint else "anonymous"


def now_iso() -> str:
    """Return the current UTC time as exports write it (seconds, +00:00)."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def public_url(endpoint: str, **values: Any) -> str:
    """Return an absolute address for an export, only if one is vouched for."""
    config = current_app.config
    path = url_for(endpoint, **values)
    if config["PUBLIC_URL"]:
        return str(config["PUBLIC_URL"]).rstrip("/") + path[len(request.script_root) :]
    if config["TRUSTED_PROXIES"] or config["TRUSTED_HOSTS"]:
        return url_for(endpoint, _external=True, **values)
    return path


def _signer(kind: str, at: str, who: str) -> signatures.Signer:
    ring = keyring()
    stamp = signatures.Stamp(ring.current_id, deployment(), at, who, kind)
    return signatures.Signer(ring.signing, stamp)


def signed(
    body: str,
    kind: str,
    target: str,
    *,
    mimetype: str,
    filename: str | None,
    at: str,
    who: str,
) -> Response:
    """Return ``body`` signed, as a download named ``filename`` (None: inline)."""
    before, after = signatures.WRAPPING[kind]
    signer = _signer(kind, at, who)
    data, digest = signatures.sign(
        body.encode("utf-8"), signer.key, signer.stamp, before, after
    )
    current_app.extensions[_HOOK](digest, kind, who, target)
    return Response(data, mimetype=mimetype, headers=_download(filename))


def _download(filename: str | None) -> dict[str, str]:
    if not filename:
        return {}
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


def signed_stream(
    chunks: Iterable[str],
    kind: str,
    target: str,
    *,
    mimetype: str,
    filename: str | None,
    at: str,
    who: str,
) -> Response:
    """Return ``chunks`` streamed and signed, then tell the export hook."""
    signer = _signer(kind, at, who)
    before, after = signatures.WRAPPING[kind]
    hook: ExportHook = current_app.extensions[_HOOK]

    def body() -> Iterator[bytes]:
        encoded = (chunk.encode("utf-8") for chunk in chunks)
        yield from signatures.sign_stream(encoded, signer, before, after)
        hook(signer.digest, kind, who, target)

    return Response(
        stream_with_context(body()), mimetype=mimetype, headers=_download(filename)
    )


# -- the public keys and the verify page ------------------------------------


@bp.get(KEYS_PATH)
def keys() -> Response:
    """Serve the public keys that verify this deployment's exports."""
    document = keyring().document(deployment())
    response = jsonify(document)
    # Anyone may fetch the public keys, from any page that checks a file.
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


class VerifyForm(FlaskForm):
    """Upload of one exported file to check."""

    file = FileField("Exported file", validators=[FileRequired()])


@bp.route("/verify", methods=["GET", "POST"])
def verify() -> str:
    """Check an uploaded export's signature; nothing uploaded is kept."""
    form = VerifyForm()
    verdict = None
    if form.validate_on_submit():
        data = form.file.data.read()
        verdict = signatures.verify(data, keyring().public_keys())
    return render_template(
        "evidence/verify.html",
        form=form,
        verdict=verdict,
        keys_url=url_for("evidence.keys"),
        max_mb=current_app.config["EVIDENCE_VERIFY_MAX_BYTES"] // (1024 * 1024),
    )
