"""Hybrid retrieval: dense passage, dense best-sentence and BM25 scores, fused at score level.

Candidates come from one FAISS search (passage and sentence vectors share an index) and from BM25; every
candidate is then scored exactly on all three signals. Each signal is z-normalised over the candidates and the
three are summed with weights: unlike rank fusion this keeps the size of score gaps, which is what tells a clear
winner from a tie.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from index import lexical
from index.documents import DocumentInfo
from index.store import Store


@dataclass(frozen=True)
class Fusion:
    """Weights of the three signals, and how many candidates each retriever contributes."""

    dense: float = 1.0
    sentence: float = 1.0
    bm25: float = 1.0
    candidates: int = 100


@dataclass(frozen=True)
class Hit:
    """A candidate passage with its fused score and the raw signals behind it."""

    passage: int
    score: float
    dense: float
    sentence: float
    bm25: float


@dataclass(frozen=True)
class Quote:
    """A sentence of a retrieved passage: the sentence before it in its document ("" for a document's first), and
    its span in the passage's text (None when the passage does not hold it verbatim)."""

    id: int
    text: str
    before: str
    span: tuple[int, int] | None


@dataclass(frozen=True)
class Found:
    """A retrieved passage with everything an answer reads, quotes and cites: its text, the sentence before it,
    its sentences, its document and place."""

    hit: Hit
    text: str
    before: str
    sentences: tuple[Quote, ...]
    document: DocumentInfo
    paragraph: int
    page: int | None


@dataclass(frozen=True)
class Shelf:
    """A store searched together with others, and where its passage and sentence ids start in the retrieval: ids
    are made unique across stores by these offsets."""

    store: Store
    passages: int = 0
    sentences: int = 0


@dataclass(frozen=True)
class Retrieval:
    """Ranked passages, plus the dense similarity of every sentence of the candidate passages; `found` reads the
    top ones from the stores searched. Passage and sentence ids count across the stores (see Shelf)."""

    hits: list[Hit]
    sentence_similarity: dict[int, float]
    shelves: tuple[Shelf, ...] = field(compare=False, repr=False)

    def found(self, n: int) -> list[Found]:
        """The top `n` passages, read from their stores."""
        return [self._read(hit) for hit in self.hits[:n]]

    def places(self) -> list[tuple[str, int]]:
        """The (document, paragraph) of every hit, best first."""
        located = [self._locate(hit.passage) for hit in self.hits]
        return [(shelf.store.passages[p].document, shelf.store.passages[p].paragraph) for shelf, p in located]

    def _locate(self, passage: int) -> tuple[Shelf, int]:
        """The shelf a retrieval-wide passage id belongs to, and the id in its store."""
        shelf = next(s for s in reversed(self.shelves) if s.passages <= passage)
        return shelf, passage - shelf.passages

    def _read(self, hit: Hit) -> Found:
        shelf, local = self._locate(hit.passage)
        store = shelf.store
        passage = store.passages[local]
        quotes, cursor = [], 0
        for s in passage.sentence_ids:
            text = store.sentences[s].text
            start = passage.text.find(text, cursor)
            span = None if start < 0 else (start, start + len(text))
            cursor = span[1] if span else cursor
            quotes.append(Quote(s + shelf.sentences, text, _before(store, s), span))
        document = store.documents[passage.document]
        before = quotes[0].before if quotes else ""
        return Found(hit, passage.text, before, tuple(quotes), document, passage.paragraph, passage.page)


@dataclass(frozen=True)
class _Signals:
    """One store's candidate passages and their raw scores, before fusion."""

    candidates: np.ndarray
    dense: np.ndarray
    sentence: np.ndarray
    bm25: np.ndarray
    similarity: dict[int, float]


def search(stores: Sequence[Store], query_vector: np.ndarray, query_tokens: list[str], fusion: Fusion) -> Retrieval:
    """All candidate passages of the stores for the query, best first. Several stores (a shared base and a
    server's own documents) are searched each on its own, and their candidates fused together as one set."""
    shelves, signals, passages, sentences = [], [], 0, 0
    for store in stores:
        shelves.append(Shelf(store, passages, sentences))
        signals.append(_signals(store, query_vector, query_tokens, fusion.candidates))
        passages, sentences = passages + len(store.passages), sentences + len(store.sentences)
    candidates = np.concatenate([s.candidates + shelf.passages for s, shelf in zip(signals, shelves, strict=True)])
    dense, sentence, bm25 = (
        np.concatenate([getattr(s, name) for s in signals]) for name in ("dense", "sentence", "bm25")
    )
    similarity = {
        k + shelf.sentences: v for s, shelf in zip(signals, shelves, strict=True) for k, v in s.similarity.items()
    }
    fused = fusion.dense * _z(dense) + fusion.sentence * _z(sentence) + fusion.bm25 * _z(bm25)
    order = np.argsort(-fused, kind="stable")
    hits = [
        Hit(int(candidates[i]), float(fused[i]), float(dense[i]), float(sentence[i]), float(bm25[i])) for i in order
    ]
    return Retrieval(hits, similarity, tuple(shelves))


def _signals(store: Store, query_vector: np.ndarray, query_tokens: list[str], k: int) -> _Signals:
    """A store's candidates for the query, each scored on the three signals."""
    n_passages = len(store.passages)
    matched, matched_scores = lexical.bm25_matches(store.bm25, query_tokens)
    candidates = _candidates(store, query_vector, matched, matched_scores, k)
    query = query_vector[0]
    dense = store.vectors.reconstruct_batch(candidates) @ query
    firsts, lasts = store.passages.column("first")[candidates], store.passages.column("last")[candidates]
    ranges = [range(a, b) for a, b in zip(firsts.tolist(), lasts.tolist(), strict=True)]
    sentence_ids = np.unique(np.fromiter((s for r in ranges for s in r), dtype=np.int64))
    sentence_scores = store.vectors.reconstruct_batch(sentence_ids + n_passages) @ query
    similarity = dict(zip(sentence_ids.tolist(), sentence_scores.tolist(), strict=True))
    best_sentence = np.array([max(similarity[s] for s in r) for r in ranges], dtype=np.float32)
    return _Signals(candidates, dense, best_sentence, _scores_of(candidates, matched, matched_scores), similarity)


def _before(store: Store, sentence: int) -> str:
    """The sentence before this one in its document ("" for a document's first)."""
    previous = store.sentences[sentence - 1] if sentence > 0 else None
    return previous.text if previous is not None and previous.document == store.sentences[sentence].document else ""


def _candidates(
    store: Store, query_vector: np.ndarray, matched: np.ndarray, matched_scores: np.ndarray, k: int
) -> np.ndarray:
    """Passages found by the vector search (directly or through one of their sentences) or among BM25's top k."""
    n_passages = len(store.passages)
    _, ids = store.vectors.search(query_vector, min(k, store.vectors.ntotal))
    found = ids[0][ids[0] >= 0]
    lexical_top = matched[np.argpartition(-matched_scores, k)[:k]] if len(matched) > k else matched
    sentence_hits = found[found >= n_passages] - n_passages
    parts = [found[found < n_passages], store.passages_of(sentence_hits), lexical_top]
    return np.unique(np.concatenate(parts)).astype(np.int64)


def _scores_of(passages: np.ndarray, matched: np.ndarray, matched_scores: np.ndarray) -> np.ndarray:
    """BM25 scores of `passages`: theirs where they hold a query term, else zero."""
    if not len(matched):
        return np.zeros(len(passages), dtype=np.float32)
    at = np.minimum(np.searchsorted(matched, passages), len(matched) - 1)
    return np.where(matched[at] == passages, matched_scores[at], 0).astype(np.float32)


def _z(values: np.ndarray) -> np.ndarray:
    """Standard scores; all zeros when the values do not vary (no signal to rank by)."""
    spread = values.std()
    return (values - values.mean()) / spread if spread > 1e-9 else np.zeros_like(values)
