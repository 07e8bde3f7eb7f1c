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


def bm25_scores(retriever: bm25s.BM25, query_tokens: list[str]) -> np.ndarray:
    """BM25 score of every passage for the query (zeros when no query term is in the vocabulary)."""
    known = [t for t in query_tokens if t in retriever.vocab_dict]
    if not known:
        return np.zeros(retriever.scores["num_docs"], dtype=np.float32)
    return retriever.get_scores(known)


def save_bm25(retriever: bm25s.BM25, folder: Path) -> None:
    retriever.save(str(folder), show_progress=False)


def load_bm25(folder: Path) -> bm25s.BM25:
    return bm25s.BM25.load(str(folder), show_progress=False, verbosity=0)


@lru_cache(maxsize=1 << 16)
def _lemma(word: str) -> str:
    return simplemma.lemmatize(word, lang="en").lower()


@cache
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")
