"""The searchable index in memory and on disk: FAISS vectors, BM25, passage metadata and a manifest.

One FAISS index holds a vector per passage (rows 0..P-1) followed by a vector per sentence (rows P..), so a
question costs one vector search. The manifest records what the index was built from and with; loading checks
it, and every file's checksum, before anything is trusted.
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

from index import lexical
from index.documents import DocumentInfo
from index.passages import Passage, Sentence

FORMAT = 4
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
METADATA = "passages.json"
BM25_DIR = "bm25"

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
    """What an index was built from and with; `files` maps each data file to its sha256, filled in on save."""

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
    files: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        return cls(**(data | {"counts": Counts(**data["counts"])}))


@dataclass(frozen=True)
class Store:
    """Everything a question is answered from, loaded once and never modified."""

    manifest: Manifest
    documents: dict[str, DocumentInfo]
    passages: list[Passage]
    sentences: list[Sentence]
    vectors: faiss.Index
    bm25: bm25s.BM25
    sentence_passages: list[list[int]] = field(init=False)

    def __post_init__(self) -> None:
        owners: list[list[int]] = [[] for _ in self.sentences]
        for number, passage in enumerate(self.passages):
            for sentence in passage.sentence_ids:
                owners[sentence].append(number)
        object.__setattr__(self, "sentence_passages", owners)  # derived once, at construction

    def save(self, folder: Path) -> None:
        """Write every file, then the manifest with their checksums (the manifest last: it marks completion)."""
        faiss.write_index(self.vectors, str(folder / VECTORS))
        lexical.save_bm25(self.bm25, folder / BM25_DIR)
        metadata = {
            "documents": [asdict(d) for d in self.documents.values()],
            "passages": [asdict(p) for p in self.passages],
            "sentences": [asdict(s) for s in self.sentences],
        }
        (folder / METADATA).write_text(json.dumps(metadata, ensure_ascii=False), encoding="utf-8")
        manifest = replace(self.manifest, files={path: _sha256(folder / path) for path in _data_files(folder)})
        (folder / MANIFEST).write_text(json.dumps(manifest.to_json(), indent=2), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, model: str) -> Store:
        """Load and verify a saved index built with `model`; StoreError names the problem and the fix."""
        manifest = read_manifest(folder)
        if manifest.model != model:
            raise StoreError(
                f"index built with model {manifest.model!r}, configured model is {model!r}: run `articlebot build`"
            )
        for path, checksum in manifest.files.items():
            if not (folder / path).is_file() or _sha256(folder / path) != checksum:
                raise StoreError(f"index file {folder / path} is missing or corrupt: run `articlebot build`")
        try:
            metadata = json.loads((folder / METADATA).read_text(encoding="utf-8"))
            return cls(
                manifest=manifest,
                documents={d["id"]: DocumentInfo(**d) for d in metadata["documents"]},
                passages=[Passage(**p) for p in metadata["passages"]],
                sentences=[Sentence(**s) for s in metadata["sentences"]],
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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
