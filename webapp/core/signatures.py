"""Ed25519 signatures over exports, and their verification.

Pure functions over bytes (no Flask, no files, no network), so the rules a
third party relies on are tested directly and read in one place.

The canonical form (``docs/exports.md`` explains it for someone holding only
the file): every signed export contains, once and after everything it
covers, a *signature line*::

    airisk-viewer-signature:v1;key=<id>;deployment=<pct>;at=<UTC time>;
    by=<pct>;kind=<kind>;sig=<128 lowercase hex digits>

(on one line; ``<pct>`` is percent-encoded UTF-8, so no field holds a space,
quote, ``;`` or ``<``). The signature is Ed25519 over the SHA-256 digest of
the file's bytes with those 128 hex digits taken out, and nothing else
changed: the fields before it, the text after it and every byte of the
export are covered, so a one-byte change anywhere, a cut-short file or a
signature moved to another file fails. The line that counts is the one that
ends the file, followed only by its kind's closing bytes (``WRAPPING``): a
conversation can quote other lines, and a signature moved into one fails.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

MARKER = "airisk-viewer-signature:v1;"
#: The signature line: its fields, then the signature's 128 hex digits.
SIGNATURE_LINE = re.compile(
    rb"airisk-viewer-signature:v1;(?P<fields>[!-~]*?);sig=(?P<sig>[0-9a-f]{128})"
)
#: What surrounds the signature line in each kind of file, so the file stays
#: valid Markdown, JSON, HTML or CSV: an HTML comment, the last JSON member,
#: the last CSV row, or a code span (in Markdown a comment would be raw HTML).
#: The JSON kinds leave their closing brace off the body.
WRAPPING: dict[str, tuple[bytes, bytes]] = {
    "conversation-md": (b"\nSignature: `", b"`\n"),
    "conversation-html": (b"\n<!-- ", b" -->\n"),
    "conversation-json": (b',\n  "signature": "', b'"\n}\n'),
    "insights-json": (b',\n  "signature": "', b'"\n}\n'),
    "list-json": (b',\n"signature": "', b'"}\n'),
    "list-csv": (b"", b"\r\n"),
    "insights-csv": (b"", b"\r\n"),
}
_FIELDS = ("key", "deployment", "at", "by", "kind")


class BadKey(ValueError):
    """A key's text is not an Ed25519 key this module reads."""


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def key_id(public: Ed25519PublicKey) -> str:
    """Return a key's id: the first 16 hex digits of SHA-256 of its raw bytes."""
    return hashlib.sha256(_raw(public)).hexdigest()[:16]


def public_hex(public: Ed25519PublicKey) -> str:
    """Return a public key as 64 hex digits (its raw 32 bytes)."""
    return _raw(public).hex()


def new_private_key_text() -> str:
    """Return a fresh private key as 64 hex digits (its raw 32-byte seed)."""
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    ).hex()


def parse_private_key(text: str) -> Ed25519PrivateKey:
    """Read a private key: 64 hex digits (raw seed) or an unencrypted PKCS#8 PEM.

    :raises BadKey: if ``text`` is neither.
    """
    text = text.strip()
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(text))
    try:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError):
        raise BadKey("not 64 hex digits or an Ed25519 PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BadKey("the PEM key is not an Ed25519 key")
    return key


def parse_public_key(text: str) -> Ed25519PublicKey:
    """Read a public key: 64 hex digits (raw bytes) or a PEM public key.

    :raises BadKey: if ``text`` is neither.
    """
    text = text.strip()
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(text))
    try:
        key = serialization.load_pem_public_key(text.encode())
    except (ValueError, TypeError):
        raise BadKey("not 64 hex digits or an Ed25519 PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise BadKey("the PEM key is not an Ed25519 key")
    return key


@dataclass(frozen=True)
class Keyring:
    """The key that signs now, and every public key that still verifies."""

    signing: Ed25519PrivateKey
    #: Public keys of earlier signing keys (rotation keeps them verifiable).
    previous: tuple[Ed25519PublicKey, ...] = ()

    @property
    def current_id(self) -> str:
        """Return the id of the key that signs now."""
        return key_id(self.signing.public_key())

    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        """Return key id -> public key, the current key first."""
        keys = [self.signing.public_key(), *self.previous]
        return {key_id(key): key for key in keys}

    def document(self, deployment: str) -> dict[str, Any]:
        """Return the public keys as the JSON document served to verifiers."""
        current = self.current_id
        return {
            "format": "airisk-viewer-keys/1",
            "deployment": deployment,
            "keys": [
                {
                    "id": kid,
                    "algorithm": "Ed25519",
                    "publicKey": public_hex(key),
                    "status": "current" if kid == current else "previous",
                }
                for kid, key in self.public_keys().items()
            ],
        }


def parse_keys(text: str) -> dict[str, Ed25519PublicKey]:
    """Read public keys: a keys document (JSON), or one key (hex or PEM).

    :raises BadKey: if ``text`` holds no readable key.
    """
    try:
        doc = json.loads(text)
    except ValueError:
        key = parse_public_key(text)
        return {key_id(key): key}
    try:
        keys = [parse_public_key(str(entry["publicKey"])) for entry in doc["keys"]]
    except (KeyError, TypeError):
        raise BadKey("the JSON has no keys[].publicKey") from None
    # The id is recomputed from the key: a document cannot rename a key.
    return {key_id(key): key for key in keys}


@dataclass(frozen=True)
class Stamp:
    """What a signature line says about an export (all of it is signed)."""

    key: str
    deployment: str
    at: str
    by: str
    kind: str

    def fields(self) -> bytes:
        """Return the line's fields, percent-encoded, as they appear in the file."""
        values = [quote(getattr(self, name), safe="") for name in _FIELDS]
        return ";".join(
            f"{n}={v}" for n, v in zip(_FIELDS, values, strict=True)
        ).encode()


class Signer:
    """Sign an export as it is written, chunk by chunk (exports stream)."""

    def __init__(self, key: Ed25519PrivateKey, stamp: Stamp) -> None:
        self.key = key
        self.stamp = stamp
        self._hash = hashlib.sha256()
        #: SHA-256 (hex) of the signed bytes, once :meth:`close` ran.
        self.digest = ""

    def feed(self, chunk: bytes) -> bytes:
        """Add ``chunk`` to what is signed and return it unchanged."""
        self._hash.update(chunk)
        return chunk

    def close(self, before: bytes, after: bytes) -> bytes:
        """Return the signature line wrapped in ``before``/``after``, to write last."""
        head = before + MARKER.encode() + self.stamp.fields() + b";sig="
        self._hash.update(head + after)
        digest = self._hash.digest()
        self.digest = digest.hex()
        return head + self.key.sign(digest).hex().encode() + after


def sign(
    body: bytes, key: Ed25519PrivateKey, stamp: Stamp, before: bytes, after: bytes
) -> tuple[bytes, str]:
    """Return ``body`` with its signature line, and the digest the key signed."""
    signer = Signer(key, stamp)
    signed = signer.feed(body) + signer.close(before, after)
    return signed, signer.digest


def sign_stream(
    chunks: Iterable[bytes], signer: Signer, before: bytes, after: bytes
) -> Iterator[bytes]:
    """Yield ``chunks`` and then their signature line."""
    for chunk in chunks:
        yield signer.feed(chunk)
    yield signer.close(before, after)


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one file: valid, or exactly why not."""

    valid: bool
    reason: str
    stamp: Stamp | None = None

    def summary(self) -> str:
        """Return one sentence for a person: what was signed by whom, or why not."""
        if self.valid and self.stamp:
            s = self.stamp
            return (
                f"Valid: signed by {s.deployment} at {s.at} (key {s.key}), "
                f"exported by {s.by}; {s.kind} export, unchanged since."
            )
        return f"Not valid: {self.reason}"


def verify(data: bytes, keys: Mapping[str, Ed25519PublicKey]) -> Verdict:
    """Check the signature line of an export against ``keys`` (id -> key)."""
    # Only the last marker can start the line that ends the file (fields are
    # percent-encoded, so hold no marker): one match from there keeps the work
    # linear, where searching every marker of a hostile upload was quadratic.
    start = data.rfind(MARKER.encode())
    match = SIGNATURE_LINE.match(data, start) if start >= 0 else None
    if match is None:
        return Verdict(
            False,
            "the file holds no airisk-viewer signature line (it was not exported "
            "by the dashboard, was cut short before its end, or the line was edited).",
        )
    stamp = _stamp(match["fields"])
    if stamp is None or stamp.kind not in WRAPPING:
        return Verdict(False, "the signature line's fields are malformed.")
    # The line must close the file: a chat message can quote a signature line
    # with made-up fields, and moving the real hex digits into it would leave
    # the signed bytes unchanged while the verdict named the quoted fields.
    if data[match.end("sig") :] != WRAPPING[stamp.kind][1]:
        return Verdict(
            False,
            "the signature line is not where the dashboard writes it (at the "
            "very end of the file): bytes were added after it or it was moved.",
            stamp,
        )
    key = keys.get(stamp.key)
    if key is None:
        known = ", ".join(sorted(keys)) or "none"
        return Verdict(
            False,
            f"it was signed with key {stamp.key}, which is not among the keys "
            f"checked ({known}): a different deployment, or a key not published.",
            stamp,
        )
    signed = data[: match.start("sig")] + data[match.end("sig") :]
    try:
        key.verify(
            bytes.fromhex(match["sig"].decode()), hashlib.sha256(signed).digest()
        )
    except InvalidSignature:
        return Verdict(
            False,
            "the signature does not match the file's bytes: the file was changed "
            "or cut short after it was exported.",
            stamp,
        )
    return Verdict(True, "", stamp)


def _stamp(raw: bytes) -> Stamp | None:
    values: dict[str, str] = {}
    for part in raw.decode("ascii").split(";"):
        name, sep, value = part.partition("=")
        if not sep or name not in _FIELDS or name in values:
            return None
        try:
            values[name] = unquote(value, errors="strict")
        except UnicodeDecodeError:
            return None
    if set(values) != set(_FIELDS):
        return None
    return Stamp(**values)
