"""Agent event streaming: the event vocabulary, the response factory and router,
the orchestrator that runs agents in the background, and the transports."""
