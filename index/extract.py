"""Bytes of a web page, PDF, Markdown or text file → a corpus document: Markdown with YAML front matter.

The type is read from the bytes and must agree with what the sender declared (Content-Type, file name). Web
pages keep only their main text (trafilatura drops navigation, ads and comments); PDFs keep their page numbers as
`<!-- page N -->` marker paragraphs, which `index.documents` turns into each paragraph's page. Parsing runs in a
child process bounded in time, memory, pages and characters (`ExtractLimits`), so a hostile file costs at most
those; the parsers (trafilatura, pypdf) are imported only there. Every refusal is an `ExtractError` whose message
is one line for the user.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import re
import subprocess
import sys
import unicodedata
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import yaml

from index.documents import CorpusError, DocumentError, front_matter

if TYPE_CHECKING:
    import pypdf

log = logging.getLogger(__name__)

SUPPORTED = ".txt .md .html .pdf"
MIN_MAIN_TEXT = 80  # characters of non-heading text below which a web page has no main text worth indexing
MAX_NAME = 60
MAX_FIELD = 500  # characters of one front-matter field (title, url, author...)
_PDF_TYPES = {"application/pdf", "application/x-pdf"}
_HTML_TYPES = {"text/html", "application/xhtml+xml"}
_TEXT_TYPES = {"text/plain", "text/markdown", "text/x-markdown"}
_UNDECLARED_TYPES = {"", "application/octet-stream", "binary/octet-stream"}
_SUFFIX_KINDS = {".pdf": "pdf", ".html": "html", ".htm": "html", ".xhtml": "html"} | {
    suffix: "text" for suffix in (".txt", ".md", ".markdown")
}
# (declared, found) pairs that agree: a page declared as HTML may lack a doctype; nothing else may differ.
_AGREEING = {("pdf", "pdf"), ("html", "html"), ("html", "text"), ("text", "text")}
_KIND_NAMES = {"pdf": "a PDF", "html": "a web page (HTML)", "text": "plain text"}
_KIND_SUFFIXES = {"pdf": ".pdf", "html": ".html", "text": ".txt or .md"}
_HTML_START = re.compile(rb"\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head)\b", re.IGNORECASE | re.DOTALL)
_SENTENCE_END = re.compile(r"[.!?:;…][\"'”’)\]]*$")
_HEADING = re.compile(r"^#{1,6}\s+")
# A fresh interpreter that imports only this module; -P keeps the working folder off sys.path.
_CHILD = (sys.executable, "-P", "-c", "from index.extract import _child_main; _child_main()")
_CHILD_ENV = ("PYTHON", "LC_", "LANG", "PATH", "TMPDIR")  # prefixes of the variables the child inherits


class ExtractError(DocumentError):
    """The bytes cannot become a document; the message is one line that tells the user why."""


@dataclass(frozen=True)
class Extracted:
    """A document's title, its body (paragraphs separated by blank lines), and metadata (source, url, date...)."""

    title: str
    text: str
    meta: dict[str, str]


@dataclass(frozen=True)
class ExtractLimits:
    """The most one document may cost: pages, characters of text, and the child process's seconds and memory
    (MAX_DOCUMENT_PAGES, MAX_DOCUMENT_CHARS, EXTRACT_TIMEOUT_SECONDS)."""

    max_pages: int = 500
    max_chars: int = 2_000_000
    timeout_seconds: float = 60.0
    memory_bytes: int = 1 << 30


DEFAULT_LIMITS = ExtractLimits()


def extract(
    data: bytes, content_type: str = "", filename: str = "", url: str = "", limits: ExtractLimits = DEFAULT_LIMITS
) -> Extracted:
    """The document in `data`, typed from its bytes (which must agree with the declared type and file name) and
    parsed in a child process under `limits`."""
    name = filename or url or "the document"
    kind = _detect_kind(data, content_type, filename, name)
    extracted = _in_child(data, kind, name, url, limits)
    meta = extracted.meta | ({"url": url} if url else {})
    return Extracted(extracted.title or _stem(filename) or "Untitled document", extracted.text, meta)


def _detect_kind(data: bytes, content_type: str, filename: str, name: str) -> str:
    """What the bytes are (pdf, html or text); refused when they are binary or contradict the declared type."""
    declared = _declared_kind(content_type, filename)
    if declared == "unsupported":
        raise ExtractError(f"{name} is not a supported type: send one of {SUPPORTED}")
    found = _content_kind(data, name)
    if declared is None:
        return found
    if declared == "pdf" and found != "pdf":
        raise ExtractError(f"{name} is declared as a PDF but is not one (it does not start with %PDF-)")
    if (declared, found) not in _AGREEING:
        raise ExtractError(
            f"{name} is {_KIND_NAMES[found]} but is declared as {_declared_as(content_type, filename)}: "
            f"send it as a {_KIND_SUFFIXES[found]} file"
        )
    return declared


def _content_kind(data: bytes, name: str) -> str:
    """The kind the bytes themselves show: a PDF header, HTML markup, else text; binary data is refused."""
    if data.startswith(b"%PDF-"):
        return "pdf"
    nul = data.find(b"\0")
    if nul >= 0:
        raise ExtractError(
            f"{name} holds binary data (a NUL byte at byte {nul:,}), which is not a supported type: "
            f"send one of {SUPPORTED}"
        )
    return "html" if _HTML_START.match(data[:4096]) else "text"


def _declared_as(content_type: str, filename: str) -> str:
    """How the sender declared the type, for a message: the file name's suffix, else the Content-Type."""
    suffix = PurePosixPath(filename).suffix.lower() if filename else ""
    return suffix or content_type.split(";", 1)[0].strip().lower()


def _in_child(data: bytes, kind: str, name: str, url: str, limits: ExtractLimits) -> Extracted:
    """`data` parsed by a fresh interpreter that is killed at `limits.timeout_seconds` and sets its own memory
    limit. A subprocess rather than multiprocessing: spawn and forkserver children re-import the parent's
    `__main__` (the `articlebot` command imports torch, seconds per document), fork would copy a process full of
    threads and models, and `preexec_fn` is unsafe in a threaded parent."""
    job = json.dumps({"kind": kind, "name": name, "url": url, "limits": dataclasses.asdict(limits)}).encode()
    try:
        done = subprocess.run(
            _CHILD,
            input=job + b"\n" + data,
            stdout=subprocess.PIPE,
            timeout=limits.timeout_seconds,
            env=_child_env(),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:  # subprocess.run has killed the child
        raise ExtractError(
            f"{name} took longer than EXTRACT_TIMEOUT_SECONDS ({limits.timeout_seconds:g} s) to extract: it may be "
            "malformed; raise EXTRACT_TIMEOUT_SECONDS if it is a genuine, very long document"
        ) from exc
    return _child_result(done, name)


def _child_env() -> dict[str, str]:
    """Python's and the locale's variables only (no token or key reaches the parser), with this package's folder
    first on PYTHONPATH so that the child runs this very code."""
    env = {key: value for key, value in os.environ.items() if key.startswith(_CHILD_ENV)}
    paths = [str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")]
    return env | {"PYTHONPATH": os.pathsep.join(path for path in paths if path)}


def _child_result(done: subprocess.CompletedProcess[bytes], name: str) -> Extracted:
    """The document the child printed, or its refusal as an ExtractError; one too when it died without a word."""
    try:
        result = json.loads(done.stdout)
    except ValueError:
        status = _exit_status(done.returncode)
        log.warning("the extraction of %s stopped without a result (%s)", name, status)
        raise ExtractError(
            f"{name} could not be extracted: the extraction process stopped ({status}); the file may be malformed"
        ) from None
    if "error" in result:
        raise ExtractError(result["error"])
    return Extracted(result["title"], result["text"], result["meta"])


def _exit_status(code: int) -> str:
    """A process's exit code in words ("killed by signal 9", "exit status 1")."""
    return f"killed by signal {-code}" if code < 0 else f"exit status {code}"


def _child_main() -> None:
    """The child process: a JSON job line then the document's bytes on stdin; the outcome as JSON on stdout."""
    job = json.loads(sys.stdin.buffer.readline())
    data = sys.stdin.buffer.read()
    limits = ExtractLimits(**job["limits"])
    _limit_memory(limits.memory_bytes)
    logging.disable(logging.WARNING)  # a malformed PDF can log a warning per object: keep the bot's log readable
    warnings.simplefilter("ignore")
    out, sys.stdout = sys.stdout, sys.stderr  # nothing but the outcome goes to stdout
    out.write(json.dumps(_outcome(data, job["kind"], job["name"], job["url"], limits)))
    out.flush()


def _limit_memory(memory_bytes: int) -> None:
    """Cap this process's address space, within any hard limit already set, so a bomb raises MemoryError."""
    import resource  # POSIX only, as the child is

    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def _outcome(data: bytes, kind: str, name: str, url: str, limits: ExtractLimits) -> dict[str, object]:
    """The extracted document as a dict, or {"error": one line for the user}."""
    try:
        return dataclasses.asdict(_parse(data, kind, name, url, limits))
    except ExtractError as exc:
        return {"error": str(exc)}
    except MemoryError:
        megabytes = limits.memory_bytes // 2**20
        return {"error": f"{name} needs more than {megabytes:,} MB of memory to extract: split it into smaller files"}
    except Exception as exc:  # a parser's failure on malformed input: one line, not a traceback
        return {"error": f"{name} could not be extracted ({_brief(exc)})"}


def _parse(data: bytes, kind: str, name: str, url: str, limits: ExtractLimits) -> Extracted:
    """The document in bytes already typed as `kind`, refused when its text is longer than the limit."""
    if kind == "pdf":
        extracted = _from_pdf(data, name, limits)
    elif kind == "html":
        extracted = _from_html(data, name, url)
    else:
        extracted = _from_text(data, name)
    if len(extracted.text) > limits.max_chars:
        raise _too_long(name, limits.max_chars)
    return extracted


def _too_long(name: str, max_chars: int) -> ExtractError:
    """The refusal of a document with more text than MAX_DOCUMENT_CHARS."""
    return ExtractError(
        f"{name} has more than MAX_DOCUMENT_CHARS ({max_chars:,}) characters of text: split it into smaller "
        "documents or raise MAX_DOCUMENT_CHARS"
    )


def _brief(exc: BaseException) -> str:
    """An exception as "Type: message", the message cut short: a parser may quote the hostile input."""
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def to_markdown(extracted: Extracted, origin: str, added: str) -> str:
    """The corpus file: YAML front matter (title, source, url, date, author, added, origin), then the body."""
    fields = {
        "title": extracted.title,
        "source": extracted.meta.get("source"),
        "url": extracted.meta.get("url"),
        "date": extracted.meta.get("date"),
        "author": extracted.meta.get("author"),
        "added": added,
        "origin": origin,
    }
    header = yaml.safe_dump(_present(fields), sort_keys=False, allow_unicode=True, width=10_000)
    return f"---\n{header}---\n\n{extracted.text.strip()}\n"


def document_name(extracted: Extracted) -> str:
    """A safe file name for the document: a lower-case ASCII slug of its title, at most 60 characters, ending .md."""
    ascii_title = unicodedata.normalize("NFKD", extracted.title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    slug = slug[: MAX_NAME - len(".md")].rstrip("-")
    return f"{slug or 'document'}.md"


def _declared_kind(content_type: str, filename: str) -> str | None:
    """The kind the sender claims (the file name's suffix first, then the Content-Type); None when nothing useful."""
    suffix = PurePosixPath(filename).suffix.lower() if filename else ""
    if suffix:
        return _SUFFIX_KINDS.get(suffix, "unsupported")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in _UNDECLARED_TYPES:
        return None
    if media_type in _PDF_TYPES:
        return "pdf"
    if media_type in _HTML_TYPES:
        return "html"
    return "text" if media_type in _TEXT_TYPES else "unsupported"


def _stem(filename: str) -> str:
    """The file name without folder and suffix, as a fallback title."""
    return PurePosixPath(filename).stem.strip() if filename else ""


def _from_text(data: bytes, name: str) -> Extracted:
    """Markdown or plain text as is: UTF-8 only; its own front matter, if any, gives the metadata."""
    try:
        text = data.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as exc:
        raise ExtractError(f"{name} is not UTF-8 text ({exc.reason} at byte {exc.start}): save it as UTF-8") from exc
    try:
        meta, body_start = front_matter(text, Path(name))
    except CorpusError as exc:
        raise ExtractError(str(exc)) from exc
    body = text[body_start:].strip()
    if not body:
        raise ExtractError(f"{name} has no text")
    fields = {key: meta.get(key) for key in ("source", "url", "date", "author")}
    return Extracted(str(meta.get("title") or "").strip() or _first_line(body), body, _present(fields))


def _present(fields: Mapping[str, object]) -> dict[str, str]:
    """The fields that have a value, each on one line of at most MAX_FIELD printable characters: whatever a PDF's
    metadata holds, the front matter stays well within index.documents.MAX_FRONT_MATTER."""
    lines = {key: _one_line(value) for key, value in fields.items() if value}
    return {key: line for key, line in lines.items() if line}


def _one_line(value: object) -> str:
    """A value as one line of printable characters, cut at MAX_FIELD."""
    return " ".join("".join(c if c.isprintable() else " " for c in str(value)).split())[:MAX_FIELD]


def _first_line(text: str) -> str:
    """The first line of a text without its Markdown heading marks, as a title."""
    return _HEADING.sub("", text.split("\n", 1)[0]).strip()[:200]


def _from_html(data: bytes, name: str, url: str) -> Extracted:
    """A web page's main text as Markdown, and its title, author, date and site name."""
    import trafilatura

    tree = trafilatura.load_html(data)
    if tree is None:
        raise ExtractError(f"{name} is not a readable web page")
    meta = trafilatura.extract_metadata(tree, default_url=url or None)
    body = trafilatura.extract(tree, url=url or None, output_format="markdown", include_comments=False) or ""
    prose = "".join(line for line in body.splitlines() if not _HEADING.match(line))
    if len(prose.strip()) < MIN_MAIN_TEXT:
        raise ExtractError(f"{name} has no main text to extract (only navigation, or too little text)")
    fields = {"source": meta.sitename, "date": meta.date, "author": meta.author}
    return Extracted(meta.title or _first_line(body), body.strip(), _present(fields))


def _from_pdf(data: bytes, name: str, limits: ExtractLimits) -> Extracted:
    """A PDF's text, page by page behind `<!-- page N -->` markers, and its title, author and date. pypdf walks
    at most twice MAX_DOCUMENT_PAGES page-tree entries, so a tree that repeats its entries stops early."""
    import pypdf

    with pypdf.apply_configuration(page_tree_maximum_entries=2 * limits.max_pages + 10):
        reader = _pdf_reader(data, name, limits.max_pages)
        pages = _pdf_pages(reader, name, limits.max_chars)
        info: Mapping[str, object] = reader.metadata or {}
    if not pages:
        raise ExtractError(f"{name} looks like a scan: no text to extract (run OCR on it first)")
    body = "\n\n".join(f"<!-- page {n} -->\n\n" + "\n\n".join(paragraphs) for n, paragraphs in pages)
    title = str(info.get("/Title") or "").strip() or _first_line(pages[0][1][0])
    fields = {"author": info.get("/Author"), "date": _pdf_date(str(info.get("/CreationDate") or ""))}
    return Extracted(title, body, _present(fields))


def _pdf_reader(data: bytes, name: str, max_pages: int) -> pypdf.PdfReader:
    """An open pypdf reader, decrypted when it has an empty password; ExtractError when pypdf cannot read it or
    it has no pages or more than `max_pages`."""
    import pypdf
    from pypdf.errors import LimitReachedError

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractError(f"{name} is password-protected: send an unprotected PDF")
        pages = len(reader.pages)
    except (ExtractError, MemoryError):
        raise
    except LimitReachedError as exc:
        raise _too_many_pages(name, max_pages) from exc
    except Exception as exc:  # pypdf raises many types on malformed input
        raise ExtractError(f"{name} is not a readable PDF ({_brief(exc)})") from exc
    if not pages:
        raise ExtractError(f"{name} has no pages")
    if pages > max_pages:
        raise _too_many_pages(name, max_pages)
    return reader


def _too_many_pages(name: str, max_pages: int) -> ExtractError:
    """The refusal of a PDF with more pages than MAX_DOCUMENT_PAGES."""
    return ExtractError(
        f"{name} has more than MAX_DOCUMENT_PAGES ({max_pages:,}) pages: split it into smaller documents or raise "
        "MAX_DOCUMENT_PAGES"
    )


def _pdf_pages(reader: pypdf.PdfReader, name: str, max_chars: int) -> list[tuple[int, list[str]]]:
    """The paragraphs of every page that has text, with its number; refused as soon as the text passes
    `max_chars`, so pages sharing one huge content stream stop early."""
    pages: list[tuple[int, list[str]]] = []
    chars = 0
    for number, page in enumerate(reader.pages, start=1):
        paragraphs = _page_paragraphs(page)
        chars += sum(len(paragraph) + 2 for paragraph in paragraphs)
        if chars > max_chars:
            raise _too_long(name, max_chars)
        if paragraphs:
            pages.append((number, paragraphs))
    return pages


def _page_paragraphs(page: pypdf.PageObject) -> list[str]:
    """A PDF page's text as paragraphs: lines joined, a break after a short line that ends a sentence; a short
    line that opens a paragraph without ending a sentence (a heading) stands alone."""
    try:
        text = page.extract_text() or ""
    except MemoryError:
        raise
    except Exception:  # a page pypdf cannot decode is treated as a page without text
        return []
    lines = [line.strip() for line in text.replace("\r", "\n").split("\n")]
    width = max((len(line) for line in lines), default=0)
    paragraphs: list[str] = []
    current = ""
    for line in lines:
        if line:
            current = _join(current, line)
        heading = current == line and _looks_like_heading(line, width)
        if current and (not line or heading or (_SENTENCE_END.search(line) and len(line) < 0.85 * width)):
            paragraphs.append(current)
            current = ""
    return [*paragraphs, current] if current else paragraphs


def _looks_like_heading(line: str, width: int) -> bool:
    """A line that ends no sentence and is short, or written in title case ("Annual Report of the Club")."""
    if _SENTENCE_END.search(line):
        return False
    words = line.split()
    capitalised = sum(word[:1].isupper() or word[:1].isdigit() for word in words)
    return len(line) < 0.6 * width or (len(words) <= 12 and capitalised >= 0.6 * len(words))


def _join(text: str, line: str) -> str:
    """Append a line to a paragraph, undoing a word hyphenated across the line break."""
    if not text:
        return line
    if text.endswith("-") and text[-2:-1].isalpha() and line[:1].islower():
        return text[:-1] + line
    return f"{text} {line}"


def _pdf_date(value: str) -> str:
    """A PDF date ("D:20240305120000Z") as YYYY-MM-DD; empty when it is not one."""
    match = re.match(r"D:(\d{4})(\d{2})?(\d{2})?", value)
    if not match:
        return ""
    return "-".join(part for part in match.groups() if part)
