"""Corpus → passages → vectors → a new store, written beside the live index and swapped in atomically."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from index import lexical, vectors
from index.cache import EmbeddingCache, SentenceSplits
from index.columns import Table
from index.documents import DocumentInfo, corpus_fingerprint, load_corpus
from index.embedder import Embedder
from index.folder import IndexFolder
from index.passages import Chunking, Passage, Sentence, chunk
from index.store import FORMAT, Counts, Manifest, Store, StoreError, read_manifest

log = logging.getLogger(__name__)
CACHE_DIR = "embeddings"
_VERSIONED = ("sentence-transformers", "torch", "faiss-cpu", "bm25s", "pysbd", "blingfire", "numpy", "articlebot")


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
    embedded: int = 0  # texts that had no vector in the embedding cache


def build(config: IndexConfig, embedder: Embedder, force: bool = False) -> BuildReport:
    """Build the index for `config` unless the live one is already up to date (or `force`)."""
    started = time.perf_counter()
    fingerprint = corpus_fingerprint(config.corpus_dir)
    folder = IndexFolder(config.index_dir)
    live = folder.current()
    if live is not None and not force and is_up_to_date(live, config, embedder.name, fingerprint):
        counts = read_manifest(live).counts
        return BuildReport(**asdict(counts), seconds=time.perf_counter() - started, unchanged=True)
    with folder.new_build() as target:
        cache = EmbeddingCache(config.index_dir / CACHE_DIR, embedder.name).load()
        splits = SentenceSplits(config.index_dir / CACHE_DIR, config.chunking.splitter).load()
        store, embedded = make_store(config, embedder, fingerprint, cache, started, splits)
        store.save(target)
        cache.save()  # only once the build is written: a failed build leaves the caches as they were
        splits.save()
    counts = store.manifest.counts
    log.info("index built: %d documents, %d passages, %d texts embedded", counts.documents, counts.passages, embedded)
    return BuildReport(**asdict(counts), seconds=time.perf_counter() - started, unchanged=False, embedded=embedded)


def is_up_to_date(folder: Path, config: IndexConfig, model: str, fingerprint: str) -> bool:
    """Whether the index in `folder` was built from this corpus with these settings."""
    try:
        manifest = read_manifest(folder)
    except StoreError:
        return False
    return manifest.corpus_fingerprint == fingerprint and manifest.build == _build_settings(config, model)


def make_store(
    config: IndexConfig,
    embedder: Embedder,
    fingerprint: str,
    cache: EmbeddingCache,
    started: float,
    splits: SentenceSplits,
) -> tuple[Store, int]:
    """Read, chunk, embed (what the cache lacks) and index the corpus into an in-memory store; also returns how
    many texts were embedded. Each step keeps only what the next needs: at a million passages, the documents,
    per-row objects and token lists would otherwise outweigh the vectors."""
    documents, passages, sentences = _read(config, splits)
    bm25 = lexical.build_bm25([lexical.tokenize(text) for text in passages.texts])
    embeddings, rows, embedded = _embed_unique([*passages.texts, *sentences.texts], embedder, cache)
    factory = vectors.factory_string(config.index_type, len(rows), config.approx_threshold)
    index = vectors.build_index(embeddings, factory, rows)
    manifest = Manifest(
        format=FORMAT,
        model=embedder.name,
        dimension=embedder.dim,
        corpus_fingerprint=fingerprint,
        build=_build_settings(config, embedder.name),
        index_factory=factory,
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        versions={name: version(name) for name in _VERSIONED},
        counts=Counts(len(documents), len(passages), len(sentences)),
        build_seconds=round(time.perf_counter() - started, 3),
    )
    store = Store(
        manifest=manifest, documents=documents, passages=passages, sentences=sentences, vectors=index, bm25=bm25
    )
    return store, embedded


def _read(
    config: IndexConfig, splits: SentenceSplits
) -> tuple[dict[str, DocumentInfo], Table[Passage], Table[Sentence]]:
    """The corpus's documents, passages and sentences, as the store keeps them."""
    documents = load_corpus(config.corpus_dir)
    passages, sentences = chunk(documents, config.chunking, splits)
    per_document = Counter(p.document for p in passages)
    infos = {d.id: d.info(per_document[d.id]) for d in documents}
    ids = list(infos)
    return infos, Table.of(Passage, passages, ids), Table.of(Sentence, sentences, ids)


def _embed_unique(texts: list[str], embedder: Embedder, cache: EmbeddingCache) -> tuple[np.ndarray, np.ndarray, int]:
    """Vectors of the distinct texts (a one-sentence passage is also a sentence), taken from the cache or encoded,
    all new ones in a single model call; the row of each of `texts` among them; and how many were encoded. The cache
    then keeps exactly these texts."""
    row: dict[str, int] = {}
    for text in texts:
        row.setdefault(text, len(row))
    unique = list(row)
    found, missing = cache.lookup(unique)
    if missing and len(missing) == len(unique):  # nothing cached: the model's output is the array, not copied
        vectors = embedder.encode(unique, progress=len(unique) > 256)
    else:
        vectors = np.empty((len(unique), embedder.dim), dtype=np.float32)
        for i, vector in found.items():
            vectors[i] = vector
        if missing:
            vectors[missing] = embedder.encode([unique[i] for i in missing], progress=len(missing) > 256)
    cache.keep(unique, vectors)
    return vectors, np.fromiter((row[text] for text in texts), dtype=np.int64, count=len(texts)), len(missing)


def _build_settings(config: IndexConfig, model: str) -> dict[str, Any]:
    return {
        "model": model,
        "chunking": config.chunking.as_dict(),
        "index_type": config.index_type,
        "approx_threshold": config.approx_threshold,
    }
