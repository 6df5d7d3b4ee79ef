"""Where a request comes from: the peer's address, or the client address that a
trusted proxy forwarded, and address allow-lists (`/metrics`). Every door asks here.

`X-Forwarded-For` is believed only from a peer in VALUECELL_TRUSTED_PROXIES; it
is read right to left, skipping trusted proxies, so a client cannot forge its
address by sending the header itself (a proxy appends, it does not replace).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

FORWARDED_FOR = "x-forwarded-for"


@lru_cache(maxsize=32)
def networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """Addresses or networks (`10.0.0.0/8`, `::1`) as networks; a bad entry raises ValueError."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())


def parse(raw: str | None) -> Address | None:
    if not raw:
        return None
    raw = raw.strip()
    if raw.startswith("[") and "]" in raw:  # `[::1]:port` from some proxies
        raw = raw[1 : raw.index("]")]
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_in(address: Address | None, allowed: Iterable[Network]) -> bool:
    return address is not None and any(address in network for network in allowed)


def _trusted() -> tuple[Network, ...]:
    return networks(tuple(settings.VALUECELL_TRUSTED_PROXIES))


def client_address(peer: str | None, forwarded_for: str | None) -> Address | None:
    """The client's address: the peer's, unless the peer is a trusted proxy that
    forwarded one (the rightmost address in `X-Forwarded-For` that is not itself
    a trusted proxy). None when the peer is unknown."""
    address = parse(peer)
    trusted = _trusted()
    if not forwarded_for or not is_in(address, trusted):
        return address
    for hop in reversed(forwarded_for.split(",")):
        forwarded = parse(hop)
        if forwarded is None:
            break  # garbage from beyond the trusted proxies: stop at the last trusted hop
        address = forwarded
        if not is_in(forwarded, trusted):
            break
    return address


def came_through_untrusted_proxy(peer: str | None, forwarded_for: str | None) -> bool:
    """A forwarded request whose proxy we do not trust: we cannot tell who sent it."""
    return bool(forwarded_for) and not is_in(parse(peer), _trusted())


def rate_key(address: Address) -> str:
    """What the per-address limits count by: the address, or an IPv6 client's /64
    (one host usually holds a whole /64 and could rotate through it)."""
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def scope_peer(scope: dict) -> tuple[str | None, str | None]:
    """(peer address, X-Forwarded-For) of an ASGI scope (a WebSocket's handshake)."""
    client = scope.get("client") or (None, None)
    forwarded = None
    for name, value in scope.get("headers", ()):
        if name.lower() == FORWARDED_FOR.encode():
            value = value.decode("latin1")
            forwarded = value if forwarded is None else f"{forwarded},{value}"
    return client[0], forwarded
