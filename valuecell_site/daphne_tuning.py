"""Daphne's connections: TCP_NODELAY, and writes sent at once; Daphne has no option for either.

With Nagle's algorithm on, once the loop is busy a stream's small SSE writes
wait for the ACK of the previous one (and the client delays its ACKs): issue
#12 measured Daphne's p99 at 200 streams 50 times uvicorn's (which sets the
option). Twisted's HTTP server sets it itself since 24.10 (twisted#12312), but
Twisted is whatever Daphne pulls in; this makes it hold for any version.

Twisted also never sends from `write()`: it buffers the bytes, registers the
socket with the loop (an epoll_ctl), sends on the loop's next pass and
unregisters it (another one). Every SSE write of every stream paid that pass
and those calls; `write_through` sends at once when nothing is waiting, as
asyncio's own transports (and so uvicorn) do, and leaves Twisted's buffering
to what the socket did not take.

Twisted reads every request body's `Content-Type` with the `email` package
(about 0.12 ms a POST, a tenth of a stream's HTTP parsing) only to learn
whether it is a form; `fast_content_type` answers the plain `type/subtype`
cases itself and hands anything else to Twisted's own parser.

`install()` wraps Daphne's HTTP factory so that each accepted TCP transport
gets both before its protocol sees it, and installs the Content-Type parser. `valuecell_site/asgi.py` calls it:
every Daphne entry point (the `daphne` CLI, `manage.py runserver`) imports the
application before it listens.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from daphne.http_protocol import HTTPFactory
from twisted.web import http as twisted_http

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


def write_through(transport: Any) -> None:
    """Make a Twisted TCP transport send at once when nothing is buffered."""
    if not hasattr(transport, "socket") or not hasattr(transport, "dataBuffer"):
        return  # not a plain TCP connection (a test transport, a UNIX socket's is fine too)
    buffered_write = transport.write

    def write(data: bytes) -> None:
        if (
            data
            and transport.connected
            and not transport.disconnecting
            and not transport._writeDisconnected
            and not getattr(transport, "TLS", False)  # TLS bytes must go through the TLS layer
            and transport.offset >= len(transport.dataBuffer)
            and not transport._tempDataLen
        ):
            try:
                sent = transport.socket.send(data)
            except OSError:
                sent = 0  # would block, or the connection is gone: Twisted's own path finds out
            if sent >= len(data):
                return
            data = data[sent:]
        buffered_write(data)

    def writeSequence(iovec: Any) -> None:
        write(b"".join(iovec))

    transport.write = write
    transport.writeSequence = writeSequence


_MEDIA_TYPE = re.compile(rb"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+")
_parse_content_type = twisted_http._parseContentType


def fast_content_type(line: bytes) -> bytes:
    """What Twisted's `_parseContentType` returns (the lowercased media type), for a
    plain `type/subtype` optionally followed by parameters; anything else is its."""
    media_type = line.split(b";", 1)[0].strip(b" \t")
    if _MEDIA_TYPE.fullmatch(media_type):
        return media_type.lower()
    return _parse_content_type(line)


def install() -> None:
    """Wrap `HTTPFactory.buildProtocol` once per process (idempotent)."""
    twisted_http._parseContentType = fast_content_type
    build = HTTPFactory.buildProtocol
    if getattr(build, _MARK, False):
        return

    def buildProtocol(self: HTTPFactory, addr: Any) -> Any:
        protocol = build(self, addr)
        if protocol is not None:
            make_connection = protocol.makeConnection

            def makeConnection(transport: Any) -> None:
                set_nodelay(transport)
                write_through(transport)
                make_connection(transport)

            protocol.makeConnection = makeConnection
        return protocol

    setattr(buildProtocol, _MARK, True)
    HTTPFactory.buildProtocol = buildProtocol
