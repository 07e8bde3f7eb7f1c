"""Fetch a document over HTTP(S) without letting a URL reach this machine or its private network (SSRF).

Every address a host resolves to is checked before any connection, and the check sits inside the resolver that
aiohttp connects with, so the address checked is the address connected to (no gap for DNS rebinding). Redirects
are followed by hand, each hop checked again; time and size are bounded. Every failure is a `FetchError` whose
message is one line to show the user.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from index.documents import DocumentError

log = logging.getLogger(__name__)

SCHEMES = ("http", "https")
REDIRECTS = frozenset({301, 302, 303, 307, 308})
CHUNK = 64 * 1024
USER_AGENT = "articlebot/0.1 (document fetcher)"
ACCEPT = "text/html,application/xhtml+xml,application/pdf,text/markdown,text/plain;q=0.9,*/*;q=0.5"
# An IPv6 prefix that carries an IPv4 address in its last 32 bits (NAT64, RFC 6052).
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Host spellings that socket's inet_aton reads as IPv4 (2130706433, 0x7f.1, 127.1), though not dotted quads.
_LEGACY_IPV4 = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}", re.IGNORECASE)
_CONNECT_TIMEOUT = getattr(aiohttp, "ConnectionTimeoutError", ())  # aiohttp >= 3.10


@dataclass(frozen=True)
class FetchPolicy:
    """What a fetch may reach and how much of it: private addresses only when allowed, bounded time and size."""

    allow_private: bool = False
    allowed_private_hosts: frozenset[str] = frozenset()  # exact "host:port" entries ("[::1]:8080" for IPv6)
    max_bytes: int = 10_000_000
    connect_timeout: float = 5.0
    total_timeout: float = 20.0
    max_redirects: int = 5


class FetchError(DocumentError):
    """A URL could not be fetched; the message is one line that tells the user why."""


@dataclass(frozen=True)
class Fetched:
    """A fetched body: the final URL after redirects, the Content-Type header as sent, and the bytes."""

    url: str
    content_type: str
    body: bytes


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast IP; IPv4 carried inside IPv6 is judged as the IPv4 it carries."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    ip = _embedded_ipv4(ip) or ip
    special = ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast
    return not (special or ip.is_reserved or ip.is_unspecified) and ip.is_global


def address_allowed(host: str, port: int, address: str, policy: FetchPolicy) -> bool:
    """The one decision on where a fetch may connect: a public address, or a private one the policy allows."""
    return policy.allow_private or host_port(host, port) in _allowed(policy) or is_public_address(address)


def check_address(host: str, port: int, addresses: list[str], policy: FetchPolicy) -> None:
    """Raise FetchError unless every address `host` resolved to may be connected to (one bad one refuses all); the
    message names the host, never the internal address it resolved to."""
    if not addresses:
        raise FetchError(f"{host} has no address to connect to")
    for address in addresses:
        if not address_allowed(host, port, address, policy):
            log.info("refused %s: it resolves to %s, a private address", host, address)  # for the operator only
            raise FetchError(
                f"{host} resolves to a private address; set ALLOW_PRIVATE_URLS=true "
                f"or list {host_port(host, port)} in ALLOWED_PRIVATE_HOSTS to allow it"
            )


def host_port(host: str, port: int) -> str:
    """The "host:port" key of ALLOWED_PRIVATE_HOSTS, with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def fetch(url: str, policy: FetchPolicy) -> Fetched:
    """GET `url` under `policy`: public addresses only, redirects re-checked, bounded time and size."""
    start = _parse(url)
    try:
        async with asyncio.timeout(policy.total_timeout), _session(policy) as session:
            return await _follow(session, start, policy)
    except TimeoutError as exc:
        raise FetchError(f"{start} did not answer within {policy.total_timeout:g} s (timeout)") from exc


def _embedded_ipv4(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, 6to4 or NAT64 IPv6 address, so ::ffff:127.0.0.1 counts as loopback."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.ipv4_mapped or ip.sixtofour


def _allowed(policy: FetchPolicy) -> set[str]:
    """The allowed "host:port" entries, lower-cased as URL hosts are."""
    return {entry.strip().lower() for entry in policy.allowed_private_hosts}


def _literal_address(host: str) -> str | None:
    """The IP address a host names by itself (::1, 127.0.0.1, or legacy forms such as 2130706433), else None."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(host):
        try:
            return socket.inet_ntoa(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _parse(url: str) -> URL:
    """The URL as yarl reads it; FetchError for text that is no URL at all."""
    try:
        return URL(url.strip())
    except (ValueError, TypeError) as exc:
        raise FetchError(f"{url!r} is not a valid URL") from exc


def _check_url(url: URL, policy: FetchPolicy) -> None:
    """Refuse a scheme other than http/https, a URL without a host, a host that is neither a name nor an IP address,
    and a literal IP that is not allowed."""
    if url.scheme not in SCHEMES:
        raise FetchError(f"{url}: only http:// and https:// URLs can be fetched")
    if not url.host or url.port is None:
        raise FetchError(f"{url}: the URL has no host")
    literal = _literal_address(url.host)
    if literal is None and _looks_like_address(url.host):
        raise FetchError(f"{url}: the host {url.host!r} is neither a domain name nor an IP address: check the URL")
    if literal is not None:
        check_address(url.host, url.port, [literal], policy)


def _looks_like_address(host: str) -> bool:
    """Whether aiohttp would take `host` for an IP address (it then connects without asking the checking
    resolver), or it holds a zone or escape mark ("%") no domain name has."""
    return any(mark in host for mark in ":%") or host.replace(".", "").isdigit()


class CheckingResolver(AbstractResolver):
    """The system resolver, refusing any answer with an address the policy does not allow. aiohttp connects only
    to the addresses this returns, so what was checked is what is connected to."""

    def __init__(self, policy: FetchPolicy) -> None:
        self._policy = policy
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve, then check every address before aiohttp may use any of them."""
        results = await self._inner.resolve(host, port, family)
        check_address(host, port, [result["host"] for result in results], self._policy)
        return results

    async def close(self) -> None:
        """Release the wrapped resolver."""
        await self._inner.close()


def _session(policy: FetchPolicy) -> aiohttp.ClientSession:
    """A session that resolves through CheckingResolver, ignores proxy settings and keeps no cookies."""
    connector = aiohttp.TCPConnector(resolver=CheckingResolver(policy), use_dns_cache=False)
    timeout = aiohttp.ClientTimeout(total=None, connect=policy.connect_timeout, sock_connect=policy.connect_timeout)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": USER_AGENT, "Accept": ACCEPT},
    )


async def _follow(session: aiohttp.ClientSession, url: URL, policy: FetchPolicy) -> Fetched:
    """Follow redirects by hand, checking each hop, at most policy.max_redirects of them."""
    start = url
    for _ in range(policy.max_redirects + 1):
        _check_url(url, policy)
        with _explained(url, policy):
            async with session.get(url, allow_redirects=False) as response:
                target = _redirect_target(url, response)
                if target is None:
                    body = await _read(url, response, policy)
                    return Fetched(str(response.url), response.headers.get("Content-Type", ""), body)
        url = target
    raise FetchError(f"{start} redirected more than {policy.max_redirects} times")


def _redirect_target(url: URL, response: aiohttp.ClientResponse) -> URL | None:
    """Where a redirect points, None for a success; FetchError for an error status."""
    if response.status in REDIRECTS:
        location = response.headers.get("Location")
        if not location:
            raise FetchError(f"{url} answered {response.status} without saying where to go")
        try:
            return url.join(URL(location))
        except ValueError as exc:
            raise FetchError(f"{url} redirects to an invalid URL ({location!r})") from exc
    if not 200 <= response.status < 300:
        raise FetchError(f"{url} answered {response.status} {_reason(response)}".rstrip())
    return None


def _reason(response: aiohttp.ClientResponse) -> str:
    """The status phrase ("Not Found"), from the server or else the standard one."""
    if response.reason:
        return response.reason
    try:
        return HTTPStatus(response.status).phrase
    except ValueError:
        return ""


async def _read(url: URL, response: aiohttp.ClientResponse, policy: FetchPolicy) -> bytes:
    """The body, refused as soon as it is known to exceed policy.max_bytes (by Content-Length or while streaming)."""
    if response.content_length is not None and response.content_length > policy.max_bytes:
        raise _too_big(url, policy)
    body = bytearray()
    async for chunk in response.content.iter_chunked(CHUNK):
        body.extend(chunk)
        if len(body) > policy.max_bytes:
            raise _too_big(url, policy)
    return bytes(body)


def _too_big(url: URL, policy: FetchPolicy) -> FetchError:
    """The error for a body over the size limit, in the unit of MAX_DOCUMENT_BYTES."""
    return FetchError(f"{url} is larger than MAX_DOCUMENT_BYTES ({policy.max_bytes / 1_000_000:g} MB)")


@contextmanager
def _explained(url: URL, policy: FetchPolicy) -> Iterator[None]:
    """Turn aiohttp's connection errors into a FetchError with one line for the user."""
    try:
        yield
    except _CONNECT_TIMEOUT as exc:
        raise FetchError(f"{url}: could not connect within {policy.connect_timeout:g} s (timeout)") from exc
    except aiohttp.ClientConnectorError as exc:
        raise FetchError(_connect_failure(url, exc)) from exc
    except aiohttp.ClientError as exc:
        raise FetchError(f"{url} could not be fetched ({type(exc).__name__}: {exc})") from exc


def _connect_failure(url: URL, exc: aiohttp.ClientConnectorError) -> str:
    """Name the cause of a failed connection: DNS, refused, or other."""
    if isinstance(exc.os_error, socket.gaierror):
        return f"{url}: cannot resolve host {url.host} (DNS lookup failed)"
    if isinstance(exc.os_error, ConnectionRefusedError):
        return f"{url}: connection refused by {host_port(url.host or '', url.port or 0)}"
    return f"{url}: cannot connect to {url.host} ({exc.os_error.strerror or exc.os_error})"
