"""Fetching over real HTTP from servers this test starts on 127.0.0.1: what is fetched, what is refused, and that a
refused address is never connected to. Nothing here reaches beyond the loopback interface."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.typedefs import Handler
from fpdf import FPDF

from index.extract import extract
from index.fetch import FetchError, FetchPolicy, fetch

pytestmark = pytest.mark.timeout(10)

ARTICLE = b"""<!DOCTYPE html><html><head><title>Sculling basics</title>
<meta name="author" content="Jo Rower"></head><body>
<nav><a href="/">Home</a> <a href="/about">About us</a></nav>
<article><h1>Sculling basics</h1>
<p>A sculler holds one oar in each hand and crosses the handles at the middle of the drive.</p>
<p>The catch is taken with the blades square and buried before the legs push.</p></article>
</body></html>"""


def pdf_bytes() -> bytes:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for text in ("Page one is about oars.", "Page two is about boats."):
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


@dataclass
class Site:
    """The test server: its port, the paths it was asked for, and connections to listeners that must stay idle."""

    port: int
    requests: list[str] = field(default_factory=list)
    idle_connections: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def policy(self, **overrides: object) -> FetchPolicy:
        """Only this server is allowed, by its exact 127.0.0.1:port; small limits so each test is fast."""
        values: dict = {"allowed_private_hosts": frozenset({f"127.0.0.1:{self.port}"}), "total_timeout": 3.0}
        return FetchPolicy(**(values | overrides))


def routes(site: Site) -> web.Application:
    async def article(request: web.Request) -> web.Response:
        return web.Response(body=ARTICLE, content_type="text/html", charset="utf-8")

    async def pdf(request: web.Request) -> web.Response:
        return web.Response(body=pdf_bytes(), content_type="application/pdf")

    async def hop(request: web.Request) -> web.Response:
        left = int(request.match_info["left"])
        raise web.HTTPFound(f"/hop/{left - 1}" if left > 1 else "/article")

    async def to(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(request.query["url"])

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently("/loop")

    async def slow_headers(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(text="too late")

    async def slow_body(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        for _ in range(50):
            await response.write(b"x")
            await asyncio.sleep(0.1)
        return response

    async def big_stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(64):
            await response.write(b"x" * 16_384)
        return response

    async def big_declared(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 200_000, content_type="text/plain")

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        site.requests.append(request.path_qs)
        return await handler(request)

    app = web.Application(middlewares=[record])
    app.add_routes(
        [
            web.get("/article", article),
            web.get("/doc.pdf", pdf),
            web.get("/hop/{left}", hop),
            web.get("/to", to),
            web.get("/loop", loop),
            web.get("/slow-headers", slow_headers),
            web.get("/slow-body", slow_body),
            web.get("/big-stream", big_stream),
            web.get("/big-declared", big_declared),
        ]
    )
    return app


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    """The HTTP server on 127.0.0.1, plus a bare listener on 127.0.0.2 at the same port that counts connections."""
    site = Site(port=0)
    runner = web.AppRunner(routes(site), handler_cancellation=True, shutdown_timeout=0.2)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    site.port = runner.addresses[0][1]
    idle = await _idle_listener(site, "127.0.0.2", site.port)
    try:
        yield site
    finally:
        idle.close()
        await runner.cleanup()


async def _idle_listener(site: Site, host: str, port: int) -> asyncio.Server:
    """A listener that only records that something connected to it, then hangs up."""

    def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        site.idle_connections.append(f"{host}:{port}")
        writer.close()

    return await asyncio.start_server(connected, host, port)


def only(port: int, connect_timeout: float = 5.0, total_timeout: float = 20.0) -> FetchPolicy:
    """A policy that allows exactly 127.0.0.1:port."""
    allowed = frozenset({f"127.0.0.1:{port}"})
    return FetchPolicy(allowed_private_hosts=allowed, connect_timeout=connect_timeout, total_timeout=total_timeout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def refused(url: str, policy: FetchPolicy) -> str:
    with pytest.raises(FetchError) as caught:
        await fetch(url, policy)
    return str(caught.value)


async def test_an_html_article_is_fetched_and_extracts(site: Site) -> None:
    fetched = await fetch(site.url("/article"), site.policy())
    assert (fetched.url, fetched.content_type, fetched.body) == (
        site.url("/article"),
        "text/html; charset=utf-8",
        ARTICLE,
    )
    page = extract(fetched.body, content_type=fetched.content_type, url=fetched.url)
    assert page.title == "Sculling basics"
    assert "About us" not in page.text


async def test_a_pdf_is_fetched_and_keeps_its_pages(site: Site) -> None:
    fetched = await fetch(site.url("/doc.pdf"), site.policy())
    assert fetched.content_type == "application/pdf"
    assert extract(fetched.body, content_type=fetched.content_type, url=fetched.url).text == (
        "<!-- page 1 -->\n\nPage one is about oars.\n\n<!-- page 2 -->\n\nPage two is about boats."
    )


async def test_a_redirect_chain_within_the_limit_is_followed_to_the_final_url(site: Site) -> None:
    fetched = await fetch(site.url("/hop/3"), site.policy(max_redirects=3))
    assert fetched.url == site.url("/article")
    assert site.requests == ["/hop/3", "/hop/2", "/hop/1", "/article"]


async def test_too_many_redirects_are_refused(site: Site) -> None:
    message = await refused(site.url("/hop/3"), site.policy(max_redirects=2))
    assert message == f"{site.url('/hop/3')} redirected more than 2 times"
    assert "redirected more than 5 times" in await refused(site.url("/loop"), site.policy())
    assert site.requests.count("/loop") == 6


@pytest.mark.parametrize("target", ["http://127.0.0.2:{port}/", "http://localhost:{port}/article"])
async def test_a_redirect_to_an_address_not_allowed_is_refused_without_connecting(site: Site, target: str) -> None:
    target = target.format(port=site.port)
    message = await refused(site.url(f"/to?url={target}"), site.policy())
    assert "resolves to a private address" in message
    assert site.requests == [f"/to?url={target}"], "the allowed server was asked once, the target never"
    assert site.idle_connections == []


async def test_a_redirect_to_another_port_of_localhost_is_refused_without_connecting(site: Site) -> None:
    other = free_port()
    idle = await _idle_listener(site, "127.0.0.1", other)
    try:
        message = await refused(site.url(f"/to?url=http://localhost:{other}/"), site.policy())
    finally:
        idle.close()
    assert f"list localhost:{other} in ALLOWED_PRIVATE_HOSTS" in message
    assert site.idle_connections == []


async def test_a_redirect_to_another_scheme_is_refused(site: Site) -> None:
    message = await refused(site.url("/to?url=file:///etc/passwd"), site.policy())
    assert message == "file:///etc/passwd: only http:// and https:// URLs can be fetched"


@pytest.mark.parametrize("path", ["/slow-headers", "/slow-body"])
async def test_a_slow_response_times_out(site: Site, path: str) -> None:
    started = asyncio.get_running_loop().time()
    message = await refused(site.url(path), site.policy(total_timeout=0.3))
    assert message == f"{site.url(path)} did not answer within 0.3 s (timeout)"
    assert asyncio.get_running_loop().time() - started < 1.5


async def test_an_oversized_body_is_refused_while_streaming_or_by_its_length(site: Site) -> None:
    policy = site.policy(max_bytes=100_000)
    assert await refused(site.url("/big-stream"), policy) == (
        f"{site.url('/big-stream')} is larger than MAX_DOCUMENT_BYTES (0.1 MB)"
    )
    assert "larger than MAX_DOCUMENT_BYTES (0.1 MB)" in await refused(site.url("/big-declared"), policy)
    assert (await fetch(site.url("/big-declared"), site.policy(max_bytes=200_000))).body == b"x" * 200_000


async def test_an_error_status_is_refused_with_its_status(site: Site) -> None:
    assert await refused(site.url("/missing"), site.policy()) == f"{site.url('/missing')} answered 404 Not Found"


async def test_a_closed_port_is_a_refused_connection() -> None:
    port = free_port()
    message = await refused(f"http://127.0.0.1:{port}/", only(port))
    assert message == f"http://127.0.0.1:{port}/: connection refused by 127.0.0.1:{port}"


async def test_a_server_that_does_not_accept_is_a_connect_timeout() -> None:
    """A listener whose accept queue is full drops new SYNs, so connecting hangs until connect_timeout."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        fillers = [socket.socket() for _ in range(3)]
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
        try:
            message = await refused(f"http://127.0.0.1:{port}/", only(port, connect_timeout=0.3, total_timeout=3))
        finally:
            for filler in fillers:
                filler.close()
    assert message == f"http://127.0.0.1:{port}/: could not connect within 0.3 s (timeout)"


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://127.0.0.1/", "127.0.0.1"),
        ("http://localhost/", "127.0.0.1"),
        ("http://[::1]/", "::1"),
        ("http://2130706433/", "127.0.0.1"),
        ("http://0x7f.1/", "127.0.0.1"),
        ("http://[::ffff:127.0.0.1]/", "::ffff:7f00:1"),
        ("https://169.254.169.254/latest/meta-data/", "169.254.169.254"),
    ],
)
async def test_loopback_and_private_urls_are_refused_without_an_allowance(url: str, address: str) -> None:
    message = await refused(url, FetchPolicy())
    assert "resolves to a private address" in message
    assert "set ALLOW_PRIVATE_URLS=true or list" in message
    if not message.startswith(address):  # the host is named, never the internal address a name stands for
        assert address not in message


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/file", "file:///etc/passwd", "javascript:alert(1)", "/relative"])
async def test_only_http_and_https_urls_are_fetched(url: str) -> None:
    assert "only http:// and https:// URLs can be fetched" in await refused(url, FetchPolicy(allow_private=True))
