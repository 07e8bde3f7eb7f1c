"""Corpus → passages → vectors → a new store, written beside the live index and swapped in atomically."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import numpy as np

from index import lexical, vectors
from index.documents import corpus_fingerprint, load_corpus
from index.embedder import Embedder
from index.folder import IndexFolder
from index.passages import Chunking, chunk
from index.store import FORMAT, DocumentInfo, Store, StoreError, read_manifest

log = logging.getLogger(__name__)
_VERSIONED = ("sentence-transformers", "torch", "faiss-cpu", "bm25s", "pysbd", "numpy", "articlebot")


@dataclass(frozen=True)
class IndexConfig:
    """Everything a build depends on besides the corpus text; a change in any of it means a rebuild."""

    corpus_dir: Path
    index_dir: Path
    chunking: Chunking
    index_type: str = vectors.AUTO
    approx_threshold: int = 200_000


@dataclass(frozen=True)
class BuildReport:
    """What a build did: counts, seconds, and whether it found the index already up to date."""

    documents: int
    passages: int
    sentences: int
    seconds: float
    unchanged: bool


def build(config: IndexConfig, embedder: Embedder, force: bool = False) -> BuildReport:
    """Build the index for `config` unless the live one is already up to date (or `force`)."""
    started = time.perf_counter()
    fingerprint = corpus_fingerprint(config.corpus_dir)
    folder = IndexFolder(config.index_dir)
    live = folder.current()
    if live is not None and not force and is_up_to_date(live, config, embedder.name, fingerprint):
        counts = read_manifest(live)["counts"]
        return BuildReport(**counts, seconds=time.perf_counter() - started, unchanged=True)
    with folder.new_build() as target:
        store = make_store(config, embedder, fingerprint)
        store.manifest["build_seconds"] = round(time.perf_counter() - started, 3)
        store.save(target)
    counts = store.manifest["counts"]
    log.info("index built: %(documents)d documents, %(passages)d passages", counts)
    return BuildReport(**counts, seconds=time.perf_counter() - started, unchanged=False)


def is_up_to_date(folder: Path, config: IndexConfig, model: str, fingerprint: str) -> bool:
    """Whether the index in `folder` was built from this corpus with these settings."""
    try:
        manifest = read_manifest(folder)
    except StoreError:
        return False
    return manifest.get("corpus_fingerprint") == fingerprint and manifest.get("build") == _build_settings(config, model)


def make_store(config: IndexConfig, embedder: Embedder, fingerprint: str) -> Store:
    """Read, chunk, embed and index the corpus into an in-memory store."""
    documents = load_corpus(config.corpus_dir)
    passages, sentences = chunk(documents, config.chunking)
    embeddings = _embed_unique([p.text for p in passages] + [s.text for s in sentences], embedder)
    factory = vectors.factory_string(config.index_type, len(embeddings), config.approx_threshold)
    passage_tokens = [lexical.tokenize(p.text) for p in passages]
    infos = {
        d.id: DocumentInfo(
            d.id,
            d.title,
            d.source,
            d.url,
            d.date,
            len(d.paragraphs),
            sum(p.document == d.id for p in passages),
        )
        for d in documents
    }
    manifest = {
        "format": FORMAT,
        "model": embedder.name,
        "dimension": embedder.dim,
        "corpus_fingerprint": fingerprint,
        "build": _build_settings(config, embedder.name),
        "index_factory": factory,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": {name: version(name) for name in _VERSIONED},
        "counts": {"documents": len(documents), "passages": len(passages), "sentences": len(sentences)},
    }
    return Store(
        manifest=manifest,
        documents=infos,
        passages=passages,
        sentences=sentences,
        vectors=vectors.build_index(embeddings, factory),
        bm25=lexical.build_bm25(passage_tokens),
    )


def _embed_unique(texts: list[str], embedder: Embedder) -> np.ndarray:
    """Encode each distinct text once (a one-sentence passage is also a sentence) in a single model call."""
    unique = list(dict.fromkeys(texts))
    encoded = embedder.encode(unique, progress=len(unique) > 256)
    row = {text: i for i, text in enumerate(unique)}
    return encoded[[row[text] for text in texts]]


def _build_settings(config: IndexConfig, model: str) -> dict:
    return {
        "model": model,
        "chunking": config.chunking.as_dict(),
        "index_type": config.index_type,
        "approx_threshold": config.approx_threshold,
    }
