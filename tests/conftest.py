"""Shared fixtures: the real model, loaded once, engines over real indexes built in temporary folders, and a
Discord API emulator on 127.0.0.1 to run real discord.py bots (the article bot with `start_bot`) against."""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import sys
import threading
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from discord.ext import commands
from discord_emulator import DiscordEmulator

from bot.discord_bot import create_bot
from bot.settings import BUNDLED_CORPUS, Settings, load_settings
from index.embedder import Embedder

if TYPE_CHECKING:
    from bot.engine import Engine

ROWING = Path(__file__).parent / "articles" / "rowing"

StartBot = Callable[..., Awaitable[commands.Bot]]
HANDLER_TASKS = ("discord.py: on_", "CommandTree-invoker")  # discord.py's names for event and command handlers
HANDLERS_SECONDS = 10.0


# The one setting the suite takes from the caller: the suite is meant to pass in either precision.
PRECISION = "reader_precision"


def pytest_configure(config: pytest.Config) -> None:
    """The suite owns its settings: every variable the project reads is cleared (but READER_PRECISION), so that
    what a user exported (LOG_QUESTIONS=false, DISCORD_TOKEN, THREADS …) never changes an outcome."""
    for name in Settings.model_fields:
        if name != PRECISION:
            os.environ.pop(name.upper(), None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by what it runs, read from the fixtures it uses: `model`, `discord`."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if "embedder" in fixtures:
            item.add_marker(pytest.mark.model)
        if "emu" in fixtures:
            item.add_marker(pytest.mark.discord)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Which precision the reader ran in, when a test loaded it: answers near the threshold may differ between fp32
    and bf16. (Said at the end, so that the unit tests never import torch.)"""
    reader = sys.modules.get("bot.reader")
    if reader is not None:
        chosen = os.environ.get(PRECISION.upper(), "auto")
        running = chosen if chosen != "auto" else "bf16" if reader.bf16_pays() else "fp32"
        terminalreporter.write_line(f"reader precision: {running} (READER_PRECISION={chosen})")


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder().load()


# What every test relies on about servers, whatever the developer exported.
SERVERS: dict[str, Any] = {"base_corpus": True, "allowed_guild_ids": [], "index_memory_mb": 1024}


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for the bundled corpus with a fresh index folder and question log, ignoring any .env of the
    developer."""
    log = tmp_path_factory.mktemp("log") / "articlebot.db"
    return load_settings(
        index_dir=tmp_path_factory.mktemp("index"),
        servers_dir=tmp_path_factory.mktemp("servers"),
        database_url=f"sqlite:///{log}",
        _env_file=None,
        **SERVERS,
    )


@pytest.fixture(scope="session")
def engine(settings: Settings, embedder: Embedder) -> Engine:
    return new_engine(settings, embedder)


@pytest.fixture(scope="session")
def engines(engine: Engine, settings: Settings, embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The bundled article's engine, and one over the test article."""
    rowing = settings.model_copy(update={"corpus_dir": ROWING, "index_dir": tmp_path_factory.mktemp("rowing-index")})
    return {"wego": engine, "rowing": new_engine(rowing, embedder)}


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    """A writable copy of the bundled corpus."""
    return Path(shutil.copytree(BUNDLED_CORPUS, tmp_path / "corpus"))


@pytest.fixture
def own_engine(embedder: Embedder, corpus_copy: Path, tmp_path: Path) -> Engine:
    """An engine over a writable copy of the bundled corpus, with its own index folder and question log."""
    return new_engine(own_settings(corpus_copy, tmp_path), embedder)


def new_engine(settings: Settings, embedder: Embedder) -> Engine:
    """An engine (imported here, so that the unit tests, which need none, never import torch)."""
    from bot.engine import Engine

    return Engine(settings, embedder)


def own_settings(corpus: Path, folder: Path, **overrides: Any) -> Settings:
    """Settings for a writable corpus, with the index and the question log in `folder` (never the developer's)."""
    log = f"sqlite:///{folder / 'articlebot.db'}"
    return load_settings(
        corpus_dir=corpus,
        index_dir=folder / "index",
        servers_dir=folder / "servers",
        database_url=log,
        _env_file=None,
        **(SERVERS | overrides),
    )


@pytest.fixture
async def emu() -> AsyncIterator[DiscordEmulator]:
    async with DiscordEmulator() as emulator:
        yield emulator


@pytest.fixture
async def run_bot(emu: DiscordEmulator) -> AsyncIterator[Callable[[commands.Bot], Awaitable[commands.Bot]]]:
    """Start bots against the emulator until ready; on teardown close them and check nothing leaked."""
    loop = asyncio.get_running_loop()
    problems: list[dict[str, Any]] = []
    previous_handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: problems.append(context))
    started: list[tuple[commands.Bot, asyncio.Task[None]]] = []

    async def run(bot: commands.Bot) -> commands.Bot:
        task = asyncio.create_task(bot.start(emu.token))
        started.append((bot, task))
        await emu.wait_for(lambda: bot.is_ready() or task.done(), timeout=10)
        if task.done():
            task.result()  # raises what made the bot stop
        return bot

    try:
        yield run
    finally:
        await handlers_done()
        for bot, task in started:
            await bot.close()
            await asyncio.wait_for(task, timeout=5)  # connect() returns normally after close()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gc.collect()
        loop.set_exception_handler(previous_handler)
    assert not problems, problems
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
    leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    assert not leftover, leftover
    await emu.wait_for(lambda: not any(t.name.startswith("keep-alive-handler") for t in threading.enumerate()))


async def handlers_done() -> None:
    """Let the handlers a test set off finish their last steps (such as the thread started on an answer after the
    test saw the answer) before the bots close, within a bound."""
    running = [t for t in asyncio.all_tasks() if t.get_name().startswith(HANDLER_TASKS) and not t.done()]
    if running:
        await asyncio.wait(running, timeout=HANDLERS_SECONDS)


@pytest.fixture
def start_bot(emu: DiscordEmulator, run_bot: Callable[[commands.Bot], Awaitable[commands.Bot]], engine: Engine):
    """Start the article bot on an engine (the session's by default), syncing its commands to the guild."""

    async def start(engine: Engine = engine, **settings: Any) -> commands.Bot:
        update = {"discord_guild_id": emu.guild_id, "cooldown_seconds": 0, **settings}
        return await run_bot(create_bot(engine.settings.model_copy(update=update), engine))

    return start
