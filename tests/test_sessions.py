"""The session store's own rules, directly: encryption at rest, key derivation,
JSON records (never pickle) and how long a record is kept."""

from __future__ import annotations

import os
import pickle
import secrets
import time
from datetime import timedelta
from pathlib import Path

import pytest

from webapp.sessions import CREATED, SEEN, TOKEN, FileSessions, TokenCipher, derive_key
from webapp.sessions.base import _dumps

SECRET = "sessions-secret-key-0123456789abcdef"
IDLE = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=8)


def store(directory: Path) -> FileSessions:
    return FileSessions(
        str(directory),
        idle=IDLE,
        absolute=ABSOLUTE,
        max_signed_in=10,
        max_per_client=5,
        name_key=derive_key(SECRET, "session client names"),
    )


# -- keys and encryption ---------------------------------------------------------


def test_derive_key_is_32_bytes_and_depends_on_secret_and_purpose() -> None:
    key = derive_key(SECRET, "a purpose")
    assert len(key) == 32
    assert derive_key(SECRET, "a purpose") == key
    assert derive_key(SECRET, "another purpose") != key
    assert derive_key(SECRET + "x", "a purpose") != key


def test_a_sealed_token_opens_with_its_key_and_hides_the_token() -> None:
    cipher = TokenCipher(SECRET)
    sealed = cipher.encrypt("alice-token-0123456789abcdef")
    assert "alice-token" not in sealed
    assert cipher.decrypt(sealed) == "alice-token-0123456789abcdef"


def test_another_secret_or_purpose_cannot_open_it() -> None:
    sealed = TokenCipher(SECRET).encrypt("tok")
    assert TokenCipher("another-secret-key-0123456789abcdef").decrypt(sealed) is None
    assert TokenCipher(SECRET, purpose="cache values").decrypt(sealed) is None


def test_a_fallback_key_still_opens_what_the_old_key_sealed() -> None:
    old = "old-secret-key-0123456789abcdef-old"
    sealed = TokenCipher(old).encrypt("tok")
    assert TokenCipher(SECRET, [old]).decrypt(sealed) == "tok"


@pytest.mark.parametrize("forged", ["", "not fernet", "gAAAAA" + "A" * 80, "\u00e9"])
def test_a_forged_value_is_none_not_an_error(forged: str) -> None:
    assert TokenCipher(SECRET).decrypt(forged) is None


def test_the_cipher_repr_shows_no_key() -> None:
    assert SECRET not in repr(TokenCipher(SECRET))
    assert "hidden" in repr(TokenCipher(SECRET))


# -- records: JSON, never pickle ---------------------------------------------------


def test_records_are_json_and_refuse_what_json_cannot_say() -> None:
    assert _dumps({TOKEN: "x", CREATED: 1}) == b'{"t":"x","c":1}'
    with pytest.raises(TypeError):
        _dumps({"data": object()})


class _Marker:
    """Unpickling this would create a file: proof that pickle ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


def test_a_pickled_record_is_never_unpickled(tmp_path: Path) -> None:
    sessions = store(tmp_path / "store")
    sid = secrets.token_urlsafe(32)
    marker = tmp_path / "pwned"
    record = os.path.join(str(tmp_path / "store"), "signed-in", sid)
    with open(record, "wb") as f:
        f.write(pickle.dumps(_Marker(str(marker))))
    assert sessions._read(sid) is None
    assert not marker.exists()


def test_a_written_record_reads_back_until_it_expires(tmp_path: Path) -> None:
    sessions = store(tmp_path / "store")
    sid = secrets.token_urlsafe(32)
    sessions._write_record(sid, {TOKEN: "sealed"}, time.time() + 60)
    assert sessions._read(sid) == {TOKEN: "sealed"}
    sessions._write_record(sid, {TOKEN: "sealed"}, time.time() - 1)
    assert sessions._read(sid) is None


# -- how long a record is kept ------------------------------------------------------


def test_a_fresh_record_lives_for_the_idle_timeout(tmp_path: Path) -> None:
    now = int(time.time())
    ttl = store(tmp_path)._record_ttl({CREATED: now, SEEN: now})
    assert IDLE.total_seconds() - 2 <= ttl <= IDLE.total_seconds()


def test_a_record_never_outlives_the_absolute_timeout(tmp_path: Path) -> None:
    created = int(time.time()) - int(ABSOLUTE.total_seconds()) + 100
    ttl = store(tmp_path)._record_ttl({CREATED: created})
    assert 90 <= ttl <= 100


def test_a_record_past_its_absolute_end_is_kept_one_second(tmp_path: Path) -> None:
    created = int(time.time()) - int(ABSOLUTE.total_seconds()) - 100
    assert store(tmp_path)._record_ttl({CREATED: created}) == 1
