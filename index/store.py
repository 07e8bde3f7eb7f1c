"""The searchable index in memory and on disk: FAISS vectors, BM25, passage metadata and a manifest.

One FAISS index holds a vector per passage (rows 0..P-1) followed by a vector per sentence (rows P..), so a
question costs one vector search. Passages and sentences are columns, their texts read on demand (index.columns). The
manifest records what the index was built from and with, and each file's size and checksum; loading checks every
size, and the checksum of every file up to VERIFY_BYTES: re-hashing gigabytes of vectors on every start would cost
more than the load itself, and a truncated or missing file, the usual damage, shows in its size.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import bm25s
import faiss
import numpy as np

from index import lexical
from index.columns import Table
from index.documents import DocumentInfo
from index.passages import Passage, Sentence, windows_holding

FORMAT = 5
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
DOCUMENTS = "documents.json"
PASSAGES = "passages"
SENTENCES = "sentences"
BM25_DIR = "bm25"
VERIFY_BYTES = 64 * 2**20

log = logging.getLogger(__name__)


class StoreError(Exception):
    """The index cannot be used; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class Counts:
    """How much the index holds."""

    documents: int
    passages: int
    sentences: int


@dataclass(frozen=True)
class Manifest:
    """What an index was built from and with; `files` maps each data file to its size and sha256, filled in on
    save."""

    format: int
    model: str
    dimension: int
    corpus_fingerprint: str
    build: dict[str, Any]
    index_factory: str
    built_at: str
    versions: dict[str, str]
    counts: Counts
    build_seconds: float = 0.0
    files: dict[str, FileCheck] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        files = {path: FileCheck(**check) for path, check in data["files"].items()}
        return cls(**(data | {"counts": Counts(**data["counts"]), "files": files}))


@dataclass(frozen=True)
class FileCheck:
    """A data file's size and sha256, as written."""

    size: int
    sha256: str

    @classmethod
    def of(cls, path: Path) -> FileCheck:
        return cls(path.stat().st_size, file_sha256(path))

    def problem(self, path: Path) -> str | None:
        """Why `path` is not the file written, or None; the checksum is compared only up to VERIFY_BYTES."""
        if not path.is_file() or path.stat().st_size != self.size:
            return "missing or corrupt"
        if self.size <= VERIFY_BYTES and file_sha256(path) != self.sha256:
            return "corrupt"
        return None


@dataclass(frozen=True)
class Store:
    """Everything a question is answered from, loaded once and never modified."""

    manifest: Manifest
    documents: dict[str, DocumentInfo]
    passages: Table[Passage]
    sentences: Table[Sentence]
    vectors: faiss.Index
    bm25: bm25s.BM25

    def passages_of(self, sentences: np.ndarray) -> np.ndarray:
        """The passages holding any of the given sentences, ascending."""
        return windows_holding(self.passages.column("first"), self.passages.column("last"), sentences)

    def save(self, folder: Path) -> None:
        """Write every file, then the manifest with their checksums (the manifest last: it marks completion)."""
        faiss.write_index(self.vectors, str(folder / VECTORS))
        lexical.save_bm25(self.bm25, folder / BM25_DIR)
        documents = [asdict(d) for d in self.documents.values()]
        (folder / DOCUMENTS).write_text(json.dumps(documents, ensure_ascii=False), encoding="utf-8")
        self.passages.save(folder, PASSAGES)
        self.sentences.save(folder, SENTENCES)
        manifest = replace(self.manifest, files={path: FileCheck.of(folder / path) for path in _data_files(folder)})
        (folder / MANIFEST).write_text(json.dumps(manifest.to_json(), indent=2), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, model: str) -> Store:
        """Load and verify a saved index built with `model`; StoreError names the problem and the fix."""
        manifest = read_manifest(folder)
        if manifest.model != model:
            raise StoreError(
                f"index built with model {manifest.model!r}, configured model is {model!r}: run `articlebot build`"
            )
        for path, check in manifest.files.items():
            if problem := check.problem(folder / path):
                raise StoreError(f"index file {folder / path} is {problem}: run `articlebot build`")
        try:
            documents = [DocumentInfo(**d) for d in json.loads((folder / DOCUMENTS).read_text(encoding="utf-8"))]
            ids = [d.id for d in documents]
            return cls(
                manifest=manifest,
                documents={d.id: d for d in documents},
                passages=Table.load(Passage, ids, folder, PASSAGES),
                sentences=Table.load(Sentence, ids, folder, SENTENCES),
                vectors=faiss.read_index(str(folder / VECTORS)),
                bm25=lexical.load_bm25(folder / BM25_DIR),
            )
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise StoreError(f"index in {folder} cannot be read ({exc}): run `articlebot build`") from exc


def read_manifest(folder: Path) -> Manifest:
    """The manifest of a saved index, checked for format; StoreError if it is missing or unreadable."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(f"index manifest in {folder} is missing or corrupt: run `articlebot build`") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise StoreError(f"index in {folder} has an older format: run `articlebot build`")
    try:
        return Manifest.from_json(data)
    except (KeyError, TypeError) as exc:
        raise StoreError(f"index manifest in {folder} is missing or corrupt: run `articlebot build`") from exc


def _data_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file's bytes, read in chunks."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
