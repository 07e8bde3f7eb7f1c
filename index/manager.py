"""The live index of one corpus: opened (or built) once, rebuilt, watched and edited one change at a time.

A rebuild builds a new store while questions go on being answered from the old one; the new store then replaces
the old by a single attribute assignment, so a question sees one index or the other, never a mix. Adding or
removing a document changes the corpus folder and rebuilds (re-embedding only new text); if the rebuild fails the
folder is put back as it was. Listing documents needs no model: the embedding model loads on the first build.

An index that is not `required` (a server's own documents) may be empty: it has no store until its first
document is added, and removing its last document retires the published index.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from index import vectors
from index.build import BuildReport, IndexConfig, build, is_up_to_date
from index.corpus import document_file, put_back, take_out, write_new
from index.documents import DocumentError, DocumentInfo, corpus_fingerprint, has_documents, parse_document
from index.extract import DEFAULT_LIMITS, Extracted, ExtractLimits, document_name, extract, to_markdown
from index.folder import BuildInProgress, IndexFolder
from index.store import Store, StoreError

if TYPE_CHECKING:
    from index.embedder import Embedder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sources:
    """What the index holds: its documents and when and how it was built."""

    documents: list[DocumentInfo]
    built_at: str
    model: str
    passages: int


@dataclass(frozen=True)
class Change:
    """What adding or removing a document did: the document as indexed, and the seconds it took in all."""

    action: str  # "added" or "removed"
    document: DocumentInfo
    seconds: float

    def describe(self) -> str:
        """One line for the admin: "Added “Title” (title.md): 9 paragraphs, 14 passages, in 2.1 s."."""
        doc = self.document
        return (
            f"{self.action.capitalize()} “{doc.title}” ({doc.id}): {doc.paragraphs} paragraphs, "
            f"{doc.passages} passages, in {self.seconds:.1f} s."
        )


@dataclass(frozen=True)
class Editing:
    """The rules for adding documents: the largest file, which private addresses URLs may reach (see
    index.fetch.FetchPolicy), and why the corpus cannot be changed at all (None when it can)."""

    max_bytes: int = 10_000_000
    allow_private_urls: bool = False
    allowed_private_hosts: frozenset[str] = frozenset()
    read_only: str | None = None
    extract_limits: ExtractLimits = DEFAULT_LIMITS  # pages, characters, seconds and memory a document may cost


@dataclass(frozen=True)
class Tuning:
    """Search-time parameters of approximate FAISS indexes (see index.vectors.tune)."""

    nprobe: int = 32
    ef_search: int = 64


class IndexManager:
    """Owns the store questions are answered from and every change to it; one change at a time per process
    (IndexFolder's lock covers other processes)."""

    def __init__(
        self,
        config: IndexConfig,
        embedder: Embedder,
        editing: Editing = Editing(),
        tuning: Tuning = Tuning(),
        required: bool = True,
    ) -> None:
        self.config = config
        self.embedder = embedder  # loads its model on first use: a build, or the first question
        self.editing = editing
        self.tuning = tuning
        self.required = required  # False: the index may have no documents (and then no store)
        self.footprint = 0  # bytes of the loaded build's files: what keeping it in memory roughly costs
        self._changing = threading.Lock()
        self._live: Path | None = None  # the build folder the store was loaded from
        self._store = self._open()

    @property
    def store(self) -> Store | None:
        """The index questions are answered from right now (replaced whole by a rebuild, never modified); None
        for an index that is not required and has no documents."""
        return self._store

    @property
    def rebuilding(self) -> bool:
        return self._changing.locked()

    def sources(self) -> Sources:
        store = self._store
        if store is None:
            return Sources([], "", self.embedder.name, 0)
        manifest = store.manifest
        return Sources(list(store.documents.values()), manifest.built_at, manifest.model, len(store.passages))

    def rebuild(self, force: bool = False) -> BuildReport:
        """Re-read the corpus and swap in a new index; BuildInProgress if a change is already running. On any
        error the current index stays in service."""
        with self._exclusive():
            return self._rebuild(force)

    def refresh(self) -> bool:
        """Serve the build another process published (processes sharing the index folder, e.g. one per group of
        shards); True when one was swapped in. A build that cannot be loaded leaves the index in service."""
        live = IndexFolder(self.config.index_dir).current()
        if live == self._live or not self._changing.acquire(blocking=False):
            return False  # nothing new, or this process is changing the index itself
        try:
            self._store = None if live is None else self._load()  # None: another process removed the last document
        except StoreError as exc:
            log.warning("the index published at %s cannot be served yet (%s); keeping the one in service", live, exc)
            return False
        finally:
            self._changing.release()
        return True

    def add_url(self, url: str) -> Change:
        """Fetch a web page, PDF or text file and add it (never call from a running event loop: it runs its own).
        FetchError, ExtractError or DocumentError say why a URL cannot be added; nothing changes then."""
        from index.fetch import FetchPolicy, fetch  # aiohttp loads only when a URL is added

        started = time.perf_counter()
        self._check_writable()
        rules = self.editing
        policy = FetchPolicy(rules.allow_private_urls, rules.allowed_private_hosts, rules.max_bytes)
        fetched = asyncio.run(fetch(url, policy))
        extracted = extract(fetched.body, fetched.content_type, url=fetched.url, limits=rules.extract_limits)
        return self._add(extracted, "url", started)

    def add_file(self, filename: str, data: bytes) -> Change:
        """Add a .txt, .md, .html or .pdf file's content as a document."""
        started = time.perf_counter()
        self._check_writable()
        self.check_size(filename, len(data))
        return self._add(extract(data, filename=filename, limits=self.editing.extract_limits), "file", started)

    def check_size(self, filename: str, size: int) -> None:
        """DocumentError when a file is larger than MAX_DOCUMENT_BYTES (front ends check before downloading it)."""
        if size > self.editing.max_bytes:
            raise DocumentError(f"{filename} is larger than MAX_DOCUMENT_BYTES ({self.editing.max_bytes:,})")

    def remove(self, document_id: str) -> Change:
        """Take a document out of the corpus and the index; the last document of a required index cannot be
        removed, and removing that of another retires its index."""
        started = time.perf_counter()
        self._check_writable()
        with self._exclusive():
            documents = self._store.documents if self._store is not None else {}
            document = documents.get(document_id)
            if document is None:
                raise DocumentError(f"there is no document {document_id!r} in the index: see the list of sources")
            last = len(documents) == 1
            if last and self.required:
                raise DocumentError("the last document cannot be removed: the bot would have nothing to answer from")
            path = document_file(self.config.corpus_dir, document_id)
            data = take_out(path)
            try:
                self._retire() if last else self._rebuild()
            except BaseException:
                put_back(path, data)
                raise
        return Change("removed", document, time.perf_counter() - started)

    def _add(self, extracted: Extracted, origin: str, started: float) -> Change:
        """Write the document into the corpus and rebuild; the file is taken out again if the rebuild fails."""
        name = document_name(extracted)
        markdown = to_markdown(extracted, origin, datetime.now(UTC).isoformat(timespec="seconds"))
        with self._exclusive():
            self._refuse_duplicate(name, markdown)
            path = write_new(self.config.corpus_dir, name, markdown)
            try:
                self._rebuild()
            except BaseException:
                path.unlink(missing_ok=True)
                raise
        assert self._store is not None, "a build has just published the index"
        document = self._store.documents[path.relative_to(self.config.corpus_dir).as_posix()]
        return Change("added", document, time.perf_counter() - started)

    def _refuse_duplicate(self, name: str, markdown: str) -> None:
        """DocumentError when an indexed document has the same URL or the same text."""
        new = parse_document(markdown, Path(name), name)
        for document in self._store.documents.values() if self._store is not None else ():
            if (new.url and document.url == new.url) or document.digest == new.digest:
                raise DocumentError(
                    f"this is already in the index as {document.id} ({document.title}); remove it first to replace it"
                )

    def _check_writable(self) -> None:
        if self.editing.read_only is not None:
            raise DocumentError(self.editing.read_only)

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One change of the index at a time in this process."""
        if not self._changing.acquire(blocking=False):
            raise BuildInProgress("the index is being rebuilt; wait for it to finish")
        try:
            yield
        finally:
            self._changing.release()

    def _rebuild(self, force: bool = False) -> BuildReport:
        report = build(self.config, self.embedder, force=force)
        self._store = self._load()  # also picks up a build made by another process
        return report

    def _retire(self) -> None:
        """Withdraw the published index (its last document is gone): the index has no store from now on."""
        IndexFolder(self.config.index_dir).retire()
        self._store, self._live, self.footprint = None, None, 0

    def _open(self) -> Store | None:
        """Load the live index, building it first when there is none yet (unless it is not required and has no
        documents)."""
        live = IndexFolder(self.config.index_dir).current()
        if live is None and not self.required and not has_documents(self.config.corpus_dir):
            return None
        if live is None:
            log.info("no index in %s yet: building it", self.config.index_dir)
            build(self.config, self.embedder)
        elif not is_up_to_date(live, self.config, self.embedder.name, corpus_fingerprint(self.config.corpus_dir)):
            log.warning("the corpus or index settings changed since the last build: run `articlebot build`")
        return self._load()

    def _load(self) -> Store:
        live = IndexFolder(self.config.index_dir).current()
        assert live is not None, "a build has just published the index"
        store = Store.load(live, self.embedder.name)
        vectors.tune(store.vectors, self.tuning.nprobe, self.tuning.ef_search)
        self._live = live
        self.footprint = sum(f.stat().st_size for f in live.rglob("*") if f.is_file())
        log.info("index loaded from %s: %d passages", live, len(store.passages))
        return store
