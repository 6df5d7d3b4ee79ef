"""Origin checking for WebSocket handshakes: browsers must come from an allowed host.

Browsers always send `Origin` on a WebSocket handshake, so Channels'
`AllowedHostsOriginValidator` guards cookie-authenticated sockets against
cross-site hijacking. Programs send none and cannot be such victims, so a
handshake without `Origin` passes (it still has to authenticate).
"""

from __future__ import annotations

from channels.security.websocket import AllowedHostsOriginValidator


class BrowserOriginValidator:
    def __init__(self, inner) -> None:
        self.inner = inner
        self.validated = AllowedHostsOriginValidator(inner)

    async def __call__(self, scope, receive, send):
        if any(name.lower() == b"origin" for name, _ in scope.get("headers", ())):
            return await self.validated(scope, receive, send)
        return await self.inner(scope, receive, send)
