"""A corpus folder → documents: metadata plus cleaned, numbered paragraphs that point into the file's text.

A document is a `.txt` or `.md` file; paragraphs are separated by blank lines. An optional YAML front-matter
block between `---` lines gives title/source/url/date. A paragraph that is exactly `<!-- page N -->` (written by
`index.extract` for PDFs) is not kept: it gives page N to the paragraphs after it. Cleaning keeps offsets into the
text as read, so every quote can be traced back to the exact characters of the file.
"""

from __future__ import annotations

import datetime
import hashlib
import re
from dataclasses import dataclass, fields
from pathlib import Path

import yaml

SUFFIXES = (".txt", ".md", ".markdown")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)---[ \t]*\n", re.DOTALL)
_COPYRIGHT = re.compile(r"^\s*(?:copyright\b|©|\(c\)\s)", re.IGNORECASE)
_COPYRIGHT_OWNER = re.compile(
    r"^\s*(?:copyright\b)?\s*(?:©|\(c\))?\s*(?:\d{4}(?:\s*[-–]\s*\d{4})?,?\s*)?(?:by\s+)?(?P<owner>[^.;|]+)",
    re.IGNORECASE,
)
_HEADING = re.compile(r"^#{1,6}\s+")
_PAGE_MARKER = re.compile(r"<!-- page (\d+) -->")
MAX_FRONT_MATTER = 8192  # characters: a few metadata lines, never a document's worth of YAML
_SCALARS = (str, int, float, bool, datetime.date, type(None))  # datetime.datetime is a date


class CorpusError(Exception):
    """The corpus cannot be read; the message names the file and what is wrong with it."""


class DocumentError(Exception):
    """A document cannot be added or removed; the message is one line that says why and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))  # one line, whatever a library's error text holds


@dataclass(frozen=True)
class Paragraph:
    """A kept paragraph: its 1-based number in reading order, its span in the document's text, and the page it is
    on when the document marks pages."""

    number: int
    start: int
    end: int
    page: int | None = None


@dataclass(frozen=True, kw_only=True)
class Metadata:
    """What is known of a document besides its text: shared by the parsed document and the index's record of it."""

    id: str
    title: str
    source: str | None = None
    url: str | None = None
    date: str | None = None
    origin: str | None = None  # how it was added: "url" or "file" (front matter); None for a file put in by hand
    added: str | None = None


@dataclass(frozen=True, kw_only=True)
class Document(Metadata):
    """One corpus file: metadata, its text as read, and the paragraphs kept after cleaning."""

    text: str
    paragraphs: tuple[Paragraph, ...]

    def paragraph_text(self, paragraph: Paragraph) -> str:
        return self.text[paragraph.start : paragraph.end]

    @property
    def digest(self) -> str:
        """A hash of the kept paragraphs' words: equal for the same text however it was laid out."""
        words = " ".join(" ".join(self.paragraph_text(p).split()) for p in self.paragraphs)
        return hashlib.sha256(words.encode()).hexdigest()

    def info(self, passages: int) -> DocumentInfo:
        """What the index keeps of this document, cut into `passages` passages."""
        metadata = {f.name: getattr(self, f.name) for f in fields(Metadata)}
        return DocumentInfo(**metadata, paragraphs=len(self.paragraphs), passages=passages, digest=self.digest)


@dataclass(frozen=True, kw_only=True)
class DocumentInfo(Metadata):
    """What the index knows of a document: its metadata and how much of it was indexed."""

    paragraphs: int
    passages: int
    digest: str = ""


def corpus_files(corpus_dir: Path) -> list[Path]:
    """The document files of a corpus, in a stable order; a clear error when there are none."""
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus folder {corpus_dir} does not exist: set CORPUS_DIR to a folder of .txt/.md files")
    files = sorted(
        p for p in corpus_dir.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file() and not _hidden(p, corpus_dir)
    )
    if not files:
        raise CorpusError(f"corpus folder {corpus_dir} has no .txt or .md documents")
    return files


def has_documents(corpus_dir: Path) -> bool:
    """Whether the corpus folder exists and holds at least one document."""
    try:
        return bool(corpus_files(corpus_dir))
    except CorpusError:
        return False


def corpus_fingerprint(corpus_dir: Path) -> str:
    """A hash of every document's name and bytes: equal fingerprints mean nothing needs re-embedding."""
    digest = hashlib.sha256()
    for path in corpus_files(corpus_dir):
        digest.update(path.relative_to(corpus_dir).as_posix().encode() + b"\0")
        digest.update(_read_bytes(path) + b"\0")
    return digest.hexdigest()


def load_corpus(corpus_dir: Path) -> list[Document]:
    """Every document of the corpus folder, parsed and cleaned."""
    return [load_document(path, path.relative_to(corpus_dir).as_posix()) for path in corpus_files(corpus_dir)]


def load_document(path: Path, doc_id: str) -> Document:
    """Parse one file: front matter, paragraphs, duplicate and copyright removal."""
    try:
        text = _read_bytes(path).decode("utf-8-sig").replace("\r\n", "\n")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    return parse_document(text, path, doc_id)


def parse_document(text: str, path: Path, doc_id: str) -> Document:
    """A document from its text; `path` gives the kind (.txt or Markdown) and names it in errors."""
    meta, body_start = front_matter(text, path)
    spans, pages = _page_markers(text, paragraph_spans(text, body_start))
    copyright_spans = [s for s in spans if _COPYRIGHT.match(text[s[0] : s[1]])]
    kept = _drop_duplicates(text, [s for s in spans if s not in copyright_spans])
    if path.suffix.lower() != ".txt":
        kept = [s for s in kept if not _HEADING.match(text[s[0] : s[1]])]
    if not kept:
        raise CorpusError(f"{path}: no text paragraphs (the document is empty)")
    paragraphs = tuple(Paragraph(n, start, end, pages.get((start, end))) for n, (start, end) in enumerate(kept, 1))
    return Document(
        id=doc_id,
        title=_str(meta.get("title")) or _first_line(text, body_start) or path.stem,
        source=_str(meta.get("source")) or _copyright_owner(text, copyright_spans),
        url=_str(meta.get("url")),
        date=_str(meta.get("date")),
        text=text,
        paragraphs=paragraphs,
        origin=_str(meta.get("origin")),
        added=_str(meta.get("added")),
    )


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"{path}: cannot be read ({exc.strerror})") from exc


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def front_matter(text: str, path: Path) -> tuple[dict, int]:
    """The YAML front matter as a dict of single values, and the offset where the body starts; CorpusError for
    front matter that is too long, uses anchors or aliases, or holds anything but single values."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, 0
    if len(match.group(1)) > MAX_FRONT_MATTER:
        raise CorpusError(
            f"{path}: front matter is longer than {MAX_FRONT_MATTER:,} characters: keep it to title, source, url "
            "and date"
        )
    try:
        meta = yaml.load(match.group(1), Loader=_PlainLoader) or {}
    except _AnchorError as exc:
        raise CorpusError(
            f"{path}: front matter uses a YAML anchor or alias (&name, *name) on line {exc.line}, which could "
            "expand to megabytes: write each value out"
        ) from exc
    except yaml.YAMLError as exc:
        raise CorpusError(f"{path}: front matter is not valid YAML ({' '.join(str(exc).split())})") from exc
    if not isinstance(meta, dict):
        raise CorpusError(f"{path}: front matter must be key: value pairs (title, source, url, date)")
    for key, value in meta.items():
        if not isinstance(value, _SCALARS):
            raise CorpusError(
                f"{path}: front matter field {str(key)!r} holds a {type(value).__name__}, not a single value: give "
                "each field text, a number or a date"
            )
    return meta, match.end()


class _AnchorError(yaml.YAMLError):
    """Front matter uses an anchor or alias; `line` is the file's (front matter starts on line 2)."""

    def __init__(self, line: int) -> None:
        super().__init__(f"anchor or alias on line {line}")
        self.line = line


class _PlainLoader(yaml.SafeLoader):
    """The safe YAML loader without anchors and aliases, which let a few hundred bytes expand to megabytes."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        """Refuse an alias (*name) or an anchor (&name) before composing the node."""
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _AnchorError(event.start_mark.line + 2)
        return super().compose_node(parent, index)


def paragraph_spans(text: str, start: int) -> list[tuple[int, int]]:
    """Blank-line separated blocks of lines. A line repeated verbatim right after itself is dropped; what follows
    it starts a new paragraph, so every span stays one contiguous piece of the text."""
    spans: list[tuple[int, int]] = []
    previous: str | None = None
    joinable = False
    offset = start
    for raw in text[start:].split("\n"):
        line = raw.strip()
        if not line:
            previous, joinable = None, False
        elif line == previous:
            joinable = False
        else:
            line_start = offset + raw.index(line)
            line_end = line_start + len(line)
            if joinable:
                spans[-1] = (spans[-1][0], line_end)
            else:
                spans.append((line_start, line_end))
            previous, joinable = line, True
        offset += len(raw) + 1
    return spans


def _page_markers(text: str, spans: list[tuple[int, int]]) -> tuple[list[tuple[int, int]], dict[tuple[int, int], int]]:
    """Drop the `<!-- page N -->` marker paragraphs; map every other span after a marker to that marker's page."""
    kept: list[tuple[int, int]] = []
    pages: dict[tuple[int, int], int] = {}
    page = None
    for start, end in spans:
        marker = _PAGE_MARKER.fullmatch(text[start:end])
        if marker:
            page = int(marker.group(1))
            continue
        kept.append((start, end))
        if page is not None:
            pages[(start, end)] = page
    return kept, pages


def _drop_duplicates(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Keep the first of paragraphs whose whitespace-normalised text is identical."""
    seen: set[str] = set()
    kept = []
    for start, end in spans:
        key = " ".join(text[start:end].split())
        if key not in seen:
            seen.add(key)
            kept.append((start, end))
    return kept


def _copyright_owner(text: str, spans: list[tuple[int, int]]) -> str | None:
    """The owner named by the first copyright line ("Copyright © BusinessKorea. ..." → "BusinessKorea")."""
    for start, end in spans:
        match = _COPYRIGHT_OWNER.match(text[start:end])
        owner = match.group("owner").strip(" ,") if match else ""
        owner = re.sub(r"\s*all rights reserved\s*$", "", owner, flags=re.IGNORECASE)
        if owner:
            return owner
    return None


def _first_line(text: str, start: int) -> str:
    """The first line of the body that is not a page marker, without its heading marks."""
    lines = (line.strip() for line in text[start:].split("\n"))
    first = next((line for line in lines if line and not _PAGE_MARKER.fullmatch(line)), "")
    return _HEADING.sub("", first).strip()


def _str(value: object) -> str | None:
    """A front-matter value as stripped text; None when missing or blank."""
    text = "" if value is None else str(value).strip()
    return text or None
