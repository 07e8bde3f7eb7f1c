"""The one place that decides what the bot says: retrieved passages → a short answer quoted from the sentence it
comes from, or the sentence that settles the question, cited; or an abstention.

The reader proposes an answer span in each of the top passages, and the evidence model scores each of their
sentences: does it (read after the one before it) answer the question? A question that asks for a span (who, what,
where …) proposes the reader's span and, where another sentence scores higher, that sentence; a yes/no, describe,
list or bare-keyword question (bot.question) proposes each passage's best-scored sentence, with no short answer
(quoted with the sentence after it, but for a keyword). A calibrator turns each proposal's evidence into the
probability that it is right; the most probable one is the answer when that probability reaches MIN_CONFIDENCE,
otherwise the bot says the article does not seem to answer. Every claim is a quote: the reply is made of the
article's sentences, each marked with its source.
Without a reader (READER_MODEL=none) each passage proposes its sentence closest to the question, with no short
answer, and the retrieval-only calibrator scores it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from bot.calibration import Calibrator
from bot.evidence import Evidence
from bot.question import (
    Kind,
    as_question,
    coverage,
    kind,
    other_edition,
    other_occasion,
    same_answer,
    unmatched_numbers,
)
from bot.reader import Context, Reader, Reading
from bot.replies import Answer, Citation
from index.retrieval import Found, Quote, Retrieval

ABSTAIN_TEXT = "The article doesn't seem to answer that."
# The kinds of question whose quote goes on to the sentence after the best-scored one (see _continued).
CONTINUED: tuple[Kind, ...] = ("yes_no", "describe", "list")


@dataclass(frozen=True)
class Candidate:
    """One passage's proposed answer: the sentences to quote, the short answer, and the evidence for it."""

    found: Found
    sentences: tuple[Quote, ...]
    short_answer: str | None
    features: dict[str, float]

    @property
    def quote(self) -> str:
        return " ".join(s.text for s in self.sentences)


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

    def candidates(self, question: str, retrieval: Retrieval) -> list[Candidate]:
        """Every read passage's proposals (see `_read_candidates`), in retrieval order."""
        found = retrieval.found(self.passages)
        similarity = retrieval.sentence_similarity
        if self.reader is None:
            return [_closest_sentence(similarity, f, rank) for rank, f in enumerate(found)]
        asked, question_kind = as_question(question), kind(question)
        readings = self.reader.read(asked, [context(f) for f in found])
        scores = self._evidence(asked, found)
        out = []
        for rank, (passage, reading) in enumerate(zip(found, readings, strict=True)):
            out += _read_candidates(question, question_kind, similarity, passage, rank, reading, scores)
        return out

    def _evidence(self, question: str, found: Sequence[Found]) -> dict[int, float]:
        """The evidence model's score of every sentence of the read passages, from one batched pass (none
        without an evidence model)."""
        if self.evidence is None:
            return {}
        ids, pairs = sentence_pairs(found)
        return dict(zip(ids, self.evidence.scores(question, pairs).tolist(), strict=True))

    def answer(self, question: str, retrieval: Retrieval, given: Sequence[str] = ()) -> Answer:
        """The best proposal if it is probable enough, else an abstention. In a conversation, a proposal that
        repeats an answer already `given` yields to any new one that is probable enough: a follow-up asks for
        something new (but a question asked again still gets its answer)."""
        read = [_citation(n, f) for n, f in enumerate(retrieval.found(self.passages), 1)]
        return replace(self._decide(question, retrieval, given), passages=read)

    def _decide(self, question: str, retrieval: Retrieval, given: Sequence[str]) -> Answer:
        candidates = self.candidates(question, retrieval)
        if not candidates:
            return Answer(question, ABSTAIN_TEXT, abstained=True, citations=[])

        def preference(scored: tuple[float, Candidate]) -> tuple[bool, float]:
            probability, candidate = scored
            return probability >= self.min_confidence and not _repeats(candidate, given), probability

        scored = [(self._probability(c), c) for c in candidates]
        scored.sort(key=preference, reverse=True)
        confidence, best = scored[0]
        if confidence < self.min_confidence:
            see_also = [_citation(n, f) for n, f in enumerate(retrieval.found(self.see_also), 1)]
            return Answer(question, ABSTAIN_TEXT, True, [], None, see_also, round(confidence, 4))
        chosen = [best]
        for probability, candidate in scored[1:]:
            if len(chosen) == self.max_sentences or probability < self.min_confidence:
                break
            if _adds(candidate, chosen) and not _repeats(candidate, given):
                chosen.append(candidate)
        return _compose(question, chosen, round(confidence, 4))

    def _probability(self, candidate: Candidate) -> float:
        """The calibrated probability that the proposal is right; none when it is about another edition, version
        or occasion than the question names (see bot.question.other_edition and other_occasion)."""
        return 0.0 if candidate.features.get("another_occasion") else self.calibrator.probability(candidate.features)


def sentence_pairs(found: Sequence[Found]) -> tuple[list[int], list[tuple[str, str]]]:
    """The sentences of the passages, each once, and what the evidence model reads of each: the sentence and the
    one before it."""
    quotes = list({q.id: q for f in found for q in f.sentences}.values())
    return [q.id for q in quotes], [(q.text, q.before) for q in quotes]


def context(found: Found) -> Context:
    """A passage as the reader sees it: after the sentence that precedes it in its document."""
    return Context(found.before, found.text)


def _read_candidates(
    question: str,
    asked: Kind,
    similarity: dict[int, float],
    found: Found,
    rank: int,
    reading: Reading,
    scores: dict[int, float],
) -> list[Candidate]:
    """One passage's proposals: for a question that asks for a span, the reader's span with the sentences it lies
    in, and the passage's best-scored sentence where that is another; for any other question, that sentence alone."""
    spanned = tuple(q for q in found.sentences if q.span and q.span[0] < reading.end and q.span[1] > reading.start)
    spanned = spanned or (_closest(similarity, found),)
    span = found.text[reading.start : reading.end].strip(" ,;:.")
    reader_features = {"margin": reading.margin, "null": reading.null_score, "length": float(len(span.split()))}
    best = _best_sentence(question, asked, found, scores) if scores else spanned[0]
    proposals: list[tuple[tuple[Quote, ...], str | None]] = []
    if asked == "span":
        proposals.append((spanned, span or None))
    if asked != "span" or best not in spanned:
        proposals.append((_with_neighbours(found, best, scores), None))
    return [
        Candidate(
            found,
            _continued(found, sentences) if short is None and asked in CONTINUED else sentences,
            short,
            _retrieval_features(similarity, found, rank, sentences)
            | reader_features
            | _evidence_features(question, asked, found, sentences, scores)
            | {"evidence_kind": float(short is None)},
        )
        for sentences, short in proposals
    ]


def _best_sentence(question: str, asked: Kind, found: Found, scores: dict[int, float]) -> Quote:
    """The passage's sentence the evidence model scores highest; for a bare keyword, among the sentences that name
    most of it (the sentence after a mention can score high for having it just before)."""
    if asked == "keyword":
        return max(found.sentences, key=lambda q: (coverage(question, q.text), scores.get(q.id, -np.inf)))
    return max(found.sentences, key=lambda q: scores.get(q.id, -np.inf))


def _evidence_features(
    question: str, asked: Kind, found: Found, sentences: tuple[Quote, ...], scores: dict[int, float]
) -> dict[str, float]:
    """How well the quoted sentences (with the one before them and the document's title) hold the question: the
    evidence model's score, the share of its content words they hold (on its own for a bare keyword, which the
    evidence model reads least well; on its own for a yes/no question too, whose value asked about may rightly be
    missing: "Was it held in Busan?" is settled by the sentence that says Seoul), how many of its numbers they miss,
    and the kind of question (a clause or a list answers "why", "how" and "which risks", a span the others)."""
    said = " ".join([found.document.title, sentences[0].before] + [q.text for q in sentences])
    covered, keyword = coverage(question, said), float(asked == "keyword")
    return {
        "evidence": max((scores[q.id] for q in sentences if q.id in scores), default=0.0),
        "coverage": covered,
        "keyword": keyword,
        "keyword_coverage": keyword * covered,
        "yes_no": float(asked == "yes_no"),
        "yes_no_coverage": float(asked == "yes_no") * covered,
        "clause": float(asked in ("describe", "list")),
        "unmatched": unmatched_numbers(question, said),
        "another_occasion": float(other_edition(question, said) or other_occasion(question, said)),
    }


def _with_neighbours(found: Found, best: Quote, scores: dict[int, float]) -> tuple[Quote, ...]:
    """The best-scored sentence, with the sentences right before and after it in the passage that the evidence
    model also judges to answer (a list announced in one sentence and given in the next)."""
    return tuple(q for q in found.sentences if q == best or (abs(q.id - best.id) == 1 and scores.get(q.id, -1.0) > 0))


def _continued(found: Found, sentences: tuple[Quote, ...]) -> tuple[Quote, ...]:
    """The quoted sentences and the one after them in the passage: the answer to a yes/no, describe or list
    question often follows the sentence that takes up its words ("A resident asked whether dogs would be allowed
    in the playground. The mayor said they would not."), which the evidence model, scoring one sentence at a
    time, ranks first. The calibrator weighs the scored sentences alone."""
    return sentences + tuple(q for q in found.sentences if q.id == sentences[-1].id + 1)


def _closest_sentence(similarity: dict[int, float], found: Found, rank: int) -> Candidate:
    """Without a reader: the passage's sentence most similar to the question."""
    best = _closest(similarity, found)
    return Candidate(found, (best,), None, _retrieval_features(similarity, found, rank, (best,)))


def _retrieval_features(
    similarity: dict[int, float], found: Found, rank: int, sentences: tuple[Quote, ...]
) -> dict[str, float]:
    """How strongly retrieval backs a passage: its fused score, its dense similarity, its rank, the dense
    similarity of the sentences quoted from it."""
    return {
        "retrieval": found.hit.score,
        "dense": found.hit.dense,
        "sentence": max(similarity[q.id] for q in sentences),
        "rank": float(rank),
    }


def _closest(similarity: dict[int, float], found: Found) -> Quote:
    """The passage's sentence most similar to the question."""
    return max(found.sentences, key=lambda q: similarity[q.id])


def _adds(candidate: Candidate, chosen: list[Candidate]) -> bool:
    """Whether a further proposal brings a new answer from a passage and sentences not quoted yet."""
    if candidate.short_answer is None:
        return False
    for other in chosen:
        if other.found.hit.passage == candidate.found.hit.passage or set(other.sentences) & set(candidate.sentences):
            return False
        if other.short_answer is not None and same_answer(other.short_answer, candidate.short_answer):
            return False
    return True


def _repeats(candidate: Candidate, given: Sequence[str]) -> bool:
    return candidate.short_answer is not None and any(same_answer(candidate.short_answer, g) for g in given)


def _compose(question: str, chosen: list[Candidate], confidence: float) -> Answer:
    """Stitch the chosen proposals' sentences into one reply, numbering each distinct cited passage once."""
    cited: dict[int, Citation] = {}
    parts = []
    for candidate in chosen:
        passage = candidate.found.hit.passage
        if passage not in cited:
            cited[passage] = _citation(len(cited) + 1, candidate.found)
        parts.append(f"{candidate.quote} [{cited[passage].n}]")
    return Answer(question, " ".join(parts), False, list(cited.values()), chosen[0].short_answer, [], confidence)


def _citation(n: int, found: Found) -> Citation:
    doc = found.document
    score = round(found.hit.score, 4)
    return Citation(n, doc.id, doc.title, found.paragraph, found.text, score, doc.source, doc.url, found.page)
