"""Many guilds: processes that each run some of the shards (SHARD_IDS of SHARD_COUNT) over one INDEX_DIR and
SERVERS_DIR, each serving the build published elsewhere (INDEX_WATCH_SECONDS).

Two `articlebot run` processes, started as deployed (one per shard), reach the Discord API emulator on 127.0.0.1
through DISCORD_API_URL; each keeps its own question log, which tells which process answered.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import pytest
from conftest import own_settings
from discord_emulator import DiscordEmulator, UserFile

from bot.engine import Engine
from bot.knowledge import index_config
from bot.questionlog import QuestionLog
from bot.settings import Settings, SettingsError, load_settings
from index.build import build
from index.embedder import Embedder
from index.folder import IndexFolder

pytestmark = pytest.mark.slow

T = TypeVar("T")
QUESTION = "Who leads the lantern parade?"
FESTIVAL = (
    "---\ntitle: Harbour Lantern Festival\n---\n"
    "The lantern parade of the Harbour Lantern Festival is led by Captain Ilse Marrow.\n"
)
ARTICLEBOT = str(Path(sys.executable).parent / "articlebot")
SHARD_COUNT = 2
WATCH_SECONDS = 0.2
START_SECONDS = 120  # each process loads the model and the reader; the machine may be busy
REFRESH_SECONDS = 15  # the other process notices the build within WATCH_SECONDS and loads it
STOP_SECONDS = 10
LOG_TAIL_CHARS = 3000


@pytest.fixture
async def emu() -> AsyncIterator[DiscordEmulator]:
    """Two shards, the guild's on shard 1 (DMs are always on shard 0): each process then has its own traffic."""
    async with DiscordEmulator(shard_count=SHARD_COUNT, guild_shard=(1, SHARD_COUNT)) as emulator:
        yield emulator


@dataclass
class ShardProcess:
    """An `articlebot run` process running one shard, its output (the bot's log) in a file."""

    shard: int
    process: asyncio.subprocess.Process
    output: IO[str]
    database_url: str

    @classmethod
    async def start(cls, emu: DiscordEmulator, shard: int, corpus: Path, folder: Path) -> ShardProcess:
        env = shard_environment(emu, shard, corpus, folder)
        output = (folder / f"shard-{shard}.log").open("w+", encoding="utf-8")
        process = await asyncio.create_subprocess_exec(
            ARTICLEBOT, "run", env=env, cwd=folder, stdout=output, stderr=subprocess.STDOUT
        )
        return cls(shard, process, output, env["DATABASE_URL"])

    def log(self) -> str:
        """Its output so far: the bot's log, at LOG_LEVEL INFO."""
        return Path(self.output.name).read_text(encoding="utf-8")

    def questions(self) -> list[dict[str, Any]]:
        """The questions this process answered, from its own question log."""
        questions = QuestionLog.open(self.database_url, None, retention_days=1)
        try:
            return list(questions.rows(days=1))
        finally:
            questions.close()

    async def stop(self) -> None:
        """Terminate the process, and kill it if it has not ended within STOP_SECONDS."""
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), STOP_SECONDS)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        self.output.close()


def shard_environment(emu: DiscordEmulator, shard: int, corpus: Path, folder: Path) -> dict[str, str]:
    """What `articlebot run` reads for one shard: the emulator, the shared corpus and index, its own question log;
    none of the developer's settings."""
    clean = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    return {
        **clean,
        "DISCORD_TOKEN": emu.token,
        "DISCORD_API_URL": emu.base_url,
        "DISCORD_GUILD_ID": str(emu.guild_id),
        "SHARD_COUNT": str(SHARD_COUNT),
        "SHARD_IDS": str(shard),
        "CORPUS_DIR": str(corpus),
        "INDEX_DIR": str(folder / "index"),
        "SERVERS_DIR": str(folder / "servers"),
        "INDEX_WATCH_SECONDS": str(WATCH_SECONDS),
        "DATABASE_URL": f"sqlite:///{folder / f'shard-{shard}' / 'articlebot.db'}",
        "COOLDOWN_SECONDS": "0",
        "LOG_LEVEL": "INFO",
    }


@pytest.fixture
async def shards(
    emu: DiscordEmulator, embedder: Embedder, corpus_copy: Path, tmp_path: Path
) -> AsyncIterator[list[ShardProcess]]:
    """Shard 0 and shard 1 of 2, each in its own process, once both have identified with the emulator; the index
    is built here first so that neither process builds it."""
    build(index_config(own_settings(corpus_copy, tmp_path)), embedder)
    processes: list[ShardProcess] = []
    try:
        for shard in range(SHARD_COUNT):
            processes.append(await ShardProcess.start(emu, shard, corpus_copy, tmp_path))
        await emu.wait_for(while_running(processes, lambda: identified(emu)), timeout=START_SECONDS)
        yield processes
    finally:
        for process in processes:
            await process.stop()


def identified(emu: DiscordEmulator) -> list[tuple[int, int]]:
    """The (shard, count) of each ready gateway session, once there are as many sessions as shards."""
    shards = sorted(s.shard for s in emu.gateway.sessions.values() if s.ready)
    return shards if len(shards) == SHARD_COUNT else []


def while_running(processes: list[ShardProcess], predicate: Callable[[], T]) -> Callable[[], T]:
    """`predicate`, failing at once with the process's log if one of the processes has ended."""

    def check() -> T:
        for p in processes:
            if p.process.returncode is not None:
                raise AssertionError(
                    f"shard {p.shard} exited with {p.process.returncode}:\n{p.log()[-LOG_TAIL_CHARS:]}"
                )
        return predicate()

    return check


def created_on(emu: DiscordEmulator, shard: int) -> set[str]:
    """The ids of the messages whose MESSAGE_CREATE went to `shard`'s session."""
    return {d["id"] for d in emu.dispatched("MESSAGE_CREATE", shard=shard)}


@pytest.mark.timeout(START_SECONDS + 120)  # the processes start, then each step has its own bound
async def test_two_processes_share_the_shards_and_serve_a_published_build(
    emu: DiscordEmulator, shards: list[ShardProcess], embedder: Embedder, corpus_copy: Path, tmp_path: Path
) -> None:
    dms, guild = shards  # shard 0 receives the DMs, shard 1 the guild's events
    assert identified(emu) == [(0, 2), (1, 2)], "each process identified only its own shard"

    admin, user = emu.add_member("ada", admin=True), emu.add_member("kai")
    in_guild = await emu.send_message(user, QUESTION, mention_bot=True)
    in_dm = await emu.send_message(user, QUESTION, dm=True)
    [guild_reply] = await emu.wait_for(lambda: emu.replies_to(in_guild), timeout=30)
    [dm_reply] = await emu.wait_for(lambda: emu.replies_to(in_dm), timeout=30)
    assert str(in_guild) in created_on(emu, 1) and str(in_guild) not in created_on(emu, 0)
    assert str(in_dm) in created_on(emu, 0) and str(in_dm) not in created_on(emu, 1)
    for reply in (guild_reply, dm_reply):
        assert "Marrow" not in reply.body["embeds"][0]["description"]
    [asked_in_guild], [asked_in_dm] = guild.questions(), dms.questions()  # logged before the reply is sent
    assert asked_in_guild["guild_id"] == str(emu.guild_id) and asked_in_dm["guild_id"] is None

    festival = UserFile("festival.md", FESTIVAL.encode())
    add = await emu.send_slash_command(admin, "add", {"file": festival})  # reaches the process of shard 1 only
    _, done = await emu.wait_for_responses(add.id, 2, timeout=60)
    assert done.body["content"].startswith("Added “Harbour Lantern Festival”")
    assert emu.dispatched("INTERACTION_CREATE", shard=0) == []
    in_guild = await emu.send_message(user, QUESTION, mention_bot=True)
    [reply] = await emu.wait_for(lambda: emu.replies_to(in_guild), timeout=30)
    assert "Ilse Marrow" in reply.body["embeds"][0]["description"], "the server's own document"

    (corpus_copy / "festival.md").write_text(FESTIVAL, encoding="utf-8")  # the shared corpus, changed by its owner
    await asyncio.to_thread(build, index_config(own_settings(corpus_copy, tmp_path)), embedder)  # `articlebot build`
    published = IndexFolder(tmp_path / "index").current()
    for process in shards:
        await emu.wait_for(lambda p=process: f"index loaded from {published}" in p.log(), timeout=REFRESH_SECONDS)

    again = await emu.send_message(user, QUESTION, dm=True)
    [reply] = await emu.wait_for(lambda: emu.replies_to(again), timeout=30)
    assert "Ilse Marrow" in reply.body["embeds"][0]["description"]
    assert str(again) in created_on(emu, 0) and str(again) not in created_on(emu, 1)
    assert [q["guild_id"] for q in dms.questions()] == [None, None] and len(guild.questions()) == 2
    assert emu.failed_requests == []


def test_shard_ids_must_be_shards_of_the_count() -> None:
    with pytest.raises(SettingsError, match=r"^invalid configuration: SHARD_IDS needs SHARD_COUNT"):
        load_settings(shard_ids="0", _env_file=None)
    with pytest.raises(SettingsError, match=r"between 0 and SHARD_COUNT - 1 \(1\)"):
        load_settings(shard_ids="0, 2", shard_count=2, _env_file=None)
    assert load_settings(shard_ids="1", shard_count=2, _env_file=None).shard_ids == [1]


def test_a_build_published_by_another_process_is_served_unless_it_is_broken(
    engine: Engine, corpus_copy: Path, tmp_path: Path
) -> None:
    settings = own_settings(corpus_copy, tmp_path)
    serving, other = (Engine(settings, engine.embedder, engine.answerer) for _ in range(2))
    assert not serving.library.base.refresh(), "nothing new was published"
    (corpus_copy / "festival.md").write_text("The lantern parade is led by Captain Ilse Marrow.\n", encoding="utf-8")
    other.library.base.rebuild()
    assert (
        serving.library.base.refresh()
        and serving.library.base.sources().built_at == other.library.base.sources().built_at
    )
    assert "Marrow" in serving.ask(QUESTION).text

    served = IndexFolder(settings.index_dir).current()
    other.library.base.rebuild(force=True)
    published = IndexFolder(settings.index_dir).current()
    assert published is not None and published != served
    (published / "vectors.faiss").write_bytes(b"truncated")
    assert not serving.library.base.refresh(), "a broken build is not served"
    assert "Marrow" in serving.ask(QUESTION).text
