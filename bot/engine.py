"""Questions in, cited answers out: embed the question, search the live index, read the passages, decide.

Every question reads one snapshot of the index (`IndexManager.store`, replaced whole by a rebuild), so it sees
the old index or the new one, never a mix. Building and editing the index is the IndexManager's job.
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
from bot.history import Turn, follow_up_query, given_answers
from bot.knowledge import index_manager
from bot.reader import Reader
from bot.replies import Answer
from bot.settings import Settings
from index.embedder import Embedder
from index.lexical import tokenize
from index.manager import IndexManager
from index.retrieval import Fusion, Retrieval, search
from index.store import Store

USAGE = 'Ask a question about the article, for example: "Who heads WeGO\'s secretariat?"'


class Engine:
    """Questions in, cited answers out, from the index an IndexManager keeps live."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        answerer: Answerer | None = None,
        indexes: IndexManager | None = None,
    ) -> None:
        self.settings = settings
        self.indexes = indexes or index_manager(settings, embedder)
        self.embedder = self.indexes.embedder.load()
        self.fusion = Fusion()
        self.answerer = answerer or configured_answerer(settings)

    def ask(self, question: str, history: Sequence[Turn] = ()) -> Answer:
        """A cited answer, or an abstention; InvalidQuestion for an empty or over-long question. With the
        `history` of a conversation, a follow-up is searched for with what it follows (see bot.history)."""
        question = self.check(question)
        query = follow_up_query(question, history)
        store = self.store
        started = time.perf_counter()
        query_vector = self.embedder.encode_query(query)
        embedded = time.perf_counter()
        retrieval = search(store, query_vector, tokenize(query), self.fusion)
        searched = time.perf_counter()
        answer = self.answerer.answer(question, retrieval, given_answers(history))
        done = time.perf_counter()
        timings = {"embed": embedded - started, "search": searched - embedded, "answer": done - searched}
        return replace(answer, timings_ms={k: round(v * 1000, 2) for k, v in timings.items()})

    def candidates(self, question: str) -> list[Candidate]:
        """The proposals `ask` decides between, with their evidence: exposed so that the calibrator can be fitted
        on the engine's own features."""
        question = self.check(question)
        return self.answerer.candidates(question, self._search(self.store, question, self.fusion))

    def retrieve(self, question: str, fusion: Fusion | None = None) -> list[tuple[str, int]]:
        """The (document, paragraph) of every candidate passage, best first: what `ask` answers from, exposed
        so that retrieval quality can be measured (optionally under other fusion weights)."""
        store = self.store
        retrieval = self._search(store, self.check(question), fusion or self.fusion)
        return [(store.passages[h.passage].document, store.passages[h.passage].paragraph) for h in retrieval.hits]

    @property
    def store(self) -> Store:
        """The index questions are answered from right now (see IndexManager.store)."""
        return self.indexes.store

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
