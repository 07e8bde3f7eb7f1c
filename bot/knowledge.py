"""The indexes the settings describe (the base, and each server's own), opened without loading any model: for
listing, adding and removing documents and for building. The embedding model loads only when a build needs it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bot.settings import BUNDLED_CORPUS, Settings
from index.build import BuildReport, IndexConfig, build
from index.embedder import Embedder
from index.extract import ExtractLimits
from index.library import Library
from index.manager import Editing, IndexManager, Tuning
from index.passages import Chunking

MB = 1 << 20


def library(settings: Settings, embedder: Embedder | None = None) -> Library:
    """The base index and the servers' own, as configured (the base built first when there is none yet)."""
    rules = editing(settings)
    return Library(
        index_manager(settings, embedder),
        Path(settings.servers_dir),
        replace(rules, read_only=None),
        settings.index_memory_mb * MB,
        settings.base_corpus,
    )


def index_manager(settings: Settings, embedder: Embedder | None = None) -> IndexManager:
    """The configured corpus's live index (built first when there is none yet)."""
    return IndexManager(
        index_config(settings),
        embedder or Embedder(settings.embedding_model),
        editing(settings),
        Tuning(settings.nprobe, settings.ef_search),
    )


def build_index(settings: Settings, force: bool = False) -> BuildReport:
    """Build the configured index (for `articlebot build`); a no-op when up to date."""
    return build(index_config(settings), Embedder(settings.embedding_model), force=force)


def index_config(settings: Settings) -> IndexConfig:
    """The build-relevant part of the settings."""
    return IndexConfig(
        corpus_dir=Path(settings.corpus_dir),
        index_dir=Path(settings.index_dir),
        chunking=Chunking(settings.chunk_max_chars, settings.chunk_overlap, settings.sentence_splitter),
        index_type=settings.index_type,
        approx_threshold=settings.approx_index_threshold,
    )


def editing(settings: Settings) -> Editing:
    """The rules for adding documents; the bundled article is never changed in place."""
    read_only = None
    if Path(settings.corpus_dir).resolve() == BUNDLED_CORPUS.resolve():
        read_only = (
            "the bundled article cannot be changed: set CORPUS_DIR to a folder of your own (a copy of "
            f"{BUNDLED_CORPUS} to keep the article), then add documents"
        )
    return Editing(
        settings.max_document_bytes,
        settings.allow_private_urls,
        frozenset(settings.allowed_private_hosts),
        read_only,
        ExtractLimits(settings.max_document_pages, settings.max_document_chars, settings.extract_timeout_seconds),
    )
