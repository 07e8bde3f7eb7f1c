"""Lexical matching: one tokenizer for passages and questions, and a BM25 index (bm25s) over passages."""

from __future__ import annotations

import re
from functools import cache, lru_cache
from pathlib import Path

import bm25s
import numpy as np
import simplemma
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

_WORD = re.compile(r"\w+(?:['’]\w+)*")
_QUESTION_WORDS = {"who", "whom", "whose", "what", "which", "where", "when", "why", "how", "s"}
_AUXILIARIES = {"do", "can", "could", "would", "should", "shall", "may", "might", "must", "have"}
_STOPWORDS = frozenset(STOPWORDS_EN) | _QUESTION_WORDS | _AUXILIARIES


def tokenize(text: str) -> list[str]:
    """Lower-cased, stop-word-free, lemmatised then stemmed words, so that "said" meets "say" and "cities"
    meets "city"; possessives fold into their word ("WeGO’s" → "wego")."""
    words = (_lemma(re.sub(r"['’]s$", "", w)) for w in _WORD.findall(text.lower()))
    return _stemmer().stemWords([w for w in words if w not in _STOPWORDS and (len(w) > 1 or w.isdigit())])


def build_bm25(token_lists: list[list[str]]) -> bm25s.BM25:
    """A BM25 index with one document per passage."""
    retriever = bm25s.BM25()
    retriever.index(token_lists, show_progress=False)
    return retriever


def bm25_matches(retriever: bm25s.BM25, query_tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The passages holding a query term (ascending) and their BM25 scores, summed from the terms' postings (a
    repeated term counts again, as in bm25s): the work grows with the postings read, not with the corpus."""
    index = retriever.scores
    terms = [retriever.vocab_dict[t] for t in query_tokens if t in retriever.vocab_dict]
    spans = [(index["indptr"][t], index["indptr"][t + 1]) for t in terms]
    rows = np.concatenate([index["indices"][a:b] for a, b in spans] or [np.empty(0, dtype=np.int64)])
    weights = np.concatenate([index["data"][a:b] for a, b in spans] or [np.empty(0, dtype=np.float32)])
    if len(rows) * 16 < index["num_docs"]:  # few postings: sort them rather than fill a corpus-sized vector
        matched, inverse = np.unique(rows, return_inverse=True)
        return matched.astype(np.int64), np.bincount(inverse, weights).astype(np.float32)
    totals = np.bincount(rows, weights, minlength=index["num_docs"])
    matched = np.flatnonzero(totals)
    return matched, totals[matched].astype(np.float32)


def save_bm25(retriever: bm25s.BM25, folder: Path) -> None:
    retriever.save(str(folder), show_progress=False)


def load_bm25(folder: Path) -> bm25s.BM25:
    """The saved index, its score arrays memory-mapped: a question reads only its terms' postings."""
    return bm25s.BM25.load(str(folder), mmap=True, show_progress=False, verbosity=0)


@lru_cache(maxsize=1 << 16)
def _lemma(word: str) -> str:
    return simplemma.lemmatize(word, lang="en").lower()


@cache
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")
