"""Questions in, cited answers out: embed the question, search the live indexes, read the passages, decide.

A question in a server is searched in the base index and that server's own (see index.library); each is one
snapshot (`IndexManager.store`, replaced whole by a rebuild), so a question sees the old index or the new one,
never a mix. Building and editing indexes is the Library's job.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from bot.answer import Answerer, Candidate
from bot.calibration import BUNDLED, NONE, answerer_kind, calibrator_for
from bot.errors import InvalidQuestion
from bot.evidence import EVIDENCE_DIR, Evidence
from bot.generator import Generator
from bot.history import Turn, follow_up_query, given_answers
from bot.knowledge import library
from bot.reader import Reader
from bot.replies import Answer
from bot.settings import Settings
from index.embedder import Embedder
from index.lexical import tokenize
from index.library import Library
from index.retrieval import Fusion, Retrieval, search
from index.store import Store

USAGE = 'Ask a question about the article, for example: "Who heads WeGO\'s secretariat?"'
NOTHING_YET = "This server has no documents yet: an admin can add some with `/add`."


class Engine:
    """Questions in, cited answers out, from the indexes a Library keeps live."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        answerer: Answerer | None = None,
        knowledge: Library | None = None,
    ) -> None:
        self.settings = settings
        self.library = knowledge or library(settings, embedder)
        self.embedder = self.library.embedder.load()
        self.fusion = Fusion()
        self.answerer = answerer or configured_answerer(settings)
        self.generator = Generator.configured(settings, self.embedder.encode)  # None unless GENERATOR_URL is set

    def ask(self, question: str, history: Sequence[Turn] = (), server: int | None = None) -> Answer:
        """A cited answer, or an abstention; InvalidQuestion for an empty or over-long question. With the
        `history` of a conversation, a follow-up is searched for with what it follows (see bot.history). In a
        `server`, the answer comes from the base and that server's own documents; elsewhere from the base."""
        question = self.check(question, server)
        query = follow_up_query(question, history)
        stores = self.library.stores(server)
        started = time.perf_counter()
        query_vector = self.embedder.encode_query(query)
        embedded = time.perf_counter()
        retrieval = search(stores, query_vector, tokenize(query), self.fusion)
        searched = time.perf_counter()
        answer = self.answerer.answer(question, retrieval, given_answers(history))
        done = time.perf_counter()
        timings = {"embed": embedded - started, "search": searched - embedded, "answer": done - searched}
        return replace(answer, timings_ms={k: round(v * 1000, 2) for k, v in timings.items()})

    def candidates(self, question: str) -> list[Candidate]:
        """The proposals `ask` decides between, with their evidence: exposed so that the calibrator can be fitted
        on the engine's own features."""
        question = self.check(question)
        return self.answerer.candidates(question, self._search(question, self.fusion))

    def retrieve(self, question: str, fusion: Fusion | None = None) -> list[tuple[str, int]]:
        """The (document, paragraph) of every candidate passage, best first: what `ask` answers from, exposed
        so that retrieval quality can be measured (optionally under other fusion weights)."""
        return self._search(self.check(question), fusion or self.fusion).places()

    @property
    def store(self) -> Store:
        """The base index as it is right now (see IndexManager.store)."""
        store = self.library.base.store
        assert store is not None, "the base index is required: it is built when opened"
        return store

    def _search(self, question: str, fusion: Fusion) -> Retrieval:
        """The base index searched for a question (what the benchmarks and the calibrator measure)."""
        return search([self.store], self.embedder.encode_query(question), tokenize(question), fusion)

    def check(self, question: str, server: int | None = None) -> str:
        """The question with its whitespace normalised; InvalidQuestion, with what to do, when it is empty or too
        long, or when there is nothing to answer it from. The one place that decides whether a question can be
        asked."""
        question = " ".join(question.split())
        if not question:
            raise InvalidQuestion(USAGE)
        if not self.library.stores(server):
            raise InvalidQuestion(NOTHING_YET)
        if len(question) > self.settings.max_question_chars:
            raise InvalidQuestion(
                f"That question is {len(question)} characters long; please keep it under "
                f"{self.settings.max_question_chars}."
            )
        return question


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
