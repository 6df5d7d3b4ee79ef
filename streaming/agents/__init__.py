"""Agents: async generators of `AgentResponse`s, registered by dotted path in settings."""
