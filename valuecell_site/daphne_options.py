"""Daphne's WebSocket server closes a socket whose frame is too large with 1009.

Daphne refuses an incoming WebSocket frame or message over
`--websocket-max-frame-size` / `--websocket-max-message-size` (1 MiB each) as
soon as its header announces the size, but its factory keeps autobahn's
`failByDrop` default: the TCP connection is cut with no close frame, and the
client cannot tell a refused frame from a network failure. With `failByDrop`
off, autobahn sends the close code 1009 (message too big) that
docs/protocol.md promises. An application cannot send 1009 itself (autobahn
allows only 1000 and 3000-4999), and Daphne has no option for it: its
factory's defaults are set here, before Daphne's command line builds it
(it imports the application first).
"""

from __future__ import annotations


def close_oversized_frames_with_1009() -> None:
    try:
        from daphne.ws_protocol import WebSocketFactory
    except ImportError:  # another ASGI server: nothing to configure
        return
    if getattr(WebSocketFactory, "_valuecell_fail_by_close", False):
        return
    reset = WebSocketFactory.resetProtocolOptions

    def reset_protocol_options(self) -> None:
        reset(self)
        self.failByDrop = False  # fail a connection with a close frame (1009 for a frame too big)

    WebSocketFactory.resetProtocolOptions = reset_protocol_options
    WebSocketFactory._valuecell_fail_by_close = True
