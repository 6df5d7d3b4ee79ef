"""The client address: the peer, or what a trusted proxy forwarded (read right to left)."""

import ipaddress

import pytest

from streaming.addresses import came_through_untrusted_proxy, client_address, rate_key, scope_peer


@pytest.fixture
def behind_proxy(settings):
    settings.VALUECELL_TRUSTED_PROXIES = ["127.0.0.1", "10.0.0.0/8"]


def ip(text):
    return ipaddress.ip_address(text)


def test_without_trusted_proxies_the_peer_is_the_client(settings):
    settings.VALUECELL_TRUSTED_PROXIES = []
    assert client_address("192.0.2.1", "203.0.113.5") == ip("192.0.2.1")
    assert came_through_untrusted_proxy("192.0.2.1", "203.0.113.5")
    assert not came_through_untrusted_proxy("192.0.2.1", None)
    assert client_address(None, None) is None


def test_a_trusted_proxys_forwarded_address_is_read_right_to_left(behind_proxy):
    assert client_address("127.0.0.1", "203.0.113.5") == ip("203.0.113.5")
    # The client wrote the first entry itself; the proxies appended the rest.
    assert client_address("127.0.0.1", "198.51.100.1, 203.0.113.5, 10.1.1.1") == ip("203.0.113.5")
    assert client_address("127.0.0.1", "10.2.2.2, 10.1.1.1") == ip("10.2.2.2")  # only proxies: the farthest one
    assert client_address("127.0.0.1", "garbage, 203.0.113.5") == ip("203.0.113.5")
    assert client_address("127.0.0.1", "203.0.113.5, garbage") == ip("127.0.0.1")  # a proxy never writes that
    assert client_address("192.0.2.1", "203.0.113.5") == ip("192.0.2.1")  # not from a trusted proxy: ignored
    assert client_address("127.0.0.1", "[2001:db8::1]:443") == ip("2001:db8::1")
    assert not came_through_untrusted_proxy("127.0.0.1", "203.0.113.5")


def test_limits_count_an_ipv6_client_by_its_64_and_ipv4_mapped_as_ipv4():
    assert rate_key(ip("2001:db8:1:2:3:4:5:6")) == rate_key(ip("2001:db8:1:2:ffff::1")) == "2001:db8:1:2::/64"
    assert rate_key(ip("2001:db8:1:3::1")) != rate_key(ip("2001:db8:1:2::1"))
    assert client_address("::ffff:192.0.2.7", None) == ip("192.0.2.7")
    assert rate_key(ip("192.0.2.7")) == "192.0.2.7"


def test_a_websocket_scope_gives_its_peer_and_forwarded_header():
    scope = {"client": ["127.0.0.1", 5000], "headers": [(b"x-forwarded-for", b"203.0.113.5"), (b"X-Forwarded-For", b"10.1.1.1")]}
    assert scope_peer(scope) == ("127.0.0.1", "203.0.113.5,10.1.1.1")
    assert scope_peer({}) == (None, None)
