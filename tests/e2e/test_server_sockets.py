"""The sockets of the server the project ships: every accepted connection has
TCP_NODELAY (Daphne has no option for it; `valuecell_site.daphne_tuning` sets it
whatever the Twisted version), and the listening socket's backlog is 1024 (the
endpoint string of `make run`, docs/deploy.md and tests/live.py).

The accepted socket is looked at on the server's side: the test borrows a
duplicate of Daphne's file descriptor (pidfd_getfd, Linux 5.6+) and reads the
option from it.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from daphne.http_protocol import HTTPFactory
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from tests.conftest import IN_CI
from valuecell_site import daphne_tuning

SYS_PIDFD_OPEN, SYS_PIDFD_GETFD = 434, 438  # x86_64 and aarch64 alike
_libc = ctypes.CDLL(None, use_errno=True)


def _unavailable(why: str) -> None:
    if IN_CI:
        pytest.fail(f"cannot look at the server's sockets under CI: {why}", pytrace=False)
    pytest.skip(why)


@contextmanager
def server_socket_for(pid: int, client: socket.socket) -> Iterator[socket.socket | None]:
    """A duplicate of the server's end of `client`'s connection (None if not found)."""
    pidfd = _libc.syscall(SYS_PIDFD_OPEN, pid, 0)
    if pidfd < 0:
        _unavailable(f"pidfd_open: {os.strerror(ctypes.get_errno())}")
    found = None
    try:
        for name in os.listdir(f"/proc/{pid}/fd"):
            try:
                if not os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:"):
                    continue
            except OSError:
                continue
            fd = _libc.syscall(SYS_PIDFD_GETFD, pidfd, int(name), 0)
            if fd < 0:
                _unavailable(f"pidfd_getfd: {os.strerror(ctypes.get_errno())}")
            sock = socket.socket(fileno=fd)
            try:
                peer = sock.getpeername() if sock.type == socket.SOCK_STREAM else None
            except OSError:
                peer = None
            if found is None and peer == client.getsockname():
                found = sock
            else:
                sock.close()  # our duplicate only: the server's descriptor stays open
        yield found
    finally:
        if found is not None:
            found.close()
        os.close(pidfd)


def _healthz(client: socket.socket, port: int) -> None:
    """One request on a kept-alive connection: once answered, the server has accepted it."""
    client.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    received = b""
    deadline = time.monotonic() + 30
    while b'"ok"' not in received and time.monotonic() < deadline:
        received += client.recv(4096)
    assert b"200 OK" in received


def test_every_accepted_connection_has_tcp_nodelay(daphne_server):
    assert daphne_server.process is not None
    for _ in range(3):  # not only the first connection
        with socket.create_connection(("127.0.0.1", daphne_server.port), timeout=30) as client:
            _healthz(client, daphne_server.port)
            with server_socket_for(daphne_server.process.pid, client) as server_side:
                assert server_side is not None, "the server's end of the connection was not found"
                assert server_side.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_the_server_listens_with_a_backlog_of_1024(daphne_server):
    if shutil.which("ss") is None:
        _unavailable("`ss` (iproute2) is not installed")
    lines = subprocess.run(
        ["ss", "-ltnH", f"sport = :{daphne_server.port}"], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    # For a listening socket, ss shows the backlog as Send-Q: State Recv-Q Send-Q Local Peer.
    backlogs = {int(line.split()[2]) for line in lines if line.strip()}
    assert backlogs == {1024}


class RecordingTransport(StringTransport):
    """A transport that is not an `ITCPTransport`, so Twisted's HTTPChannel (which sets
    TCP_NODELAY itself since Twisted 24.10) leaves it alone: only the hook calls this."""

    def __init__(self) -> None:
        super().__init__()
        self.nodelay: list[bool] = []

    def setTcpNoDelay(self, enabled: bool) -> None:
        self.nodelay.append(enabled)


def test_the_hook_sets_tcp_nodelay_on_each_accepted_transport_whatever_twisted_does():
    daphne_tuning.install()
    build = HTTPFactory.buildProtocol
    daphne_tuning.install()
    assert HTTPFactory.buildProtocol is build  # installed once, not wrapped twice

    protocol = HTTPFactory(server=None).buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
    transport = RecordingTransport()
    protocol.makeConnection(transport)
    try:
        assert transport.nodelay == [True]
    finally:
        protocol.connectionLost(Failure(ConnectionDone()))  # cancels the channel's idle timeout

    class UnixTransport:  # no setTcpNoDelay: nothing to do, no error
        pass

    daphne_tuning.set_nodelay(UnixTransport())


class BufferingTransport:
    """The parts of a Twisted TCP transport that write-through looks at; its own
    `write` buffers (as Twisted's does, for the loop's next pass)."""

    TLS = False

    def __init__(self, sock: socket.socket) -> None:
        self.socket = sock
        self.connected, self.disconnecting, self._writeDisconnected = True, False, False
        self.dataBuffer, self.offset, self._tempDataLen = b"", 0, 0
        self.buffered: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.buffered.append(data)
        self._tempDataLen += len(data)


def test_writes_go_out_at_once_and_only_what_the_socket_refuses_is_buffered():
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    try:
        transport = BufferingTransport(ours)
        daphne_tuning.write_through(transport)
        transport.writeSequence([b"id: 1\n", b"data: {}\n\n"])
        assert peer.recv(100) == b"id: 1\ndata: {}\n\n" and transport.buffered == []  # sent, not buffered

        big = b"x" * (8 << 20)  # more than the socket takes: the rest waits in Twisted's buffer
        transport.write(big)
        assert transport.buffered and 0 < len(transport.buffered[0]) < len(big)
        transport.write(b"after")  # something is buffered: in order, behind it
        assert transport.buffered[-1] == b"after"

        transport.TLS = True
        transport.buffered, transport._tempDataLen = [], 0
        transport.write(b"clear text")
        assert transport.buffered == [b"clear text"]  # through Twisted (and TLS), never around it
    finally:
        ours.close()
        peer.close()


@pytest.mark.parametrize(
    "line",
    [b"application/json", b"Application/JSON; charset=utf-8", b"multipart/form-data; boundary=xyz",
     b"application/x-www-form-urlencoded", b"  text/plain ;q=1", b"nonsense", b"", b"a/b/c", b'text/"plain"',
     b"text/plain; charset=\"utf\\\"8\"", b"\xff/x"],
)  # fmt: skip
def test_the_content_type_shortcut_answers_as_twisted_does(line):
    assert daphne_tuning.fast_content_type(line) == daphne_tuning._parse_content_type(line)
