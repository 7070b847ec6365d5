"""What a team-mode session holds, sealed in the server-side session.

A team session keeps no pasted token: it keeps who signed in (from the SSO ID
token), their roles, the AIRisk user their verified e-mail matched, and the
AIRisk tokens minted for this session with their expirations. The whole
record is JSON encrypted with the session token cipher (the same Fernet key
that seals a pasted token in token mode) and written to the session store at
once, as a sign-in or an idle-timeout touch is: never at the end of a request.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import cast

from flask import current_app, g, session
from flask_session.base import ServerSideSession

from ..sessions import TOKEN, SafeSessions, TokenCipher
from ..sessions.lifetime import session_secret
from . import AUDITOR, MEMBER, REVIEWER, Actor

#: The key of the generic (application) token in :attr:`TeamState.tokens`.
GENERIC = ""


@dataclass
class Minted:
    """One AIRisk token minted for this session."""

    token: str = field(repr=False)
    expires: float
    #: When the dashboard received it (0: a record from before this field).
    at: float = 0.0


@dataclass
class Pending:
    """A browser-flow authorize request waiting for its callback."""

    user: str  # AIRisk user id, or GENERIC
    next: str
    expires: float


@dataclass
class TeamState:
    """The signed-in person and the AIRisk tokens minted for their session."""

    subject: str
    email: str
    email_verified: bool
    name: str
    roles: list[str]
    #: The AIRisk user whose e-mail matched (None: not matched, or not yet).
    own_user: str | None = None
    #: Whether the e-mail was matched against ListUsers yet.
    matched: bool = False
    #: How many AIRisk users had that e-mail (more than one matches no one).
    matches: int = 0
    #: The AIRisk user a reviewer last viewed.
    viewing: str | None = None
    #: AIRisk user id (GENERIC for the application token) -> token.
    tokens: dict[str, Minted] = field(default_factory=dict)
    #: AIRisk user id -> when a token was last re-minted after a 401.
    reminted_after_401: dict[str, float] = field(default_factory=dict)
    #: Browser flow: state -> the authorize request it belongs to.
    pending: dict[str, Pending] = field(default_factory=dict)

    @property
    def is_reviewer(self) -> bool:
        """Return whether the person may view every AIRisk user's history."""
        return REVIEWER in self.roles

    def actor(self, viewing: str | None) -> Actor:
        """Return the person as the frozen :class:`Actor` record."""
        return Actor(
            subject=self.subject,
            email=self.email,
            name=self.name,
            roles=frozenset(self.roles),
            viewing=viewing,
        )

    def to_json(self) -> str:
        """Serialise for sealing."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> TeamState | None:
        """Parse a sealed record; None for anything that is not one."""
        try:
            raw = json.loads(text)
            raw["tokens"] = {k: Minted(**v) for k, v in raw["tokens"].items()}
            raw["pending"] = {k: Pending(**v) for k, v in raw["pending"].items()}
            return cls(**raw)
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


def roles_for(
    groups: list[str],
    reviewer_groups: list[str],
    auditor_groups: list[str] | None = None,
) -> list[str]:
    """Return the roles of a person in ``groups``."""
    held = {group.casefold() for group in groups}
    roles = [MEMBER]
    if held & {group.casefold() for group in reviewer_groups}:
        roles.append(REVIEWER)
    if held & {group.casefold() for group in auditor_groups or []}:
        roles.append(AUDITOR)
    return roles


def _cipher() -> TokenCipher:
    return cast(TokenCipher, current_app.extensions["airisk_cipher"])


def load_state() -> TeamState | None:
    """Return the team state of a signed-in session (once per request)."""
    if "team_state" in g:
        return cast("TeamState | None", g.team_state)
    secret = session_secret()
    state = TeamState.from_json(secret) if secret else None
    g.team_state = state
    return state


def seal(state: TeamState) -> str:
    """Return ``state`` encrypted for the session."""
    return _cipher().encrypt(state.to_json())


def save_state(state: TeamState) -> None:
    """Write ``state`` to the session store now (not at the end of the request)."""
    session[TOKEN] = seal(state)
    store = cast(SafeSessions, current_app.session_interface)
    store.touch(cast(ServerSideSession, session))
    g.team_state = state


def now() -> float:
    """Return the current time in seconds (one place, for the token clock)."""
    return time.time()


def token_from(state: TeamState, user: str, margin: float) -> str | None:
    """Return the session's token for ``user`` unless it is about to expire."""
    minted = state.tokens.get(user)
    if minted is None or minted.expires - margin <= now():
        return None
    return minted.token


def all_tokens(secret: str) -> list[str]:
    """Return every token minted for a sealed team record (for sign-out)."""
    state = TeamState.from_json(secret)
    return [m.token for m in state.tokens.values()] if state else []
