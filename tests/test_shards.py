"""Many guilds: processes that each run some of the shards (SHARD_IDS of SHARD_COUNT) over one INDEX_DIR, each
serving the build any of them publishes (INDEX_WATCH_SECONDS).

Two bots with their own engines over one corpus and index folder stand for two processes; they share only the
loaded model and reader, which are read-only, so that the test stays fast.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from conftest import own_settings
from discord.ext import commands
from discord_emulator import DiscordEmulator

from bot.discord_bot import create_bot
from bot.engine import Engine
from bot.settings import SettingsError, load_settings
from index.folder import IndexFolder

QUESTION = "Who leads the lantern parade?"


@pytest.fixture
async def emu() -> AsyncIterator[DiscordEmulator]:
    """Two shards, the guild's on shard 1 (DMs are always on shard 0): each process then has its own traffic."""
    async with DiscordEmulator(shard_count=2, guild_shard=(1, 2)) as emulator:
        yield emulator


def created_on(emu: DiscordEmulator, shard: int) -> set[str]:
    """The ids of the messages whose MESSAGE_CREATE went to `shard`'s session."""
    return {d["id"] for d in emu.dispatched("MESSAGE_CREATE", shard=shard)}


async def test_two_processes_share_the_shards_and_serve_each_others_rebuild(
    emu: DiscordEmulator,
    run_bot: Callable[[commands.Bot], Awaitable[commands.Bot]],
    engine: Engine,
    corpus_copy: Path,
    tmp_path: Path,
) -> None:
    shared = own_settings(
        corpus_copy, tmp_path, shard_count=2, index_watch_seconds=0.2, discord_guild_id=emu.guild_id, cooldown_seconds=0
    )
    engines, bots = [], []
    for shard in (0, 1):
        settings = shared.model_copy(update={"shard_ids": [shard]})
        engines.append(Engine(settings, engine.embedder, engine.answerer))
        bots.append(await run_bot(create_bot(settings, engines[-1])))
    assert [b.shard_ids for b in bots] == [[0], [1]]
    assert bots[0].get_guild(emu.guild_id) is None and bots[1].get_guild(emu.guild_id) is not None

    admin, user = emu.add_member("ada", admin=True), emu.add_member("kai")
    in_guild = await emu.send_message(user, QUESTION, mention_bot=True)
    in_dm = await emu.send_message(user, QUESTION, dm=True)
    [guild_reply] = await emu.wait_for(lambda: emu.replies_to(in_guild), timeout=30)
    [dm_reply] = await emu.wait_for(lambda: emu.replies_to(in_dm), timeout=30)
    assert str(in_guild) in created_on(emu, 1) and str(in_guild) not in created_on(emu, 0)
    assert str(in_dm) in created_on(emu, 0) and str(in_dm) not in created_on(emu, 1)
    for reply in (guild_reply, dm_reply):
        assert "Marrow" not in reply.body["embeds"][0]["description"]

    (corpus_copy / "festival.md").write_text(
        "---\ntitle: Harbour Lantern Festival\n---\n"
        "The lantern parade of the Harbour Lantern Festival is led by Captain Ilse Marrow.\n",
        encoding="utf-8",
    )
    rebuild = await emu.send_slash_command(admin, "rebuild")  # reaches the process of shard 1 only
    _, done = await emu.wait_for_responses(rebuild.id, 2, timeout=60)
    assert done.body["content"].startswith("Index rebuilt: 2 documents")
    await emu.wait_for(lambda: engines[0].sources().built_at == engines[1].sources().built_at, timeout=5)

    again = await emu.send_message(user, QUESTION, dm=True)
    [reply] = await emu.wait_for(lambda: emu.replies_to(again), timeout=30)
    assert "Ilse Marrow" in reply.body["embeds"][0]["description"]
    assert str(again) in created_on(emu, 0) and emu.failed_requests == []


def test_shard_ids_must_be_shards_of_the_count() -> None:
    with pytest.raises(SettingsError, match="SHARD_IDS needs SHARD_COUNT"):
        load_settings(shard_ids="0", _env_file=None)
    with pytest.raises(SettingsError, match=r"between 0 and SHARD_COUNT - 1 \(1\)"):
        load_settings(shard_ids="0, 2", shard_count=2, _env_file=None)
    assert load_settings(shard_ids="1", shard_count=2, _env_file=None).shard_ids == [1]


def test_a_build_published_by_another_process_is_served_unless_it_is_broken(
    engine: Engine, corpus_copy: Path, tmp_path: Path
) -> None:
    settings = own_settings(corpus_copy, tmp_path)
    serving, other = (Engine(settings, engine.embedder, engine.answerer) for _ in range(2))
    assert not serving.refresh(), "nothing new was published"
    (corpus_copy / "festival.md").write_text("The lantern parade is led by Captain Ilse Marrow.\n", encoding="utf-8")
    other.rebuild()
    assert serving.refresh() and serving.sources().built_at == other.sources().built_at
    assert "Marrow" in serving.ask(QUESTION).text

    served = IndexFolder(settings.index_dir).current()
    other.rebuild(force=True)
    published = IndexFolder(settings.index_dir).current()
    assert published is not None and published != served
    (published / "vectors.faiss").write_bytes(b"truncated")
    assert not serving.refresh(), "a broken build is not served"
    assert "Marrow" in serving.ask(QUESTION).text
