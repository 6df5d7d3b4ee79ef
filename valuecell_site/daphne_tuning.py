"""TCP_NODELAY on every connection Daphne accepts; Daphne has no option for it.

With Nagle's algorithm on, once the loop is busy a stream's small SSE writes
wait for the ACK of the previous one (and the client delays its ACKs): issue
#12 measured Daphne's p99 at 200 streams 50 times uvicorn's (which sets the
option). Twisted's HTTP server sets it itself since 24.10 (twisted#12312), but
Twisted is whatever Daphne pulls in; this makes it hold for any version.
`install()` wraps Daphne's HTTP factory so that each accepted TCP transport
gets `setTcpNoDelay(True)` before its protocol sees it. `valuecell_site/asgi.py`
calls it: every Daphne entry point (the `daphne` CLI, `manage.py runserver`)
imports the application before it listens.
"""

from __future__ import annotations

import logging
from typing import Any

from daphne.http_protocol import HTTPFactory

log = logging.getLogger(__name__)

_MARK = "_valuecell_nodelay"


def set_nodelay(transport: Any) -> None:
    """TCP_NODELAY on a Twisted transport; a UNIX socket (no such option) is left alone."""
    setter = getattr(transport, "setTcpNoDelay", None)
    if setter is None:
        return
    try:
        setter(True)
    except OSError:
        log.debug("could not set TCP_NODELAY on %r", transport, exc_info=True)


def install() -> None:
    """Wrap `HTTPFactory.buildProtocol` once per process (idempotent)."""
    build = HTTPFactory.buildProtocol
    if getattr(build, _MARK, False):
        return

    def buildProtocol(self: HTTPFactory, addr: Any) -> Any:
        protocol = build(self, addr)
        if protocol is not None:
            make_connection = protocol.makeConnection

            def makeConnection(transport: Any) -> None:
                set_nodelay(transport)
                make_connection(transport)

            protocol.makeConnection = makeConnection
        return protocol

    setattr(buildProtocol, _MARK, True)
    HTTPFactory.buildProtocol = buildProtocol
