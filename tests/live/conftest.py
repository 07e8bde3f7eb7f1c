"""The live tests' model server: GENERATOR_URL (an OpenAI-compatible API with its /v1), GENERATOR_MODEL, and
GENERATOR_API_KEY and GENERATOR_TIMEOUT_SECONDS if it needs them, from the environment of `make test-generator`.

They are read when pytest loads this file, before tests/conftest.py clears every variable the project reads (so
that what a developer exported never changes the rest of the suite). Without GENERATOR_URL every test here is
skipped, saying so. `pytest` alone (and `make test`) does not collect this folder: see `norecursedirs` in
pyproject.toml; run `make test-generator` or `pytest tests/live`.
"""

from __future__ import annotations

import os

import pytest

from bot.engine import Engine
from bot.settings import load_settings
from index.embedder import Embedder

VARIABLES = ("GENERATOR_URL", "GENERATOR_MODEL", "GENERATOR_API_KEY", "GENERATOR_TIMEOUT_SECONDS")
SERVER = {name: value for name in VARIABLES if (value := os.environ.get(name, "").strip())}
NO_SERVER = (
    "GENERATOR_URL is not set: no model server to test against "
    "(GENERATOR_URL=http://localhost:11434/v1 GENERATOR_MODEL=… make test-generator)"
)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip before any fixture loads a model when there is no server to test."""
    if "GENERATOR_URL" not in SERVER:
        pytest.skip(NO_SERVER)


@pytest.fixture(scope="session")
def server_environment() -> dict[str, str]:
    """The GENERATOR_* variables as given."""
    return dict(SERVER)


@pytest.fixture(scope="session")
def live(engine: Engine, embedder: Embedder) -> Engine:
    """The session's engine with a generator on the live server, its settings checked as the bot checks them."""
    given = load_settings(_env_file=None, **{name.lower(): value for name, value in SERVER.items()})
    fields = ("generator_url", "generator_model", "generator_api_key", "generator_timeout_seconds")
    update = {field: getattr(given, field) for field in fields}
    return Engine(engine.settings.model_copy(update=update), embedder, engine.answerer)
