"""Documents → sentences → paragraph-aware passages, each with character offsets into its document's text.

Sentences come from pysbd, a rule-based splitter that keeps "U.N." and "Dr." whole, or for bulk builds from
blingfire, about 25 times faster and in close but not full agreement with pysbd (it splits after "Dr."). A passage
is a run of whole
sentences of one paragraph, at most `max_chars` long (a longer sentence stands alone), overlapping the previous
passage by `overlap` sentences so that no answer falls between two passages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import cache

import blingfire
import numpy as np
import pysbd

from index.cache import SentenceSplits
from index.documents import Document, Paragraph


@dataclass(frozen=True)
class Chunking:
    """How paragraphs are cut into passages; part of the index manifest."""

    max_chars: int = 1000
    overlap: int = 1
    splitter: str = "pysbd"  # or "blingfire" (SPLITTERS)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Sentence:
    """A sentence: its document, paragraph number and span in the document's text."""

    document: str
    paragraph: int
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Passage:
    """A retrievable unit: consecutive sentences `sentences[first:last]` of one paragraph (on `page` of a PDF)."""

    document: str
    paragraph: int
    start: int
    end: int
    text: str
    first: int
    last: int
    page: int | None = None

    @property
    def sentence_ids(self) -> range:
        """The ids of the passage's sentences in the store."""
        return range(self.first, self.last)


def split_sentences(
    document: Document, paragraph: Paragraph, splits: SentenceSplits | None = None, splitter: str = "pysbd"
) -> list[Sentence]:
    """The paragraph's sentences, with offsets into the document's text; surrounding spaces trimmed. `splits`
    remembers the splitter's answers between builds."""
    body = document.paragraph_text(paragraph).replace("\n", " ")  # a wrapped line is no sentence end; same offsets
    sentences = []
    split = SPLITTERS[splitter]
    for span_start, span_end in splits.spans(body, split) if splits else split(body):
        raw = body[span_start:span_end]
        start = paragraph.start + span_start + (len(raw) - len(raw.lstrip()))
        end = paragraph.start + span_start + len(raw.rstrip())
        if end > start:
            text = " ".join(document.text[start:end].split())
            sentences.append(Sentence(document.id, paragraph.number, start, end, text))
    return sentences


def chunk(
    documents: list[Document], chunking: Chunking, splits: SentenceSplits | None = None
) -> tuple[list[Passage], list[Sentence]]:
    """All passages of the corpus, and the sentences they index into."""
    passages: list[Passage] = []
    sentences: list[Sentence] = []
    for document in documents:
        for paragraph in document.paragraphs:
            offset = len(sentences)
            own = split_sentences(document, paragraph, splits, chunking.splitter)
            sentences.extend(own)
            for first, last in sentence_windows([len(s.text) for s in own], chunking):
                start, end = own[first].start, own[last - 1].end
                text = " ".join(document.text[start:end].split())
                window = (offset + first, offset + last)
                passages.append(Passage(document.id, paragraph.number, start, end, text, *window, paragraph.page))
    return passages, sentences


def sentence_windows(lengths: list[int], chunking: Chunking) -> Iterator[tuple[int, int]]:
    """[first, last) sentence ranges: greedy up to max_chars, each window sharing `overlap` sentences with the
    previous one (never so many that a window would not move forward)."""
    first = 0
    while first < len(lengths):
        last, size = first + 1, lengths[first]
        while last < len(lengths) and size + 1 + lengths[last] <= chunking.max_chars:
            size += 1 + lengths[last]
            last += 1
        yield first, last
        if last == len(lengths):
            return
        first = max(first + 1, last - chunking.overlap)


def windows_holding(first: np.ndarray, last: np.ndarray, sentences: np.ndarray) -> np.ndarray:
    """The windows [first, last) holding any of `sentences`, ascending. Windows move forward over the sentences,
    so both bounds ascend and a binary search finds each sentence's windows, whatever the corpus size."""
    starts = np.searchsorted(last, sentences, side="right")
    ends = np.searchsorted(first, sentences, side="right")
    ranges = [np.arange(a, b) for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
    return np.unique(np.concatenate(ranges)) if ranges else np.empty(0, dtype=np.int64)


def _pysbd_spans(text: str) -> list[tuple[int, int]]:
    return [(span.start, span.end) for span in _segmenter().segment(text)]


def _blingfire_spans(text: str) -> list[tuple[int, int]]:
    return list(blingfire.text_to_sentences_and_offsets(text)[1]) if text.strip() else []


SPLITTERS: dict[str, Callable[[str], list[tuple[int, int]]]] = {"pysbd": _pysbd_spans, "blingfire": _blingfire_spans}


@cache
def _segmenter() -> pysbd.Segmenter:
    return pysbd.Segmenter(language="en", clean=False, char_span=True)
