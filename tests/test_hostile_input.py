"""Hostile documents and URLs: each is refused (or handled) within bounded work, with a one-line message, and
nothing reaches the corpus. The hostile files are built here, byte by byte; parsing runs in the real child process
(index.extract), and the corpus checks go through the real IndexManager with the real embedding model."""

from __future__ import annotations

import re
import shutil
import socket
import zlib
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from conftest import own_settings

from bot.knowledge import index_manager
from bot.settings import BUNDLED_CORPUS
from index.documents import DocumentError
from index.embedder import Embedder
from index.extract import DEFAULT_LIMITS, ExtractError, ExtractLimits, extract
from index.fetch import FetchError, FetchPolicy, fetch
from index.manager import IndexManager

pytestmark = pytest.mark.timeout(60)  # a bound against hanging, not a speed test

FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
ALIAS_BOMB = (
    b"---\n"
    b'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    b"b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
    b"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    b"title: *d\n"
    b"---\n"
    b"A short body.\n"
)
PNG = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde"
TEN_MB_LINE = b"word " * 2_000_000


def pdf_file(objects: list[bytes]) -> bytes:
    """A PDF whose object N+1 is objects[N] (object 1 the catalog), with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def stream(data: bytes) -> bytes:
    """A Flate-compressed stream object."""
    packed = zlib.compress(data, 9)
    return b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(packed), packed)


def page(parent: int) -> bytes:
    """A page drawing content stream 5 in font 6."""
    return (
        b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents 5 0 R "
        b"/Resources << /Font << /F1 6 0 R >> >> >>" % parent
    )


def repeated_page_tree(fanout: int) -> bytes:
    """A page tree whose root lists one /Pages node `fanout` times, which lists one page `fanout` times: fanout²
    pages from a few kilobytes."""
    return pdf_file(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join([b"3 0 R"] * fanout), fanout * fanout),
            b"<< /Type /Pages /Parent 2 0 R /Kids [%s] /Count %d >>" % (b" ".join([b"4 0 R"] * fanout), fanout),
            page(3),
            stream(b"BT /F1 12 Tf 72 720 Td (A page that repeats.) Tj ET"),
            FONT,
        ]
    )


def shared_stream_pdf(pages: int, content: bytes) -> bytes:
    """`pages` pages that all draw the one content stream `content`."""
    return pdf_file(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join([b"4 0 R"] * pages), pages),
            b"<< /Type /Pages /Kids [] /Count 0 >>",
            page(2),
            stream(content),
            FONT,
        ]
    )


def long_lines(count: int) -> bytes:
    """A content stream of `count` lines of text (about 60 characters of text each)."""
    line = b"BT /F1 10 Tf 72 %d Td (Every page draws this same long line of words again and again.) Tj ET\n"
    return b"".join(line % (700 - i % 600) for i in range(count))


def refusal(data: bytes, limits: ExtractLimits = DEFAULT_LIMITS, **declared: str) -> str:
    """The one-line message `extract` refuses `data` with."""
    with pytest.raises(ExtractError) as caught:
        extract(data, limits=limits, **declared)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.fixture(autouse=True)
def no_child_left() -> Iterator[None]:
    """Every extraction's child process has ended (been killed, at a timeout) when `extract` returns."""
    yield
    assert psutil.Process().children(recursive=True) == []


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every DNS lookup or connection attempted, each refused: a test using this never leaves the machine."""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("this test opens no connection")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


def test_a_page_tree_that_repeats_its_entries_stops_at_max_document_pages() -> None:
    ninety_thousand = repeated_page_tree(300)
    assert len(ninety_thousand) < 5000
    assert refusal(ninety_thousand, filename="tree.pdf") == (
        "tree.pdf has more than MAX_DOCUMENT_PAGES (500) pages: split it into smaller documents or raise "
        "MAX_DOCUMENT_PAGES"
    )
    hundred = repeated_page_tree(10)
    assert "MAX_DOCUMENT_PAGES (99)" in refusal(hundred, ExtractLimits(max_pages=99), filename="tree.pdf")
    text = extract(hundred, filename="tree.pdf", limits=ExtractLimits(max_pages=100)).text
    assert text.count("<!-- page") == 100 and text.endswith("<!-- page 100 -->\n\nA page that repeats.")


def test_pages_sharing_one_huge_content_stream_stop_at_max_document_chars() -> None:
    pdf = shared_stream_pdf(200, long_lines(2000))  # each page draws 2000 lines: about 130,000 characters
    assert "MAX_DOCUMENT_CHARS (2,000,000) characters of text" in refusal(pdf, filename="shared.pdf")


def test_an_extraction_past_the_timeout_is_killed_and_refused() -> None:
    pdf = shared_stream_pdf(200, long_lines(2000))
    limits = ExtractLimits(max_chars=10**9, timeout_seconds=1.5)
    assert refusal(pdf, limits, filename="slow.pdf") == (
        "slow.pdf took longer than EXTRACT_TIMEOUT_SECONDS (1.5 s) to extract: it may be malformed; raise "
        "EXTRACT_TIMEOUT_SECONDS if it is a genuine, very long document"
    )


def test_a_decompression_bomb_is_stopped_by_the_child_memory_limit() -> None:
    bomb = shared_stream_pdf(1, b"BT /F1 10 Tf 72 700 Td (" + b"x" * 70_000_000 + b") Tj ET")
    assert len(bomb) < 100_000
    limits = ExtractLimits(max_chars=10**9, memory_bytes=200 * 2**20)
    message = refusal(bomb, limits, filename="bomb.pdf")
    assert message == "bomb.pdf needs more than 200 MB of memory to extract: split it into smaller files"


def test_a_pdf_that_is_not_a_pdf_is_refused() -> None:
    assert "bogus.pdf is not a readable PDF" in refusal(b"%PDF-1.7\n" + bytes(range(256)) * 40, filename="bogus.pdf")
    assert refusal(repeated_page_tree(300)[:2000], filename="cut.pdf").startswith("cut.pdf ")
    assert refusal(b"<!DOCTYPE html><html><body>Hi</body></html>", filename="page.pdf") == (
        "page.pdf is declared as a PDF but is not one (it does not start with %PDF-)"
    )
    assert refusal(repeated_page_tree(3), filename="notes.txt").startswith("notes.txt is a PDF but is declared as .txt")


def test_front_matter_with_aliases_lists_or_too_much_yaml_is_refused() -> None:
    assert refusal(ALIAS_BOMB, filename="bomb.md") == (
        "bomb.md: front matter uses a YAML anchor or alias (&name, *name) on line 2, which could expand to "
        "megabytes: write each value out"
    )
    listed = b"---\ntitle: Oars\ntags: [rowing, boats]\n---\nBody.\n"
    assert "front matter field 'tags' holds a list, not a single value" in refusal(listed, filename="oars.md")
    long = b"---\ntitle: " + b"x" * 9000 + b"\n---\nBody.\n"
    assert "front matter is longer than 8,192 characters" in refusal(long, filename="long.md")


def test_a_ten_megabyte_single_line_is_refused_within_the_limits_or_read_within_larger_ones() -> None:
    assert "MAX_DOCUMENT_CHARS (2,000,000)" in refusal(TEN_MB_LINE, filename="line.txt")
    read = extract(TEN_MB_LINE, filename="line.txt", limits=ExtractLimits(max_chars=20_000_000))
    assert len(read.text) == len(TEN_MB_LINE) - 1 and len(read.title) == 200


def test_binary_data_named_as_text_is_refused() -> None:
    assert refusal(PNG, filename="notes.md").startswith("notes.md holds binary data (a NUL byte at byte 8)")
    late_nul = b"Harbour notes. " * 1000 + b"\0"
    assert "a NUL byte at byte 15,000" in refusal(late_nul, filename="notes.txt")


@pytest.mark.parametrize(
    "url",
    ["http://[::ffff:a.example]/", "http://[1::2::3]:8080/", "http://a%2eexample/", "http://1.2.3.4.5/"],
)
async def test_a_host_that_is_neither_a_name_nor_an_address_is_refused_before_any_connection(
    url: str, connections: list[object]
) -> None:
    for policy in (FetchPolicy(), FetchPolicy(allow_private=True)):
        with pytest.raises(FetchError, match="is neither a domain name nor an IP address: check the URL"):
            await fetch(url, policy)
    assert connections == []


async def test_the_private_address_refusal_names_the_host_but_not_the_address() -> None:
    with pytest.raises(FetchError) as caught:
        await fetch("http://localhost:9/", FetchPolicy())  # resolved from /etc/hosts, never connected to
    message = str(caught.value)
    assert message.startswith("localhost resolves to a private address; set ALLOW_PRIVATE_URLS=true")
    assert "127.0.0.1" not in message and "::1" not in message


@pytest.fixture(scope="module")
def indexes(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> IndexManager:
    """The live index of a writable copy of the bundled corpus, with a cap of 50 pages (set as MAX_DOCUMENT_PAGES)."""
    folder = tmp_path_factory.mktemp("hostile")
    corpus = Path(shutil.copytree(BUNDLED_CORPUS, folder / "corpus"))
    return index_manager(own_settings(corpus, folder, max_document_pages=50), embedder)


def corpus_state(indexes: IndexManager) -> tuple[list[Path], list[str]]:
    """The corpus folder's files and the indexed documents."""
    corpus = indexes.config.corpus_dir
    return sorted(corpus.rglob("*")), sorted(doc.id for doc in indexes.sources().documents)


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    ("filename", "data", "problem"),
    [
        ("tree.pdf", repeated_page_tree(300), "more than MAX_DOCUMENT_PAGES (50) pages"),
        ("shared.pdf", shared_stream_pdf(40, long_lines(2000)), "more than MAX_DOCUMENT_CHARS"),
        ("bomb.md", ALIAS_BOMB, "YAML anchor or alias"),
        ("notes.txt", repeated_page_tree(3), "is a PDF but is declared as .txt"),
        ("notes.md", PNG, "holds binary data"),
        ("line.txt", TEN_MB_LINE, "more than MAX_DOCUMENT_CHARS"),
    ],
)
def test_a_hostile_file_adds_nothing(indexes: IndexManager, filename: str, data: bytes, problem: str) -> None:
    before = corpus_state(indexes)
    with pytest.raises(DocumentError, match=re.escape(problem)):
        indexes.add_file(filename, data)
    assert corpus_state(indexes) == before


@pytest.mark.timeout(180)
def test_a_hostile_url_adds_nothing(indexes: IndexManager, connections: list[object]) -> None:
    before = corpus_state(indexes)
    with pytest.raises(FetchError, match="neither a domain name nor an IP address"):
        indexes.add_url("http://[::ffff:a.example]/")
    assert corpus_state(indexes) == before and connections == []


@pytest.mark.timeout(180)
def test_a_file_named_to_climb_out_of_the_corpus_lands_inside_it_under_its_title(indexes: IndexManager) -> None:
    corpus = indexes.config.corpus_dir
    text = b"Harbour lights\n\nThe harbour lights were first lit in 1871 by the keeper of the north pier.\n"
    change = indexes.add_file("../../x.txt", text)
    assert change.document.id == "harbour-lights.md"
    assert (corpus / "harbour-lights.md").is_file()
    assert not (corpus.parent.parent / "x.txt").exists() and not (corpus.parent / "x.txt").exists()
