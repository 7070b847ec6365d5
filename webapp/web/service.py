"""The AIRisk service as views use it: the app's service, the request's agents."""

from __future__ import annotations

from typing import cast

from flask import current_app, g

from ..airisk import Agent
from ..airisk.service import AIRiskService


def service() -> AIRiskService:
    """Return the app's (cached) AIRisk service."""
    return cast(AIRiskService, current_app.extensions["airisk"])


def request_agents(token: str) -> list[Agent]:
    """Return ``token``'s agents, read once per request.

    A page needs them for names and for the agent filter; the cache behind
    them may be Redis, so one read per request, not one per use.
    """
    if "airisk_agents" not in g:
        g.airisk_agents = service().agents(token)
    return cast(list[Agent], g.airisk_agents)


class AgentNames(dict[str, str]):
    """Agent id -> name; an id the token's agent list lacks is "Unknown agent".

    Templates write ``names[row.agent_id]``: a subscript, where a call of
    ``names.get(...)`` goes through Jinja's context machinery on every row.
    """

    def __missing__(self, key: str) -> str:
        return "Unknown agent"


def agent_names(token: str) -> AgentNames:
    """Return agent id -> name for ``token``'s agents."""
    return AgentNames((agent.id, agent.name) for agent in request_agents(token))
