"""The one object every front end holds: it owns the loaded model and index and answers `ask`, `rebuild`,
`sources`, `add_url`, `add_file` and `remove`.

A rebuild builds a new store while questions go on being answered from the old one; the new store then replaces
the old by a single attribute assignment, so a question sees one index or the other, never a mix. Adding or
removing a document changes the corpus folder and rebuilds (re-embedding only new text); if the rebuild fails the
folder is put back as it was.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bot.answer import Answerer, Candidate
from bot.calibration import CalibrationError, answerer_kind, calibrator_for
from bot.evidence import EVIDENCE_DIR, Evidence
from bot.history import Turn, follow_up_query, given_answers
from bot.reader import BUNDLED, NONE, Reader
from bot.replies import Answer, Change, Sources
from bot.settings import BUNDLED_CORPUS, Settings, SettingsError
from index import vectors
from index.build import BuildReport, IndexConfig, build, is_up_to_date
from index.corpus import document_file, put_back, take_out, write_new
from index.documents import CorpusError, DocumentError, corpus_fingerprint, parse_document
from index.embedder import Embedder, ModelError
from index.folder import BuildInProgress, IndexFolder
from index.lexical import tokenize
from index.passages import Chunking
from index.retrieval import Fusion, Retrieval, search
from index.store import Store, StoreError

if TYPE_CHECKING:
    from index.extract import Extracted
    from index.fetch import FetchPolicy

log = logging.getLogger(__name__)

__all__ = [
    "KNOWN_ERRORS",
    "Answer",
    "BuildInProgress",
    "BuildReport",
    "Change",
    "DocumentError",
    "Engine",
    "InvalidQuestion",
    "Sources",
]

# Failures whose message says what to do: shown to the user as they are, without a traceback.
KNOWN_ERRORS = (SettingsError, CorpusError, StoreError, ModelError, CalibrationError, BuildInProgress, DocumentError)

USAGE = 'Ask a question about the article, for example: "Who heads WeGO\'s secretariat?"'


class InvalidQuestion(ValueError):
    """The question cannot be asked as it is; the message tells the user what to do."""


class Engine:
    """Questions in, cited answers out; rebuilds swap in a new index without interrupting answers."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None, answerer: Answerer | None = None) -> None:
        self.settings = settings
        self.config = index_config(settings)
        self.embedder = (embedder or Embedder(settings.embedding_model)).load()
        self.fusion = Fusion()
        self.answerer = answerer or configured_answerer(settings)
        self._rebuilding = threading.Lock()
        self._live: Path | None = None  # the build folder the store was loaded from
        self._store = self._open_store()

    def ask(self, question: str, history: Sequence[Turn] = ()) -> Answer:
        """A cited answer, or an abstention; InvalidQuestion for an empty or over-long question. With the
        `history` of a conversation, a follow-up is searched for with what it follows (see bot.history)."""
        question = self.check(question)
        query = follow_up_query(question, history)
        store = self._store
        started = time.perf_counter()
        query_vector = self.embedder.encode_query(query)
        embedded = time.perf_counter()
        retrieval = search(store, query_vector, tokenize(query), self.fusion)
        searched = time.perf_counter()
        answer = self.answerer.answer(question, retrieval, store, given_answers(history))
        done = time.perf_counter()
        timings = {"embed": embedded - started, "search": searched - embedded, "answer": done - searched}
        return replace(answer, timings_ms={k: round(v * 1000, 2) for k, v in timings.items()})

    def candidates(self, question: str) -> list[Candidate]:
        """The proposals `ask` decides between, with their evidence: exposed so that the calibrator can be fitted
        on the engine's own features."""
        question = self.check(question)
        store = self._store
        return self.answerer.candidates(question, self._search(store, question, self.fusion), store)

    def retrieve(self, question: str, fusion: Fusion | None = None) -> list[tuple[str, int]]:
        """The (document, paragraph) of every candidate passage, best first: what `ask` answers from, exposed
        so that retrieval quality can be measured (optionally under other fusion weights)."""
        store = self._store
        retrieval = self._search(store, self.check(question), fusion or self.fusion)
        return [(store.passages[h.passage].document, store.passages[h.passage].paragraph) for h in retrieval.hits]

    def rebuild(self, force: bool = False) -> BuildReport:
        """Re-read the corpus and swap in a new index; BuildInProgress if a rebuild is already running. On any
        error the current index stays in service."""
        with self._exclusive():
            return self._rebuild(force)

    def add_url(self, url: str) -> Change:
        """Fetch a web page, PDF or text file and add it (never call from a running event loop: it runs its own).
        FetchError, ExtractError or DocumentError say why a URL cannot be added; nothing changes then."""
        from index.extract import extract  # trafilatura and aiohttp load only when a document is added
        from index.fetch import fetch

        started = time.perf_counter()
        self._check_writable()
        fetched = asyncio.run(fetch(url, self._fetch_policy()))
        return self._add(extract(fetched.body, fetched.content_type, url=fetched.url), "url", started)

    def add_file(self, filename: str, data: bytes) -> Change:
        """Add a .txt, .md, .html or .pdf file's content as a document."""
        from index.extract import extract

        started = time.perf_counter()
        self._check_writable()
        self.check_size(filename, len(data))
        return self._add(extract(data, filename=filename), "file", started)

    def check_size(self, filename: str, size: int) -> None:
        """DocumentError when a file is larger than MAX_DOCUMENT_BYTES (front ends check before downloading it)."""
        if size > self.settings.max_document_bytes:
            raise DocumentError(f"{filename} is larger than MAX_DOCUMENT_BYTES ({self.settings.max_document_bytes:,})")

    def remove(self, document_id: str) -> Change:
        """Take a document out of the corpus and the index; the last document cannot be removed."""
        started = time.perf_counter()
        self._check_writable()
        with self._exclusive():
            document = self._store.documents.get(document_id)
            if document is None:
                raise DocumentError(f"there is no document {document_id!r} in the index: see the list of sources")
            if len(self._store.documents) == 1:
                raise DocumentError("the last document cannot be removed: the bot would have nothing to answer from")
            path = document_file(self.config.corpus_dir, document_id)
            data = take_out(path)
            try:
                self._rebuild()
            except BaseException:
                put_back(path, data)
                raise
        return Change("removed", document, time.perf_counter() - started)

    def _add(self, extracted: Extracted, origin: str, started: float) -> Change:
        """Write the document into the corpus and rebuild; the file is taken out again if the rebuild fails."""
        from index.extract import document_name, to_markdown

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
        document = self._store.documents[path.relative_to(self.config.corpus_dir).as_posix()]
        return Change("added", document, time.perf_counter() - started)

    def _refuse_duplicate(self, name: str, markdown: str) -> None:
        """DocumentError when an indexed document has the same URL or the same text."""
        new = parse_document(markdown, Path(name), name)
        for document in self._store.documents.values():
            if (new.url and document.url == new.url) or document.digest == new.digest:
                raise DocumentError(
                    f"this is already in the index as {document.id} ({document.title}); remove it first to replace it"
                )

    def _check_writable(self) -> None:
        if self.config.corpus_dir.resolve() == BUNDLED_CORPUS.resolve():
            raise DocumentError(
                "the bundled article cannot be changed: set CORPUS_DIR to a folder of your own (a copy of "
                f"{BUNDLED_CORPUS} to keep the article), then add documents"
            )

    def _fetch_policy(self) -> FetchPolicy:
        from index.fetch import FetchPolicy

        return FetchPolicy(
            allow_private=self.settings.allow_private_urls,
            allowed_private_hosts=frozenset(self.settings.allowed_private_hosts),
            max_bytes=self.settings.max_document_bytes,
        )

    def _rebuild(self, force: bool = False) -> BuildReport:
        report = build(self.config, self.embedder, force=force)
        self._store = self._load()  # also picks up a build made by another process
        return report

    def refresh(self) -> bool:
        """Serve the build another process published (processes sharing INDEX_DIR, e.g. one per group of shards);
        True when one was swapped in. A build that cannot be loaded leaves the index in service."""
        live = IndexFolder(self.config.index_dir).current()
        if live is None or live == self._live or not self._rebuilding.acquire(blocking=False):
            return False  # nothing new, or this process is changing the index itself
        try:
            self._store = self._load()
        except StoreError as exc:
            log.warning("the index published at %s cannot be served yet (%s); keeping the one in service", live, exc)
            return False
        finally:
            self._rebuilding.release()
        return True

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One change of the index at a time in this process (IndexFolder's lock covers other processes)."""
        if not self._rebuilding.acquire(blocking=False):
            raise BuildInProgress("the index is being rebuilt; wait for it to finish")
        try:
            yield
        finally:
            self._rebuilding.release()

    @property
    def store(self) -> Store:
        """The index questions are answered from right now (replaced whole by a rebuild, never modified)."""
        return self._store

    @property
    def rebuilding(self) -> bool:
        return self._rebuilding.locked()

    def sources(self) -> Sources:
        store = self._store
        return Sources(
            documents=list(store.documents.values()),
            built_at=store.manifest.built_at,
            model=store.manifest.model,
            passages=len(store.passages),
        )

    def _search(self, store: Store, question: str, fusion: Fusion) -> Retrieval:
        return search(store, self.embedder.encode_query(question), tokenize(question), fusion)

    def check(self, question: str) -> str:
        """The question with its whitespace normalised; InvalidQuestion, with what to do, when it is empty or too
        long. The one place that decides whether a question can be asked."""
        question = " ".join(question.split())
        if not question:
            raise InvalidQuestion(USAGE)
        if len(question) > self.settings.max_question_chars:
            raise InvalidQuestion(
                f"That question is {len(question)} characters long; please keep it under "
                f"{self.settings.max_question_chars}."
            )
        return question

    def _open_store(self) -> Store:
        """Load the live index, building it first when there is none yet."""
        folder = IndexFolder(self.config.index_dir)
        live = folder.current()
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
        vectors.tune(store.vectors, self.settings.nprobe, self.settings.ef_search)
        self._live = live
        log.info("index loaded from %s: %d passages", live, len(store.passages))
        return store


def configured_answerer(settings: Settings) -> Answerer:
    """The reader READER_MODEL and the evidence model EVIDENCE_MODEL name (or none), with the calibrator fitted
    for them."""
    reader = None if settings.reader_model == NONE else Reader.load(settings.reader_model, settings.reader_precision)
    evidence = None
    if reader is not None and settings.evidence_model != NONE:
        folder = EVIDENCE_DIR if settings.evidence_model == BUNDLED else Path(settings.evidence_model)
        evidence = Evidence.load(folder, bf16=reader.bf16)
    custom = None if settings.reader_model in (BUNDLED, NONE) else Path(settings.reader_model)
    calibrator = calibrator_for(custom, answerer_kind(reader is not None, evidence is not None))
    return Answerer(
        reader,
        calibrator,
        calibrator.threshold if settings.min_confidence is None else settings.min_confidence,
        evidence=evidence,
        passages=settings.reader_passages,
        see_also=settings.top_k,
    )


def build_index(settings: Settings, force: bool = False) -> BuildReport:
    """Build the configured index without loading the reader (for `articlebot build`); a no-op when up to date."""
    return build(index_config(settings), Embedder(settings.embedding_model), force=force)


def index_config(settings: Settings) -> IndexConfig:
    """The build-relevant part of the settings."""
    return IndexConfig(
        corpus_dir=Path(settings.corpus_dir),
        index_dir=Path(settings.index_dir),
        chunking=Chunking(settings.chunk_max_chars, settings.chunk_overlap, settings.sentence_splitter),
        index_type=settings.index_type,
        approx_threshold=settings.approx_index_threshold,
    )
