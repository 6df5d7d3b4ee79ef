"""Agents by name, from `settings.VALUECELL_AGENTS` (name -> dotted path)."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from streaming.agents.base import Agent


class UnknownAgent(LookupError):
    pass


@cache
def _load(path: str) -> Agent:
    return import_string(path)()


def get_agent(name: str) -> Agent:
    path = settings.VALUECELL_AGENTS.get(name)
    if path is None:
        raise UnknownAgent(name)
    return _load(path)


def list_agents() -> list[dict[str, str]]:
    agents = []
    for name in settings.VALUECELL_AGENTS:
        agent = get_agent(name)
        agents.append({"name": name, "description": agent.description})
    return agents
