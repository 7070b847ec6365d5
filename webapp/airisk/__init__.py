"""The service layer: the one place that talks to the AIRisk API."""

from .client import AIRiskClient, BearerAuth, ClientSettings, valid_id
from .errors import (
    AIRiskError,
    BadResponse,
    Forbidden,
    NotFound,
    RateLimited,
    TokenRejected,
    Unavailable,
    UpstreamTimeout,
    WrongBaseURL,
)
from .models import Agent, Citation, Conversation, ConversationSummary, Message

__all__ = [
    "AIRiskClient",
    "AIRiskError",
    "Agent",
    "BadResponse",
    "BearerAuth",
    "Citation",
    "ClientSettings",
    "Conversation",
    "ConversationSummary",
    "Forbidden",
    "Message",
    "NotFound",
    "RateLimited",
    "TokenRejected",
    "Unavailable",
    "UpstreamTimeout",
    "WrongBaseURL",
    "valid_id",
]
