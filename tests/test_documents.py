"""`/add` and `/remove` end to end: the real bot (real discord.py, real engine, real model) against the Discord API
emulator, adding a web page served by a real HTTP server on 127.0.0.1 and a real PDF attached to the command.

Every assertion is on what Discord would have received (the ephemeral "Adding …" reply, then the original response
edited to the outcome), on the answers questions then get, and on the corpus folder.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import StartBot, own_settings
from discord_emulator import FLAG_EPHEMERAL, DiscordEmulator, UserFile
from fpdf import FPDF
from test_hostile_input import long_lines, shared_stream_pdf

from bot.answer import ABSTAIN_TEXT
from bot.engine import Engine
from index.embedder import Embedder
from index.manager import IndexManager

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

CALLBACK_MESSAGE = 4
HOLD_SECONDS = 30.0  # the longest a held page or build waits for the test to release it
SECRETARIAT = "Who heads WeGO's secretariat?"

LIGHTHOUSE_PATH = "/heritage/kestrel-point"
LIGHTHOUSE_TITLE = "The Kestrel Point Lighthouse"
LIGHTHOUSE_FILE = "the-kestrel-point-lighthouse.md"
LIGHTHOUSE_QUESTION = "Who designed the Kestrel Point lighthouse?"
LIGHTHOUSE_DESIGN = "drew the plans in 1887"  # only in the page's second paragraph
LIGHTHOUSE = f"""<!DOCTYPE html>
<html><head><title>{LIGHTHOUSE_TITLE}</title>
<meta property="og:site_name" content="Coastal Heritage Review"></head><body>
<nav><a href="/">Home</a> <a href="/heritage">Heritage</a></nav>
<article><h1>{LIGHTHOUSE_TITLE}</h1>
<p>The Kestrel Point lighthouse stands on a granite headland at the mouth of the Varden estuary. Its white tower
rises thirty-one metres above the rocks and its lamp can be seen from twenty-two nautical miles away.</p>
<p>The lighthouse was designed by the engineer Miriam Oduya, who {LIGHTHOUSE_DESIGN} after two ships were lost
on the headland in a single winter storm.</p>
<p>Keepers lived in the cottages beside the tower until 1979, when the light was automated. The cottages are now a
small museum about the keepers and their families.</p>
</article></body></html>""".encode()

TUNNEL_TITLE = "The Harwick Railway Tunnel"
TUNNEL_FILE = "the-harwick-railway-tunnel.md"
TUNNEL_QUESTION = "How long is the Harwick tunnel?"


def tunnel_pdf() -> bytes:
    """A real two-page PDF whose tunnel's length is only on page 2."""
    pdf = FPDF()
    pdf.set_title(TUNNEL_TITLE)
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()
    pdf.multi_cell(
        0,
        6,
        "The Harwick railway tunnel carries the northern line under the Pellam hills. Work began in 1904 with "
        "three hundred navvies digging from both ends at once.",
    )
    pdf.ln(6)
    pdf.multi_cell(0, 6, "The two headings met in the middle of the hill in the summer of 1909.")
    pdf.add_page()
    pdf.multi_cell(0, 6, "The Harwick tunnel is 4.2 kilometres long. It was opened to passenger trains in March 1911.")
    return bytes(pdf.output())


class Site:
    """A real web server (the standard library's, in its own threads) on 127.0.0.1: it serves `pages` by path,
    answers 404 for any other, and can hold a page back until the test releases it."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[bytes, str]] = {}
        self.requested: list[str] = []
        self.held: dict[str, threading.Event] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.requested.append(self.path)
                if (release := site.held.get(self.path)) is not None:
                    release.wait(HOLD_SECONDS)
                if self.path not in site.pages:
                    self.send_error(HTTPStatus.NOT_FOUND)
                    return
                body, content_type = site.pages[self.path]
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hold(self, path: str) -> threading.Event:
        """Make requests for `path` wait until the returned event is set."""
        self.held[path] = threading.Event()
        return self.held[path]


@pytest.fixture
def site() -> Iterator[Site]:
    site = Site()
    site.pages[LIGHTHOUSE_PATH] = (LIGHTHOUSE, "text/html; charset=utf-8")
    thread = threading.Thread(target=site.server.serve_forever, name="test-site", daemon=True)
    thread.start()
    try:
        yield site
    finally:
        for release in site.held.values():
            release.set()
        site.server.shutdown()
        site.server.server_close()
        thread.join()


@pytest.fixture
def docs_engine(embedder: Embedder, corpus_copy: Path, tmp_path: Path, site: Site) -> Engine:
    """An engine over a writable copy of the bundled corpus that may fetch from the test's site (only)."""
    return Engine(own_settings(corpus_copy, tmp_path, allowed_private_hosts=[f"127.0.0.1:{site.port}"]), embedder)


def corpus_state(engine: Engine) -> dict[str, bytes]:
    """Every document file: the shared corpus's and every server's."""
    folders = (engine.library.base.config.corpus_dir, engine.library.servers_dir)
    return {p.name: p.read_bytes() for folder in folders for p in sorted(folder.rglob("*")) if p.is_file()}


def server_index(engine: Engine, emu: DiscordEmulator) -> IndexManager:
    """The index of the documents added in the emulated server."""
    return engine.library.manager(emu.guild_id)


async def change(emu: DiscordEmulator, user: int, command: str, options: dict[str, Any]) -> tuple[str, str]:
    """Run /add or /remove as `user`: the ephemeral progress reply, then the outcome it was edited to."""
    interaction = await emu.send_slash_command(user, command, options)
    progress, outcome = await emu.wait_for_responses(interaction.id, 2, timeout=60)
    assert progress.body["type"] == CALLBACK_MESSAGE and progress.body["data"]["flags"] & FLAG_EPHEMERAL
    assert outcome.method == "PATCH" and outcome.path.endswith("/messages/@original") and outcome.ok
    [message] = emu.interaction_messages(interaction.id)
    assert message["content"] == outcome.body["content"] and message["flags"] & FLAG_EPHEMERAL
    return progress.body["data"]["content"], outcome.body["content"]


async def refusal(emu: DiscordEmulator, user: int, command: str, options: dict[str, Any]) -> str:
    """Run a command that is refused at once: the one ephemeral reply."""
    interaction = await emu.send_slash_command(user, command, options)
    [reply] = await emu.wait_for_responses(interaction.id, 1, timeout=60)
    assert reply.body["type"] == CALLBACK_MESSAGE and reply.body["data"]["flags"] & FLAG_EPHEMERAL
    return reply.body["data"]["content"]


async def ask(emu: DiscordEmulator, user: int, question: str) -> dict[str, Any]:
    """The answer embed of `/ask question`."""
    interaction = await emu.send_slash_command(user, "ask", {"question": question})
    _, answer = await emu.wait_for_responses(interaction.id, 2, timeout=60)
    [embed] = answer.body["embeds"]
    return embed


async def ask_by_mention(emu: DiscordEmulator, user: int, question: str) -> dict[str, Any]:
    """The answer embed of `@bot question`."""
    message = await emu.send_message(user, question, mention_bot=True)
    [reply] = await emu.wait_for(lambda: emu.replies_to(message), timeout=30)
    [embed] = reply.body["embeds"]
    return embed


def abstains(embed: dict[str, Any]) -> bool:
    return ABSTAIN_TEXT in embed["description"]


def first_source(embed: dict[str, Any]) -> str:
    return embed["fields"][0]["name"]


async def test_an_admin_adds_a_web_page_and_questions_are_answered_from_it(
    emu: DiscordEmulator, start_bot: StartBot, site: Site, docs_engine: Engine
) -> None:
    admin, user = emu.add_member("ada", admin=True), emu.add_member("ben")
    await start_bot(docs_engine)
    assert abstains(await ask(emu, user, LIGHTHOUSE_QUESTION)), "the article knows nothing of lighthouses"

    url = site.url(LIGHTHOUSE_PATH)
    progress, outcome = await change(emu, admin, "add", {"url": url})
    assert progress == f"Adding {url}…"
    assert outcome.startswith(f"Added “{LIGHTHOUSE_TITLE}” ({LIGHTHOUSE_FILE}): 3 paragraphs, 3 passages, in ")
    assert site.requested == [LIGHTHOUSE_PATH]

    embed = await ask(emu, user, LIGHTHOUSE_QUESTION)
    assert "Miriam Oduya" in embed["description"] and "[1]" in embed["description"]
    assert first_source(embed).startswith(f"Sources [1] {LIGHTHOUSE_TITLE}, ¶")
    assert "p. " not in first_source(embed), "a web page has no pages"
    [document] = [d for d in server_index(docs_engine, emu).sources().documents if d.id == LIGHTHOUSE_FILE]
    assert (document.url, document.origin, document.source) == (url, "url", "Coastal Heritage Review")
    assert "Park Jung-sook" in (await ask(emu, user, SECRETARIAT))["description"], "the article is still known"
    assert emu.failed_requests == []


async def test_an_admin_adds_a_pdf_file_and_answers_cite_its_page(
    emu: DiscordEmulator, start_bot: StartBot, docs_engine: Engine
) -> None:
    admin, user = emu.add_member("cleo", admin=True), emu.add_member("dan")
    await start_bot(docs_engine)

    pdf = UserFile("Harwick tunnel.pdf", tunnel_pdf(), "application/pdf")
    progress, outcome = await change(emu, admin, "add", {"file": pdf})
    assert progress == "Adding Harwick\\_tunnel.pdf…", "the file name as Discord gives it, markdown escaped"
    assert outcome.startswith(f"Added “{TUNNEL_TITLE}” ({TUNNEL_FILE}): 3 paragraphs, 3 passages, in ")
    [attachment] = emu.attachments.values()
    assert attachment.downloads == 1, "the bot read the attachment from the CDN"

    embed = await ask_by_mention(emu, user, TUNNEL_QUESTION)
    assert "4.2 kilometres" in embed["description"]
    assert first_source(embed).startswith(f"Sources [1] {TUNNEL_TITLE}, p. 2, ¶")
    [document] = [d for d in server_index(docs_engine, emu).sources().documents if d.id == TUNNEL_FILE]
    assert document.origin == "file" and document.url is None
    assert emu.failed_requests == []


async def test_remove_offers_the_documents_and_takes_one_out(
    emu: DiscordEmulator, start_bot: StartBot, site: Site, docs_engine: Engine
) -> None:
    admin, user = emu.add_member("eve", admin=True), emu.add_member("finn")
    await asyncio.to_thread(server_index(docs_engine, emu).add_url, site.url(LIGHTHOUSE_PATH))
    await start_bot(docs_engine)
    assert "Miriam Oduya" in (await ask(emu, user, LIGHTHOUSE_QUESTION))["description"]

    everything = await emu.autocomplete(admin, "remove", {}, focused="document")
    assert everything == [{"name": LIGHTHOUSE_TITLE, "value": LIGHTHOUSE_FILE}], (
        "the shared article is not the server's"
    )
    choices = await emu.autocomplete(admin, "remove", {"document": "kestrel"}, focused="document")
    assert choices == [{"name": LIGHTHOUSE_TITLE, "value": LIGHTHOUSE_FILE}]

    progress, outcome = await change(emu, admin, "remove", {"document": choices[0]["value"]})
    assert progress == f"Removing {LIGHTHOUSE_FILE}…"
    assert outcome.startswith(f"Removed “{LIGHTHOUSE_TITLE}” ({LIGHTHOUSE_FILE}): 3 paragraphs, 3 passages, in ")
    assert abstains(await ask(emu, user, LIGHTHOUSE_QUESTION))
    assert LIGHTHOUSE_FILE not in corpus_state(docs_engine)
    assert await emu.autocomplete(admin, "remove", {"document": "kestrel"}, focused="document") == []
    assert emu.failed_requests == []


async def test_members_may_neither_add_nor_remove(
    emu: DiscordEmulator, start_bot: StartBot, site: Site, docs_engine: Engine
) -> None:
    member = emu.add_member("gus")
    await start_bot(docs_engine)
    before = corpus_state(docs_engine)

    for options in ({"url": site.url(LIGHTHOUSE_PATH)}, {"file": UserFile("tunnel.pdf", tunnel_pdf())}):
        assert await refusal(emu, member, "add", options) == "Only server administrators can add documents."
    assert await refusal(emu, member, "remove", {"document": "wego.txt"}) == (
        "Only server administrators can remove documents."
    )
    assert corpus_state(docs_engine) == before and server_index(docs_engine, emu).sources().documents == []
    assert site.requested == [] and all(a.downloads == 0 for a in emu.attachments.values())
    assert emu.failed_requests == []


async def test_private_addresses_and_missing_pages_change_nothing(
    emu: DiscordEmulator, start_bot: StartBot, site: Site, docs_engine: Engine
) -> None:
    admin = emu.add_member("hana", admin=True)
    await start_bot(docs_engine)
    before = corpus_state(docs_engine)

    # Only 127.0.0.1:<port> is allowed: the same server under another name is a private address like any other.
    _, private = await change(emu, admin, "add", {"url": f"http://localhost:{site.port}{LIGHTHOUSE_PATH}"})
    assert private.startswith("Nothing changed: localhost resolves to a private address")
    assert site.requested == [], "refused before connecting"

    missing = site.url("/heritage/no-such-page")
    _, not_found = await change(emu, admin, "add", {"url": missing})
    assert not_found.startswith(f"Nothing changed: {missing} answered 404")
    assert site.requested == ["/heritage/no-such-page"]
    assert corpus_state(docs_engine) == before and server_index(docs_engine, emu).sources().documents == []
    assert emu.failed_requests == []


async def test_questions_are_answered_from_the_old_index_while_a_page_is_added(
    emu: DiscordEmulator, start_bot: StartBot, site: Site, docs_engine: Engine, monkeypatch
) -> None:
    admin, user = emu.add_member("ida", admin=True), emu.add_member("jon")
    await start_bot(docs_engine)
    fetching = site.hold(LIGHTHOUSE_PATH)
    building, release_build = threading.Event(), threading.Event()
    encode = docs_engine.embedder.encode

    def held_encode(texts: list[str], progress: bool = False) -> Any:
        """Embed as usual, but hold the build of the new page (not the questions) until released."""
        if any(LIGHTHOUSE_DESIGN in text for text in texts):
            building.set()
            release_build.wait(HOLD_SECONDS)
        return encode(texts, progress)

    monkeypatch.setattr(docs_engine.embedder, "encode", held_encode)

    interaction = await emu.send_slash_command(admin, "add", {"url": site.url(LIGHTHOUSE_PATH)})
    [progress] = await emu.wait_for_responses(interaction.id, 1, timeout=60)
    assert progress.body["data"]["content"].startswith("Adding ")
    # 1. The page is being fetched.
    await emu.wait_for(lambda: site.requested, timeout=30)
    assert abstains(await ask_by_mention(emu, user, LIGHTHOUSE_QUESTION))
    assert "Park Jung-sook" in (await ask(emu, user, SECRETARIAT))["description"]
    fetching.set()
    # 2. The new index is being built with it.
    await emu.wait_for(building.is_set, timeout=30)
    assert server_index(docs_engine, emu).rebuilding
    assert abstains(await ask_by_mention(emu, user, LIGHTHOUSE_QUESTION))
    assert "Park Jung-sook" in (await ask(emu, user, SECRETARIAT))["description"]
    busy = await refusal(emu, admin, "remove", {"document": "wego.txt"})
    assert busy.startswith("A rebuild is already running")
    assert len(emu.interaction_responses(interaction.id)) == 1 and server_index(docs_engine, emu).rebuilding, (
        "still adding"
    )
    release_build.set()

    _, outcome = await emu.wait_for_responses(interaction.id, 2, timeout=60)
    assert outcome.body["content"].startswith(f"Added “{LIGHTHOUSE_TITLE}”")
    assert "Miriam Oduya" in (await ask_by_mention(emu, user, LIGHTHOUSE_QUESTION))["description"]
    assert emu.failed_requests == []


async def test_a_hostile_pdf_is_refused_with_its_limit_while_questions_are_answered(
    emu: DiscordEmulator, start_bot: StartBot, embedder: Embedder, corpus_copy: Path, tmp_path: Path
) -> None:
    """Extraction runs in a child process: while it grinds through 200 pages sharing one huge content stream,
    members are answered; then it is killed at EXTRACT_TIMEOUT_SECONDS and nothing is added."""
    settings = own_settings(corpus_copy, tmp_path, max_document_chars=10**9, extract_timeout_seconds=8)
    engine = Engine(settings, embedder)
    admin, user = emu.add_member("kai", admin=True), emu.add_member("lea")
    await start_bot(engine)
    before = corpus_state(engine)

    pdf = UserFile("slow.pdf", shared_stream_pdf(200, long_lines(2000)), "application/pdf")
    interaction = await emu.send_slash_command(admin, "add", {"file": pdf})
    [progress] = await emu.wait_for_responses(interaction.id, 1, timeout=60)
    assert progress.body["data"]["content"] == "Adding slow.pdf…"
    assert "Park Jung-sook" in (await ask(emu, user, SECRETARIAT))["description"]
    assert "Park Jung-sook" in (await ask_by_mention(emu, user, SECRETARIAT))["description"]
    assert len(emu.interaction_responses(interaction.id)) == 1, "answered while the PDF was still being extracted"

    _, outcome = await emu.wait_for_responses(interaction.id, 2, timeout=60)
    took_too_long = "Nothing changed: slow.pdf took longer than EXTRACT\\_TIMEOUT\\_SECONDS (8 s)"  # escaped
    assert outcome.body["content"].startswith(took_too_long)
    assert corpus_state(engine) == before and server_index(engine, emu).sources().documents == []
    assert emu.failed_requests == []
