"""Shared fixtures: the real model, loaded once, and engines over real indexes built in temporary folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.engine import Engine
from bot.settings import BUNDLED_CORPUS, Settings, load_settings
from index.embedder import Embedder


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder().load()


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for the bundled corpus with a fresh index folder, ignoring any .env of the developer."""
    return load_settings(index_dir=tmp_path_factory.mktemp("index"), _env_file=None)


@pytest.fixture(scope="session")
def engine(settings: Settings, embedder: Embedder) -> Engine:
    return Engine(settings, embedder)


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    """A writable copy of the bundled corpus."""
    return Path(shutil.copytree(BUNDLED_CORPUS, tmp_path / "corpus"))
