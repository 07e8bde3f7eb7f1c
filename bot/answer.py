"""The one place that decides what the bot says: retrieved passages → a short answer quoted from the sentence it
comes from, cited, or an abstention.

The reader proposes an answer span in each of the top passages; a calibrator turns each proposal's evidence
(the reader's scores and the retrieval signals) into the probability that it is right. The most probable one
is the answer when that probability reaches MIN_CONFIDENCE; otherwise the bot says the article does not seem to
answer. Every claim is a quote: the reply is made of the article's sentences, each marked with its source.
Without a reader (READER_MODEL=none) each passage proposes its sentence closest to the question, with no short
answer, and the retrieval-only calibrator scores it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.calibration import Calibrator
from bot.reader import Context, Reader, Reading
from bot.replies import Answer, Citation
from index.retrieval import Hit, Retrieval
from index.store import Store

ABSTAIN_TEXT = "The article doesn't seem to answer that."

# A question that starts with an auxiliary verb asks yes or no: its answer is the sentence that settles it, not a
# span of it.
_YES_NO = re.compile(
    r"^\s*(is|are|was|were|am|do|does|did|can|could|will|would|shall|should|has|have|had|may|might|must)\b", re.I
)


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
    passages: int = 3
    see_also: int = 3
    max_sentences: int = 3

    def candidates(self, question: str, retrieval: Retrieval, store: Store) -> list[Candidate]:
        """Every read passage's proposal, in retrieval order."""
        hits = retrieval.hits[: self.passages]
        if self.reader is None:
            return [_closest_sentence(retrieval, store, hit, rank) for rank, hit in enumerate(hits)]
        readings = self.reader.read(question, [context(store, h.passage) for h in hits])
        yes_no = bool(_YES_NO.match(question))
        return [
            _read_candidate(retrieval, store, hit, rank, reading, yes_no)
            for rank, (hit, reading) in enumerate(zip(hits, readings, strict=True))
        ]

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

        scored = [(self.calibrator.probability(c.features), c) for c in candidates]
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


def context(store: Store, passage: int) -> Context:
    """A passage as the reader sees it: after the sentence that precedes it in its document."""
    p = store.passages[passage]
    previous = store.sentences[p.first - 1] if p.first > 0 else None
    before = previous.text if previous is not None and previous.document == p.document else ""
    return Context(before, p.text)


def _read_candidate(
    retrieval: Retrieval, store: Store, hit: Hit, rank: int, reading: Reading, yes_no: bool
) -> Candidate:
    """The reader's span in one passage, with the sentences it lies in."""
    p = store.passages[hit.passage]
    sentences = tuple(
        s for s, (start, end) in _sentence_spans(store, hit.passage) if start < reading.end and end > reading.start
    )
    sentences = sentences or (_closest(retrieval, store, hit.passage),)
    span = p.text[reading.start : reading.end]
    short = None if yes_no else span.strip(" ,;:.") or None
    features = _retrieval_features(retrieval, hit, rank, sentences) | {
        "margin": reading.margin,
        "null": reading.null_score,
        "length": float(len(span.split())),
    }
    return Candidate(hit, sentences, short, features)


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
