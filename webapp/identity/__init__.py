"""Who is acting: the person signed in, their roles, and whose history they see.

Token mode knows a person only by the token they pasted; team mode (SSO, see
issue 12) knows their SSO subject, e-mail, name and groups. Everything that
records or authorises an action (the access trail, review states, notes)
asks :func:`current_actor` and never looks at the session itself.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Roles a person can hold. A member sees their own AIRisk history; a reviewer
#: may view and review any AIRisk user's; an auditor may read the access trail.
MEMBER = "member"
REVIEWER = "reviewer"
AUDITOR = "auditor"


@dataclass(frozen=True, slots=True)
class Actor:
    """The person behind a request, as the trail records them."""

    #: Stable id: the SSO ``sub`` in team mode, ``token:<last four>`` in token mode.
    subject: str
    #: Verified e-mail from SSO (None in token mode).
    email: str | None
    #: Display name from SSO (None in token mode).
    name: str | None
    #: Some of MEMBER, REVIEWER, AUDITOR.
    roles: frozenset[str]
    #: The AIRisk user id whose history is on screen, when known.
    viewing: str | None = None

    def has(self, role: str) -> bool:
        """Return whether the person holds ``role``."""
        return role in self.roles
