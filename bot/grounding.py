"""The citation check: every sentence of a generated draft must cite a passage it was given, and that passage must
support it. Ours, not the model's: a model asked to cite can cite anything.

A sentence is kept when it cites at least one of the passages given, every number in it (digits or words) and every
name (a capitalised word past the sentence's start) appears in a passage it cites, and the sentence model finds it
close to a sentence of a cited passage (cosine similarity of all-MiniLM-L6-v2 embeddings at least
`SUPPORT_THRESHOLD`, chosen by `training/calibrate_support.py`). Anything else is dropped with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bot.question import numbers
from bot.replies import Struck
from index.passages import SPLITTERS

SUPPORT_THRESHOLD = 0.57  # see training/calibrate_support.py and docs/generator.md
REFUSAL = "NOT IN THE SOURCES"  # what the prompt asks the model to say when the passages do not answer

_MARKERS = re.compile(r"\s*\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_WORD = re.compile(r"[A-Za-z][\w'’-]*")
_AFTER_END = re.compile(r"([.!?])((?:\s*\[\d+(?:\s*[,;]\s*\d+)*\])+)")  # "… Seoul. [1]": the marker ends the sentence
sentence_spans = SPLITTERS["pysbd"]

Embed = Callable[[list[str]], np.ndarray]  # texts → unit-length vectors, one row each


@dataclass(frozen=True)
class Kept:
    """A sentence of the draft that passed the check: its text without markers, the passages it cites (numbers
    as given to the model) and the similarity that supported it."""

    text: str
    citations: tuple[int, ...]
    support: float


@dataclass(frozen=True)
class Checked:
    """The draft after the check: what is kept, what is dropped, and whether the model said it cannot answer."""

    kept: list[Kept]
    dropped: list[Struck]
    refused: bool


def check(draft: str, passages: Sequence[str], embed: Embed, threshold: float = SUPPORT_THRESHOLD) -> Checked:
    """Check every sentence of `draft` against the passages it cites (`passages[0]` is [1])."""
    if REFUSAL.casefold() in draft.casefold():
        return Checked([], [], refused=True)
    draft = _AFTER_END.sub(r"\2\1", draft)
    sentences = [draft[a:b].strip() for a, b in sentence_spans(draft)]
    sentences = [s for s in sentences if _text(s)]
    kept: list[Kept] = []
    dropped: list[Struck] = []
    for sentence in sentences:
        verdict = _judge(sentence, passages, embed, threshold)
        if isinstance(verdict, Kept):
            kept.append(verdict)
        else:
            dropped.append(verdict)
    return Checked(kept, dropped, refused=False)


def _judge(sentence: str, passages: Sequence[str], embed: Embed, threshold: float) -> Kept | Struck:
    text, cited = _text(sentence), citations(sentence)
    if not cited:
        return Struck(text, "cites no passage")
    unknown = [n for n in cited if not 1 <= n <= len(passages)]
    if unknown:
        return Struck(text, f"cites [{unknown[0]}], a passage it was not given")
    sources = " ".join(passages[n - 1] for n in cited)
    if missing := sorted(numbers(text) - numbers(sources)):
        return Struck(text, f"the number {missing[0]} is not in {_markers(cited)}")
    if missing_names := [w for w in names(text) if w.casefold() not in sources.casefold()]:
        return Struck(text, f"“{missing_names[0]}” is not in {_markers(cited)}")
    support = _support(text, [passages[n - 1] for n in cited], embed)
    if support < threshold:
        return Struck(text, f"not supported by {_markers(cited)} (similarity {support:.2f} < {threshold:.2f})")
    return Kept(text, cited, round(support, 4))


def citations(sentence: str) -> tuple[int, ...]:
    """The passage numbers a sentence cites, in order, each once: "[1]", "[1][3]", "[2, 3]"."""
    found = [int(n) for group in _MARKERS.findall(sentence) for n in re.split(r"\s*[,;]\s*", group)]
    return tuple(dict.fromkeys(found))


def names(sentence: str) -> list[str]:
    """The capitalised words past a sentence's first word: the names, places and titles it states. (A name that
    opens a sentence cannot be told from an ordinary word there; the support score still judges that sentence.)"""
    words = _WORD.findall(sentence)
    return [re.sub(r"['’]s$", "", w) for w in words[1:] if w[0].isupper()]  # "WeGO's" is the name WeGO


def _support(sentence: str, cited: list[str], embed: Embed) -> float:
    """The highest similarity between the sentence and a sentence of the passages it cites."""
    candidates = [p[a:b] for p in cited for a, b in sentence_spans(p)] or cited
    vectors = embed([sentence, *candidates])
    return float(np.max(vectors[1:] @ vectors[0]))


def _text(sentence: str) -> str:
    """A sentence without its citation markers."""
    return " ".join(_MARKERS.sub("", sentence).split())


def _markers(cited: Sequence[int]) -> str:
    return "".join(f"[{n}]" for n in cited)
