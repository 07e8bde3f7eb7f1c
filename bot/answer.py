"""The one place that decides what the bot says: retrieved passages → an extractive, cited answer or an
abstention.

The answer is made of the article's own sentences, so every claim is a quote. A sentence's relevance is its
cosine similarity to the question plus how much of the question's (IDF-weighted) vocabulary it covers; the best
sentence's relevance is the confidence, and below a calibrated threshold the bot says the article does not seem
to answer instead of guessing. `Answerer` is the seam where a generative backend could be plugged in.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Protocol

from index.lexical import unseen_idf
from index.retrieval import Hit, Retrieval
from index.store import Store

ABSTAIN_TEXT = "The article doesn't seem to answer that."

# "What does WeGO stand for?", "What is the full name of WeGO?": the answer is where the article spells it out.
_ASKS_EXPANSION = re.compile(
    r"\bwhat(?:'s| does| do| is)\s+(?:the\s+)?(?P<a>[\w&.-]+)\s+(?:stand|short)\s+for\b"
    r"|\b(?:full name|expansion|abbreviation|acronym)\s+(?:of|for)\s+(?:the\s+)?(?P<b>[\w&.-]+)",
    re.I,
)

# Questions that ask for a time, a quantity, a frequency, a name or an acronym's expansion can only be answered
# by a sentence that contains one, other than what the question itself already says.
_EXPECTS = {
    re.compile(r"^\s*how often\b", re.I): re.compile(
        r"\b(daily|weekly|monthly|annual(ly)?|yearly|biennial|triennial|every|once|twice|times|per)\b", re.I
    ),
    _ASKS_EXPANSION: re.compile(r"\([A-Z][\w-]*\)"),
    re.compile(r"^\s*who\b", re.I): re.compile(r"(?<=\S )[A-Z][a-z][\w-]*|\b[A-Z]{2,}[\w-]*"),
    re.compile(r"^\s*(when|what (year|date|day|month|time)|in what year)\b", re.I): re.compile(
        r"\b(1\d{3}|20\d{2}|\d+(st|nd|rd|th)|(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*|"
        r"(mon|tues|wednes|thurs|fri|satur|sun)day|today|yesterday|tomorrow|century|centuries|decades?|"
        r"years?|months?|weeks?|ago|since|until|during|after|before|when)\b",
        re.I,
    ),
    re.compile(r"^\s*how (many|much|long|old|far|big|large)\b", re.I): re.compile(
        r"\d[\d,.]*|\b(one|two|three|four|five|six|seven|eight|nine|ten|hundred|thousand|million|billion|dozen|"
        r"several|few|many|free)\b",
        re.I,
    ),
}


@dataclass(frozen=True)
class Citation:
    """A numbered source: which document and paragraph, and the quoted passage."""

    n: int
    document: str
    title: str
    paragraph: int
    text: str
    score: float
    source: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Answer:
    """What the bot says: text with `[n]` markers and the citations they point to, or an abstention with the
    closest passages as "see also"."""

    question: str
    text: str
    abstained: bool
    citations: list[Citation]
    see_also: list[Citation] = field(default_factory=list)
    confidence: float = 0.0
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


class Answerer(Protocol):
    """Turns a retrieval into an Answer; the extractive one below needs no language model."""

    def answer(self, question: str, retrieval: Retrieval, store: Store) -> Answer: ...


@dataclass(frozen=True)
class ExtractiveAnswerer:
    """Answers with the best sentence of the top passages, followed by up to two that score nearly as well, or
    abstains when the evidence is weak.

    min_confidence: relevance the best sentence needs (calibrated on tests/questions.yaml, see README).
    coverage_weight: weight of question-vocabulary coverage next to cosine similarity in relevance.
    type_penalty: subtracted from a sentence's relevance when the question asks for a time or quantity that
        the sentence does not contain.
    companion_margin: how close to the best a further sentence must score to join the answer.
    passages_considered / typed_passages: how many top passages the answer may come from; more when the
        question asks for a type (a time, a quantity, a name…), which a lower-ranked passage may hold.
    """

    min_confidence: float = 0.6
    coverage_weight: float = 0.5
    type_penalty: float = 0.3
    companion_margin: float = 0.05
    max_sentences: int = 3
    passages_considered: int = 3
    typed_passages: int = 5
    see_also: int = 3

    def answer(self, question: str, retrieval: Retrieval, store: Store) -> Answer:
        expected = [answer for asks, answer in _EXPECTS.items() if asks.search(question)]
        top = retrieval.hits[: self.typed_passages if expected else self.passages_considered]
        if not top:
            return Answer(question, ABSTAIN_TEXT, abstained=True, citations=[])
        if definition := _definition(question, retrieval, store):
            top, relevance = [definition[0]], {definition[1]: 1.0}
        else:
            asked = frozenset(w.lower() for w in re.findall(r"[\w-]+", question))
            relevance = self._relevance(retrieval, store, [h.passage for h in top], expected, asked)
        best = max(relevance, key=relevance.__getitem__)
        confidence = relevance[best]
        if confidence < self.min_confidence:
            see_also = [_citation(store, n, h.passage, h.score) for n, h in enumerate(top[: self.see_also], 1)]
            return Answer(question, ABSTAIN_TEXT, True, [], see_also, round(confidence, 4))
        companions = [
            s
            for s in sorted(relevance, key=relevance.__getitem__, reverse=True)
            if s != best and relevance[s] >= confidence - self.companion_margin
        ]
        chosen = [best, *companions[: self.max_sentences - 1]]
        return self._compose(question, store, top, chosen, confidence)

    def _relevance(
        self, retrieval: Retrieval, store: Store, passages: list[int], expected: list[re.Pattern], asked: frozenset
    ) -> dict[int, float]:
        """Cosine similarity plus weighted vocabulary coverage, less the type penalty where a sentence lacks what
        the question asks for, for every sentence of the given passages."""
        terms = set(retrieval.query_tokens)
        weights = {t: store.idf.get(t, unseen_idf(len(store.passages))) for t in terms}
        total = sum(weights.values())
        relevance = {}
        for passage in passages:
            for s in _sentences(store, passage):
                covered = sum(weights[t] for t in terms & store.sentence_tokens[s]) / total if total else 0.0
                mismatch = any(not _offers(answer, store.sentences[s].text, asked) for answer in expected)
                relevance[s] = (
                    retrieval.sentence_similarity[s] + self.coverage_weight * covered - self.type_penalty * mismatch
                )
        return relevance

    def _compose(self, question: str, store: Store, top: list, chosen: list[int], confidence: float) -> Answer:
        """Stitch the chosen sentences into one reply, numbering each distinct cited passage once."""
        cited: dict[int, Citation] = {}
        parts = []
        for s in chosen:
            hit = next(h for h in top if s in _sentences(store, h.passage))
            if hit.passage not in cited:
                cited[hit.passage] = _citation(store, len(cited) + 1, hit.passage, hit.score)
            parts.append(f"{store.sentences[s].text} [{cited[hit.passage].n}]")
        return Answer(question, " ".join(parts), False, list(cited.values()), [], round(confidence, 4))


def _offers(kind: re.Pattern, text: str, asked: frozenset[str]) -> bool:
    """Whether `text` holds something of the asked kind (a name, a date…) that is not one of the question's words."""
    return any(m.group(0).lower() not in asked for m in kind.finditer(text))


def _definition(question: str, retrieval: Retrieval, store: Store) -> tuple[Hit, int] | None:
    """For "what does X stand for?", the best-ranked retrieved sentence that spells X out as "… (X)"."""
    asked = _ASKS_EXPANSION.search(question)
    if asked is None:
        return None
    marker = f"({asked['a'] or asked['b']})".lower()
    for hit in retrieval.hits:
        for s in _sentences(store, hit.passage):
            if marker in store.sentences[s].text.lower():
                return hit, s
    return None


def _sentences(store: Store, passage: int) -> range:
    return range(store.passages[passage].first, store.passages[passage].last)


def _citation(store: Store, n: int, passage: int, score: float) -> Citation:
    p = store.passages[passage]
    doc = store.documents[p.document]
    return Citation(n, p.document, doc.title, p.paragraph, p.text, round(score, 4), doc.source, doc.url)
