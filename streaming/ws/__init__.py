"""The WebSocket door (`ws/agents/`): handshake auth and origin checks, the
protocol's messages, a thin consumer, per-socket deliveries and a bounded outbox.
"""
