"""Passages and sentences stored as columns: integer arrays, and the texts in one UTF-8 file read on demand.

A million passages and four million sentences load in a fraction of a second: a row becomes a `Passage` or
`Sentence` object only when it is indexed, instead of one Python object per row at start-up, and a text is read
from disk only when an answer quotes it.
"""

from __future__ import annotations

import dataclasses
import os
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

import numpy as np

Row = TypeVar("Row")
_MISSING = -1  # how an optional integer field (a passage's page) stores None
Reader = Callable[[int, int], bytes | memoryview]  # the bytes [start, end) of the texts


class Texts:
    """Many strings in one UTF-8 buffer with offsets; a string is decoded only when read.

    A loaded one reads each string from its file with `os.pread`, not through a memory map: the kernel maps the
    pages around every page a map touches, so a few reads per question would soon count the whole file as the
    process's memory."""

    def __init__(self, offsets: np.ndarray, read: Reader) -> None:
        self.offsets = offsets
        self._read = read

    @classmethod
    def of(cls, strings: Iterable[str]) -> Texts:
        encoded = [s.encode() for s in strings]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in encoded], out=offsets[1:])
        buffer = memoryview(b"".join(encoded))
        return cls(offsets, lambda start, end: buffer[start:end])

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> str:
        return str(self._read(int(self.offsets[i]), int(self.offsets[i + 1])), "utf-8")

    def __iter__(self) -> Iterator[str]:
        data = memoryview(self._read(0, int(self.offsets[-1])))
        for start, end in pairwise(self.offsets.tolist()):
            yield str(data[start:end], "utf-8")

    def save(self, folder: Path, name: str) -> None:
        np.save(folder / f"{name}-offsets.npy", self.offsets)
        (folder / f"{name}-texts.bin").write_bytes(self._read(0, int(self.offsets[-1])))

    @classmethod
    def load(cls, folder: Path, name: str) -> Texts:
        """The texts saved as `name`; ValueError if the file is shorter than its offsets say."""
        offsets = np.load(folder / f"{name}-offsets.npy", allow_pickle=False)
        path = folder / f"{name}-texts.bin"
        if path.stat().st_size != offsets[-1]:
            raise ValueError(f"{path.name} does not hold the texts its offsets describe")
        descriptor = os.open(path, os.O_RDONLY)
        texts = cls(offsets, partial(_pread, descriptor))
        weakref.finalize(texts, os.close, descriptor)
        return texts


def _pread(descriptor: int, start: int, end: int) -> bytes:
    return os.pread(descriptor, end - start, start)


class Table(Sequence[Row], Generic[Row]):
    """Rows of a frozen dataclass with a `document` id, a `text` and integer fields, one column per field.

    `numbers` has one contiguous row per column (document number first), so a column can be searched directly."""

    def __init__(self, row: Callable[..., Row], documents: Sequence[str], numbers: np.ndarray, texts: Texts) -> None:
        self.row = row
        self.documents = list(documents)
        self.numbers = numbers
        self.texts = texts
        self.fields = integer_fields(row)

    @classmethod
    def of(cls, row: Callable[..., Row], rows: Sequence[Any], documents: Sequence[str]) -> Table[Row]:
        """The table of `rows`; `documents` lists every document id a row may name."""
        number = {document: i for i, document in enumerate(documents)}
        fields = integer_fields(row)
        numbers = np.empty((1 + len(fields), len(rows)), dtype=np.int32)  # ids and offsets in a document fit
        numbers[0] = [number[r.document] for r in rows]
        for column, name in enumerate(fields, start=1):
            numbers[column] = [_MISSING if getattr(r, name) is None else getattr(r, name) for r in rows]
        return cls(row, documents, numbers, Texts.of(r.text for r in rows))

    def column(self, name: str) -> np.ndarray:
        """One integer field of every row (a view, not a copy)."""
        return self.numbers[1 + self.fields.index(name)]

    def __len__(self) -> int:
        return self.numbers.shape[1]

    @overload
    def __getitem__(self, i: int) -> Row: ...
    @overload
    def __getitem__(self, i: slice) -> list[Row]: ...
    def __getitem__(self, i: int | slice) -> Row | list[Row]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if not -len(self) <= i < len(self):
            raise IndexError(f"row {i} of {len(self)}")
        i %= len(self)
        document, *values = self.numbers[:, i].tolist()
        fields = {name: None if value == _MISSING else value for name, value in zip(self.fields, values, strict=True)}
        return self.row(document=self.documents[document], text=self.texts[i], **fields)

    def save(self, folder: Path, name: str) -> None:
        np.save(folder / f"{name}.npy", self.numbers)
        self.texts.save(folder, name)

    @classmethod
    def load(cls, row: Callable[..., Row], documents: Sequence[str], folder: Path, name: str) -> Table[Row]:
        """The table saved as `name` in `folder`; ValueError if its columns do not fit `row`."""
        table = cls(row, documents, np.load(folder / f"{name}.npy", allow_pickle=False), Texts.load(folder, name))
        if table.numbers.shape[0] != 1 + len(table.fields) or len(table.texts) != len(table):
            raise ValueError(f"{name} columns do not match the rows it should hold")
        return table


def integer_fields(row: Any) -> list[str]:
    """The fields of a row dataclass stored as integer columns: all but `document` and `text`."""
    return [f.name for f in dataclasses.fields(row) if f.name not in ("document", "text")]
