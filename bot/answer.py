"""The one place that decides what the bot says: retrieved passages → a short answer quoted from the sentence it
comes from, or the sentence that settles the question, cited; or an abstention.

The reader proposes an answer span in each of the top passages, and the evidence model scores each of their
sentences: does it (read after the one before it) answer the question? A question that asks for a span (who,
what, where …) proposes the reader's span and, where another sentence scores higher, that sentence; a yes/no,
describe, list or bare-keyword question (bot.question) proposes each passage's best-scored sentence, with no short
answer. A calibrator turns each proposal's evidence into the probability that it is right; the most probable one
is the answer when that probability reaches MIN_CONFIDENCE, otherwise the bot says the article does not seem to
answer. Every claim is a quote: the reply is made of the article's sentences, each marked with its source.
Without a reader (READER_MODEL=none) each passage proposes its sentence closest to the question, with no short
answer, and the retrieval-only calibrator scores it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bot.calibration import Calibrator
from bot.evidence import Evidence
from bot.question import Kind, as_question, coverage, kind, other_edition, unmatched_numbers
from bot.reader import Context, Reader, Reading
from bot.replies import Answer, Citation
from index.retrieval import Hit, Retrieval
from index.store import Store

ABSTAIN_TEXT = "The article doesn't seem to answer that."


@dataclass(frozen=True)
class Candidate:
    """One passage's proposed answer: the sentences to quote, the short answer, and the evidence for it."""

    hit: Hit
    sentences: tuple[int, ...]
    short_answer: str | None
    features: dict[str, float]


@dataclass(frozen=True)
class Answerer:
    """Reads the top passages, scores each proposal with the calibrator, answers or abstains.

    passages: how many top passages are read (each costs a reader pass).
    min_confidence: the probability of being right an answer needs; under it the bot abstains.
    max_sentences: the best answer's sentences plus further ones from other passages that add an answer.
    """

    reader: Reader | None
    calibrator: Calibrator
    min_confidence: float
    evidence: Evidence | None = None
    passages: int = 3
    see_also: int = 3
    max_sentences: int = 3

    def candidates(self, question: str, retrieval: Retrieval, store: Store) -> list[Candidate]:
        """Every read passage's proposals (see `_read_candidates`), in retrieval order."""
        hits = retrieval.hits[: self.passages]
        if self.reader is None:
            return [_closest_sentence(retrieval, store, hit, rank) for rank, hit in enumerate(hits)]
        asked, question_kind = as_question(question), kind(question)
        readings = self.reader.read(asked, [context(store, h.passage) for h in hits])
        scores = self._evidence(asked, store, hits)
        out = []
        for rank, (hit, reading) in enumerate(zip(hits, readings, strict=True)):
            out += _read_candidates(question, question_kind, retrieval, store, hit, rank, reading, scores)
        return out

    def _evidence(self, question: str, store: Store, hits: Sequence[Hit]) -> dict[int, float]:
        """The evidence model's score of every sentence of the read passages, from one batched pass (none
        without an evidence model)."""
        if self.evidence is None:
            return {}
        ids, pairs = sentence_pairs(store, [h.passage for h in hits])
        return dict(zip(ids, self.evidence.scores(question, pairs).tolist(), strict=True))

    def answer(self, question: str, retrieval: Retrieval, store: Store, given: Sequence[str] = ()) -> Answer:
        """The best proposal if it is probable enough, else an abstention. In a conversation, a proposal that
        repeats an answer already `given` yields to any new one that is probable enough: a follow-up asks for
        something new (but a question asked again still gets its answer)."""
        candidates = self.candidates(question, retrieval, store)
        if not candidates:
            return Answer(question, ABSTAIN_TEXT, abstained=True, citations=[])

        def preference(scored: tuple[float, Candidate]) -> tuple[bool, float]:
            probability, candidate = scored
            return probability >= self.min_confidence and not _repeats(candidate, given), probability

        scored = [(self._probability(c), c) for c in candidates]
        scored.sort(key=preference, reverse=True)
        confidence, best = scored[0]
        if confidence < self.min_confidence:
            see_also = [_citation(store, n, h) for n, h in enumerate(retrieval.hits[: self.see_also], 1)]
            return Answer(question, ABSTAIN_TEXT, True, [], None, see_also, round(confidence, 4))
        chosen = [best]
        for probability, candidate in scored[1:]:
            if len(chosen) == self.max_sentences or probability < self.min_confidence:
                break
            if _adds(candidate, chosen) and not _repeats(candidate, given):
                chosen.append(candidate)
        return _compose(question, store, chosen, round(confidence, 4))

    def _probability(self, candidate: Candidate) -> float:
        """The calibrated probability that the proposal is right; none when it is about another edition or
        version than the question names."""
        return 0.0 if candidate.features.get("other_edition") else self.calibrator.probability(candidate.features)


def sentence_pairs(store: Store, passages: Sequence[int]) -> tuple[list[int], list[tuple[str, str]]]:
    """The sentences of the passages, each once, and what the evidence model reads of each: the sentence and the
    one before it."""
    ids = list(dict.fromkeys(s for p in passages for s in _sentence_ids(store, p)))
    return ids, [(store.sentences[s].text, _before(store, s)) for s in ids]


def context(store: Store, passage: int) -> Context:
    """A passage as the reader sees it: after the sentence that precedes it in its document."""
    p = store.passages[passage]
    return Context(_before(store, p.first), p.text)


def _read_candidates(
    question: str,
    asked: Kind,
    retrieval: Retrieval,
    store: Store,
    hit: Hit,
    rank: int,
    reading: Reading,
    scores: dict[int, float],
) -> list[Candidate]:
    """One passage's proposals: for a question that asks for a span, the reader's span with the sentences it lies
    in, and the passage's best-scored sentence where that is another; for any other question, that sentence alone."""
    p = store.passages[hit.passage]
    spanned = tuple(
        s for s, (start, end) in _sentence_spans(store, hit.passage) if start < reading.end and end > reading.start
    )
    spanned = spanned or (_closest(retrieval, store, hit.passage),)
    span = p.text[reading.start : reading.end].strip(" ,;:.")
    reader_features = {"margin": reading.margin, "null": reading.null_score, "length": float(len(span.split()))}
    best = max(_sentence_ids(store, hit.passage), key=lambda s: scores.get(s, -np.inf)) if scores else spanned[0]
    proposals: list[tuple[tuple[int, ...], str | None]] = []
    if asked == "span":
        proposals.append((spanned, span or None))
    if asked != "span" or best not in spanned:
        proposals.append((_with_neighbours(store, hit.passage, best, scores), None))
    return [
        Candidate(
            hit,
            sentences,
            short,
            _retrieval_features(retrieval, hit, rank, sentences)
            | reader_features
            | _evidence_features(question, store, sentences, scores)
            | {"evidence_kind": float(short is None), "yes_no": float(asked == "yes_no")},
        )
        for sentences, short in proposals
    ]


def _evidence_features(
    question: str, store: Store, sentences: tuple[int, ...], scores: dict[int, float]
) -> dict[str, float]:
    """How well the quoted sentences (with the one before them and the document's title) hold the question: the
    evidence model's score, the share of its content words they hold, and how many of its numbers they miss."""
    first = store.sentences[sentences[0]]
    said = " ".join(
        [store.documents[first.document].title, _before(store, sentences[0])]
        + [store.sentences[s].text for s in sentences]
    )
    return {
        "evidence": max((scores[s] for s in sentences if s in scores), default=0.0),
        "coverage": coverage(question, said),
        "unmatched": unmatched_numbers(question, said),
        "other_edition": float(other_edition(question, said)),
    }


def _with_neighbours(store: Store, passage: int, best: int, scores: dict[int, float]) -> tuple[int, ...]:
    """The best-scored sentence, with the sentences right before and after it in the passage that the evidence
    model also judges to answer (a list announced in one sentence and given in the next)."""
    ids = _sentence_ids(store, passage)
    return tuple(s for s in (best - 1, best, best + 1) if s == best or (s in ids and scores.get(s, -1.0) > 0))


def _closest_sentence(retrieval: Retrieval, store: Store, hit: Hit, rank: int) -> Candidate:
    """Without a reader: the passage's sentence most similar to the question."""
    best = _closest(retrieval, store, hit.passage)
    return Candidate(hit, (best,), None, _retrieval_features(retrieval, hit, rank, (best,)))


def _retrieval_features(retrieval: Retrieval, hit: Hit, rank: int, sentences: tuple[int, ...]) -> dict[str, float]:
    """How strongly retrieval backs a passage: its fused score, its dense similarity, its rank, the dense
    similarity of the sentences quoted from it."""
    return {
        "retrieval": hit.score,
        "dense": hit.dense,
        "sentence": max(retrieval.sentence_similarity[s] for s in sentences),
        "rank": float(rank),
    }


def _closest(retrieval: Retrieval, store: Store, passage: int) -> int:
    """The passage's sentence most similar to the question."""
    return max(_sentence_ids(store, passage), key=retrieval.sentence_similarity.__getitem__)


def _sentence_ids(store: Store, passage: int) -> range:
    return store.passages[passage].sentence_ids


def _before(store: Store, sentence: int) -> str:
    """The sentence before this one in its document ("" for a document's first)."""
    previous = store.sentences[sentence - 1] if sentence > 0 else None
    return previous.text if previous is not None and previous.document == store.sentences[sentence].document else ""


def _sentence_spans(store: Store, passage: int) -> list[tuple[int, tuple[int, int]]]:
    """Each sentence of a passage with its character span in the passage's text."""
    text, cursor, spans = store.passages[passage].text, 0, []
    for s in _sentence_ids(store, passage):
        start = text.find(store.sentences[s].text, cursor)
        if start < 0:
            continue
        cursor = start + len(store.sentences[s].text)
        spans.append((s, (start, cursor)))
    return spans


def _adds(candidate: Candidate, chosen: list[Candidate]) -> bool:
    """Whether a further proposal brings a new answer from a passage and sentences not quoted yet."""
    if candidate.short_answer is None:
        return False
    for other in chosen:
        if other.hit.passage == candidate.hit.passage or set(other.sentences) & set(candidate.sentences):
            return False
        if other.short_answer is not None and same_answer(other.short_answer, candidate.short_answer):
            return False
    return True


def _repeats(candidate: Candidate, given: Sequence[str]) -> bool:
    return candidate.short_answer is not None and any(same_answer(candidate.short_answer, g) for g in given)


def same_answer(a: str, b: str) -> bool:
    """Whether two short answers say the same thing: one's words (case, punctuation and articles aside) are
    among the other's."""
    words_a, words_b = (set(re.findall(r"\w+", t.lower())) - {"a", "an", "the"} for t in (a, b))
    return words_a <= words_b or words_b <= words_a


def _compose(question: str, store: Store, chosen: list[Candidate], confidence: float) -> Answer:
    """Stitch the chosen proposals' sentences into one reply, numbering each distinct cited passage once."""
    cited: dict[int, Citation] = {}
    parts = []
    for candidate in chosen:
        passage = candidate.hit.passage
        if passage not in cited:
            cited[passage] = _citation(store, len(cited) + 1, candidate.hit)
        quote = " ".join(store.sentences[s].text for s in candidate.sentences)
        parts.append(f"{quote} [{cited[passage].n}]")
    return Answer(question, " ".join(parts), False, list(cited.values()), chosen[0].short_answer, [], confidence)


def _citation(store: Store, n: int, hit: Hit) -> Citation:
    p = store.passages[hit.passage]
    doc = store.documents[p.document]
    return Citation(n, p.document, doc.title, p.paragraph, p.text, round(hit.score, 4), doc.source, doc.url, p.page)
