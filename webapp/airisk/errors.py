"""The typed failures of an AIRisk call.

Each exception carries the HTTP status the dashboard answers with and a title
and message that are safe to show a user: no token, no upstream body, no
traceback. The error handlers in :mod:`webapp.errors` map them to pages.
"""

from __future__ import annotations


class AIRiskError(Exception):
    """Base of every failure talking to AIRisk."""

    status = 502
    title = "AIRisk answered unexpectedly"
    message = "The AIRisk service gave an answer the dashboard could not use."
    #: Whether the failure was already logged where it happened.
    logged = False

    def __init__(self, detail: str | None = None) -> None:
        # ``detail`` is for logs only: it names the endpoint and what went
        # wrong, never a header or body, so it cannot carry the token.
        super().__init__(detail or self.title)
        self.detail = detail or self.title


class TokenRejected(AIRiskError):
    """AIRisk answered 401: the token is invalid, expired or revoked."""

    status = 401
    title = "Token rejected"
    message = "AIRisk no longer accepts this access token."


class Forbidden(AIRiskError):
    """AIRisk answered 403: the token is valid but may not do this."""

    status = 403
    title = "Not allowed for this token"
    message = (
        "AIRisk accepted the token but does not allow it to see this. "
        "Conversation history needs a user token; an application (generic) "
        "token can only call a few administrative endpoints."
    )


class NotFound(AIRiskError):
    """The conversation does not exist or this token cannot see it."""

    status = 404
    title = "Conversation not found"
    message = (
        "There is no conversation at this address, or it belongs to someone "
        "this token cannot see."
    )


class RefusedId(NotFound):
    """An id the id guard refused: AIRisk was not called, and it is logged."""

    #: The client logged it (once per id); the error page need not again.
    logged = True


class WrongBaseURL(AIRiskError):
    """AIRisk's API is not found at the configured address (a 404 on a list).

    ListAgents and GetConversations exist for every token, so a 404 from them
    means the path is wrong: AIRISK_BASE_URL, or a tenant that answers at
    another address. Not a NotFound: no conversation is missing.
    """

    status = 502
    title = "AIRisk is not at the configured address"
    message = (
        "AIRisk answered \u201cnot found\u201d for its conversation API at the "
        "address the dashboard is configured with. The AIRISK_BASE_URL setting "
        "is probably wrong: it should be the tenant's address (such as "
        "https://tenant.aicrisk.com, without /api). Ask whoever runs the "
        "dashboard to check it."
    )


class RateLimited(AIRiskError):
    """AIRisk answered 429: too many requests."""

    status = 429
    title = "AIRisk is rate limiting"
    message = "AIRisk asked the dashboard to slow down. Wait a moment, then reload."

    def __init__(self, detail: str | None = None, retry_after: int | None = None):
        super().__init__(detail)
        self.retry_after = retry_after


class Unavailable(AIRiskError):
    """AIRisk could not be reached, or said it is unavailable."""

    status = 503
    title = "AIRisk is unavailable"
    message = (
        "The dashboard could not reach the AIRisk service. Your token is kept; "
        "try again in a moment."
    )


class UpstreamTimeout(Unavailable):
    """AIRisk did not answer in time."""

    status = 504
    title = "AIRisk took too long"
    message = (
        "The AIRisk service did not answer in time. Your token is kept; "
        "try again in a moment."
    )


class BadResponse(Unavailable):
    """AIRisk answered with an error or with something that is not the API."""

    status = 502
    title = "AIRisk answered unexpectedly"
    message = (
        "The AIRisk service sent an answer the dashboard could not use "
        "(an error, or data in an unexpected shape). Your token is kept."
    )


class OAuthFailed(AIRiskError):
    """AIRisk did not issue a token through OAuth2 (the base of its failures).

    Not a :class:`TokenRejected`: a refused sign-in step says nothing about
    the person's session, so it must not sign them out.
    """

    status = 502
    title = "AIRisk did not issue an access token"
    message = (
        "The dashboard asked AIRisk for an access token and did not get one. "
        "Try again; if it keeps happening, an administrator can find the "
        "reason in the dashboard's log."
    )


class ClientRejected(OAuthFailed):
    """AIRisk refused the dashboard's API client (id, secret or redirect URI)."""

    title = "AIRisk refused the dashboard's API client"
    message = (
        "AIRisk does not accept the dashboard's client id, secret or redirect "
        "URI. An administrator must check AIRISK_CLIENT_ID, AIRISK_CLIENT_SECRET "
        "and AIRISK_REDIRECT_URI against the API client registered in AIRisk."
    )


class CodeRejected(OAuthFailed):
    """AIRisk refused the authorization code: spent, expired or not ours."""

    title = "AIRisk refused the sign-in code"
    message = (
        "The one-time code AIRisk issued was refused: it was already used, "
        "it expired, or it was issued for another request. Start again."
    )


class AuthorizationDenied(OAuthFailed):
    """AIRisk redirected back with an error instead of a code."""

    title = "AIRisk refused to authorise the dashboard"
    message = (
        "AIRisk answered the authorisation request with an error instead of "
        "a code. An administrator can find the reason in the dashboard's log."
    )


class StateMismatch(OAuthFailed):
    """The ``state`` of an OAuth2 answer is not the one this session sent."""

    status = 400
    title = "This sign-in answer is not for this session"
    message = (
        "The answer from AIRisk does not belong to this browser session: it "
        "was already used, it is too old, or it was started elsewhere. "
        "Start again from the dashboard."
    )
