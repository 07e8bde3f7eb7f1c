"""Bytes of a web page, PDF, Markdown or text file → a corpus document: Markdown with YAML front matter.

The type is read from the bytes and checked against what the sender declared (Content-Type, file name). Web
pages keep only their main text (trafilatura drops navigation, ads and comments); PDFs keep their page numbers as
`<!-- page N -->` marker paragraphs, which `index.documents` turns into each paragraph's page. Every refusal is an
`ExtractError` whose message is one line for the user.
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pypdf
import trafilatura
import yaml

from index.documents import CorpusError, DocumentError, front_matter

SUPPORTED = ".txt .md .html .pdf"
MIN_MAIN_TEXT = 80  # characters of non-heading text below which a web page has no main text worth indexing
MAX_NAME = 60
_PDF_TYPES = {"application/pdf", "application/x-pdf"}
_HTML_TYPES = {"text/html", "application/xhtml+xml"}
_TEXT_TYPES = {"text/plain", "text/markdown", "text/x-markdown"}
_UNDECLARED_TYPES = {"", "application/octet-stream", "binary/octet-stream"}
_SUFFIX_KINDS = {".pdf": "pdf", ".html": "html", ".htm": "html", ".xhtml": "html"} | {
    suffix: "text" for suffix in (".txt", ".md", ".markdown")
}
_HTML_START = re.compile(rb"\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head)\b", re.IGNORECASE | re.DOTALL)
_SENTENCE_END = re.compile(r"[.!?:;…][\"'”’)\]]*$")
_HEADING = re.compile(r"^#{1,6}\s+")


class ExtractError(DocumentError):
    """The bytes cannot become a document; the message is one line that tells the user why."""


@dataclass(frozen=True)
class Extracted:
    """A document's title, its body (paragraphs separated by blank lines), and metadata (source, url, date...)."""

    title: str
    text: str
    meta: dict[str, str]


def extract(data: bytes, content_type: str = "", filename: str = "", url: str = "") -> Extracted:
    """The document in `data`, typed from its bytes and checked against the declared type and file name."""
    name = filename or url or "the document"
    kind = _detect_kind(data, content_type, filename, name)
    if kind == "pdf":
        extracted = _from_pdf(data, name)
    elif kind == "html":
        extracted = _from_html(data, name, url)
    else:
        extracted = _from_text(data, name)
    meta = extracted.meta | ({"url": url} if url else {})
    return Extracted(extracted.title or _stem(filename) or "Untitled document", extracted.text, meta)


def _detect_kind(data: bytes, content_type: str, filename: str, name: str) -> str:
    """What the bytes are (pdf, html or text), refused when they contradict the declared type."""
    declared = _declared_kind(content_type, filename)
    if data.startswith(b"%PDF"):
        return "pdf"
    if declared == "pdf":
        raise ExtractError(f"{name} is declared as a PDF but is not one (it does not start with %PDF)")
    if declared == "unsupported" or b"\0" in data[:8192]:
        raise ExtractError(f"{name} is not a supported type: send one of {SUPPORTED}")
    if declared == "html" or (declared is None and _HTML_START.match(data[:4096])):
        return "html"
    return "text"


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
    """The fields that have a value, each on one line."""
    return {key: " ".join(str(value).split()) for key, value in fields.items() if value and str(value).strip()}


def _first_line(text: str) -> str:
    """The first line of a text without its Markdown heading marks, as a title."""
    return _HEADING.sub("", text.split("\n", 1)[0]).strip()[:200]


def _from_html(data: bytes, name: str, url: str) -> Extracted:
    """A web page's main text as Markdown, and its title, author, date and site name."""
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


def _from_pdf(data: bytes, name: str) -> Extracted:
    """A PDF's text, page by page behind `<!-- page N -->` markers, and its title, author and date."""
    reader = _pdf_reader(data, name)
    pages = [(number, _page_paragraphs(page)) for number, page in enumerate(reader.pages, start=1)]
    pages = [(number, paragraphs) for number, paragraphs in pages if paragraphs]
    if not pages:
        raise ExtractError(f"{name} looks like a scan: no text to extract (run OCR on it first)")
    body = "\n\n".join(f"<!-- page {n} -->\n\n" + "\n\n".join(paragraphs) for n, paragraphs in pages)
    info: Mapping[str, object] = reader.metadata or {}
    title = str(info.get("/Title") or "").strip() or _first_line(pages[0][1][0])
    fields = {"author": info.get("/Author"), "date": _pdf_date(str(info.get("/CreationDate") or ""))}
    return Extracted(title, body, _present(fields))


def _pdf_reader(data: bytes, name: str) -> pypdf.PdfReader:
    """An open pypdf reader, decrypted when it has an empty password; ExtractError when pypdf cannot read it."""
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractError(f"{name} is password-protected: send an unprotected PDF")
        pages = len(reader.pages)
    except ExtractError:
        raise
    except Exception as exc:  # pypdf raises many types on malformed input
        raise ExtractError(f"{name} is not a readable PDF ({type(exc).__name__}: {exc})") from exc
    if not pages:
        raise ExtractError(f"{name} has no pages")
    return reader


def _page_paragraphs(page: pypdf.PageObject) -> list[str]:
    """A PDF page's text as paragraphs: lines joined, a break after a short line that ends a sentence; a short
    line that opens a paragraph without ending a sentence (a heading) stands alone."""
    try:
        text = page.extract_text() or ""
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
