"""Which addresses a fetch may connect to: the pure rule, on literal addresses (no resolution, no connection)."""

from __future__ import annotations

import pytest

from index.fetch import FetchError, FetchPolicy, address_allowed, check_address, is_public_address

REFUSED = [
    "127.0.0.1",
    "127.8.9.10",
    "10.0.0.1",
    "10.255.255.254",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # carrier-grade NAT, not global
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "0.0.0.0",
    "::1",
    "::",
    "fe80::1",
    "fe80::1%eth0",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:0.0.0.0",
    "2002:7f00:1::",  # 6to4 around 127.0.0.1
    "64:ff9b::a00:1",  # NAT64 around 10.0.0.1
    "not an address",
    "",
]
PUBLIC = ["93.184.216.34", "1.1.1.1", "172.32.0.1", "192.169.0.1", "2606:2800:220:1:248:1893:25c8:1946"]
STRICT = FetchPolicy()


@pytest.mark.parametrize("address", REFUSED)
def test_private_loopback_link_local_multicast_reserved_and_unspecified_addresses_are_refused(address: str) -> None:
    assert not is_public_address(address)
    assert not address_allowed("example.com", 443, address, STRICT)
    with pytest.raises(FetchError, match=r"resolves to a private address"):
        check_address("example.com", 443, [address], STRICT)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public_address(address)
    check_address("example.com", 443, [address], STRICT)


def test_one_private_address_among_public_ones_refuses_the_host_without_naming_the_address() -> None:
    with pytest.raises(FetchError) as caught:
        check_address("rebind.example", 80, ["93.184.216.34", "10.0.0.7"], STRICT)
    assert str(caught.value) == (
        "rebind.example resolves to a private address; set ALLOW_PRIVATE_URLS=true "
        "or list rebind.example:80 in ALLOWED_PRIVATE_HOSTS to allow it"
    )


@pytest.mark.parametrize("address", ["10.0.0.7", "169.254.169.254", "fd12:3456::1", "::ffff:127.0.0.1"])
def test_the_refusal_never_echoes_the_internal_address(address: str) -> None:
    with pytest.raises(FetchError) as caught:
        check_address("intranet.example", 443, [address], STRICT)
    assert address not in str(caught.value)


def test_a_host_without_addresses_is_refused() -> None:
    with pytest.raises(FetchError, match="has no address"):
        check_address("nowhere.example", 80, [], STRICT)


def test_allow_private_allows_every_address() -> None:
    check_address("localhost", 8080, ["127.0.0.1", "::1", "169.254.169.254"], FetchPolicy(allow_private=True))


def test_allowed_private_hosts_match_host_and_port_exactly() -> None:
    policy = FetchPolicy(allowed_private_hosts=frozenset({"wiki.internal:8080", "[::1]:9000", "10.0.0.5:80"}))
    check_address("wiki.internal", 8080, ["10.1.2.3"], policy)
    check_address("::1", 9000, ["::1"], policy)
    check_address("10.0.0.5", 80, ["10.0.0.5"], policy)
    for host, port, address in [
        ("wiki.internal", 8081, "10.1.2.3"),  # another port
        ("wiki.internal", 80, "10.1.2.3"),
        ("other.internal", 8080, "10.1.2.3"),  # another host with the same port
        ("sub.wiki.internal", 8080, "10.1.2.3"),
        ("10.1.2.3", 8080, "10.1.2.3"),  # the address the allowed name resolves to is not itself allowed
        ("::1", 9001, "::1"),
        ("10.0.0.5", 443, "10.0.0.5"),
    ]:
        assert not address_allowed(host, port, address, policy), (host, port)
    with pytest.raises(FetchError, match=r"list \[::1\]:9001 in ALLOWED_PRIVATE_HOSTS"):
        check_address("::1", 9001, ["::1"], policy)
