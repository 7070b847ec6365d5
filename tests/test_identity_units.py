"""Team mode's small parts: the token-capped cache, roles, settings."""

from __future__ import annotations

import time
from typing import Any

import pytest

from webapp.airisk.cache import TTLCache
from webapp.config import ConfigError, load, validate
from webapp.identity import MEMBER, REVIEWER
from webapp.identity.cache import TokenCappedCache
from webapp.identity.state import Minted, TeamState, roles_for

TEAM = {
    "AUTH_MODE": "team",
    "OIDC_ISSUER": "https://sso.example.com/realms/acme",
    "OIDC_CLIENT_ID": "dashboard",
    "OIDC_CLIENT_SECRET": "s" * 32,
    "REVIEWER_GROUPS": ["airisk-reviewers"],
    "AIRISK_CLIENT_ID": "api-client",
    "AIRISK_CLIENT_SECRET": "t" * 32,
    "AIRISK_REDIRECT_URI": "https://reviews.example.com/airisk/callback",
}


def check(**overrides: Any) -> None:
    validate(load({}, {**TEAM, **overrides}), allow_generated_secret=True)


def test_a_complete_team_configuration_is_accepted() -> None:
    check()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"AUTH_MODE": "sso"}, "AUTH_MODE"),
        ({"OIDC_ISSUER": None}, "needs OIDC_ISSUER"),
        ({"AIRISK_CLIENT_SECRET": ""}, "needs AIRISK_CLIENT_SECRET"),
        ({"REVIEWER_GROUPS": None}, "REVIEWER_GROUPS"),
        ({"OIDC_SCOPES": "email profile"}, "openid"),
        ({"OIDC_ISSUER": "http://sso.example.com"}, "https"),
        ({"AIRISK_REDIRECT_URI": "/airisk/callback"}, "absolute"),
        ({"AIRISK_OAUTH2_FLOW": "popup"}, "AIRISK_OAUTH2_FLOW"),
    ],
)
def test_a_broken_team_configuration_names_the_setting(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        check(**overrides)


def test_token_mode_needs_none_of_it() -> None:
    validate(load({}, {}), allow_generated_secret=True)


def test_reviewer_groups_match_case_insensitively() -> None:
    assert roles_for(["Staff", "AIRISK-Reviewers"], ["airisk-reviewers"]) == [
        MEMBER,
        REVIEWER,
    ]
    assert roles_for(["staff"], ["airisk-reviewers"]) == [MEMBER]
    assert roles_for([], ["airisk-reviewers"]) == [MEMBER]


def test_a_cached_entry_never_outlives_its_token() -> None:
    inner: TTLCache[Any] = TTLCache(maxsize=16)
    cache = TokenCappedCache(inner)
    soon, later, unknown = "tok-soon", "tok-later", "tok-unknown"
    cache.limit(soon, time.time() + 5)
    cache.limit(later, time.time() + 10_000)
    for token in (soon, later, unknown):
        cache.set(f"{cache.token_key(token)}:page", token, ttl=300)
    expiry = {k: v[0] for k, v in inner._items.items()}
    ttl = {
        token: expiry[f"{inner.token_key(token)}:page"] - time.monotonic()
        for token in (soon, later, unknown)
    }
    assert ttl[soon] <= 5
    assert 250 < ttl[later] <= 300 and 250 < ttl[unknown] <= 300


def test_an_expired_token_caches_nothing() -> None:
    inner: TTLCache[Any] = TTLCache(maxsize=16)
    cache = TokenCappedCache(inner)
    cache.limit("gone", time.time() - 1)
    key = f"{cache.token_key('gone')}:page"
    cache.set(key, "x", ttl=300)
    assert cache.get(key) is None


def test_the_team_record_hides_tokens_and_survives_a_round_trip() -> None:
    state = TeamState("sub", "a@example.com", True, "A", [MEMBER])
    state.tokens["u1"] = Minted("tok-SECRET-1234", 123.0)
    assert "tok-SECRET-1234" not in repr(state)
    again = TeamState.from_json(state.to_json())
    assert again == state
    for broken in ("", "[]", '{"subject": 1}', "not json"):
        assert TeamState.from_json(broken) is None
