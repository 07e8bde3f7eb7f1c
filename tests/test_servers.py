"""One bot, many servers, through the real discord.py client and the emulator: each server answers from the shared
base and its own documents, manages and sees only its own, and what a server added goes when the bot leaves it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from discord.ext import commands
from discord_emulator import DiscordEmulator, UserFile

from bot.engine import Engine

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

StartBot = Callable[..., Awaitable[commands.Bot]]
ARTICLES = Path(__file__).parent / "articles"
DEVSET = Path(__file__).parent / "devset"
ROWING = UserFile("rowing.txt", (ARTICLES / "rowing" / "northern-rowing-league.txt").read_bytes())
SAILING = UserFile("sailing.txt", (DEVSET / "newsletter" / "harbour-sailing-club.txt").read_bytes())
COACH = "Who is the head coach of the Northern Rowing League?"
COMMODORE = "Who is the club's commodore?"
SHARED = "wego-general-assembly.txt"


async def outcome(emu: DiscordEmulator, user: int, command: str, options: dict[str, Any], **where: Any) -> str:
    """What an admin command finally said: the edited progress message, or its one reply."""
    interaction = await emu.send_slash_command(user, command, options, **where)
    [first] = await emu.wait_for_responses(interaction.id, 1, timeout=60)
    if first.body.get("type") == 4 and not first.body["data"]["content"].endswith("…"):
        return first.body["data"]["content"]  # refused at once
    _, done = await emu.wait_for_responses(interaction.id, 2, timeout=60)
    return done.body.get("content") or done.body["data"]["content"]


async def answer(emu: DiscordEmulator, user: int, question: str, **where: Any) -> dict[str, Any]:
    """The embed of `/ask question` (in the default server, another with guild_id=, or a DM with guild=False)."""
    interaction = await emu.send_slash_command(user, "ask", {"question": question}, **where)
    _, reply = await emu.wait_for_responses(interaction.id, 2, timeout=60)
    [embed] = reply.body["embeds"]
    return embed


def cites(embed: dict[str, Any], title: str) -> bool:
    return any(title in field["name"] for field in embed.get("fields", []))


async def test_server_admins_change_their_servers_documents_and_only_owners_the_base(
    emu: DiscordEmulator, start_bot: StartBot, own_engine: Engine
) -> None:
    manager, owner, member = emu.add_member("mo", admin=True), emu.add_member("olga"), emu.add_member("pim")
    await start_bot(own_engine, admin_user_ids=[owner], allow_dms=True, discord_guild_id=None)
    base = own_engine.library.base

    added = await outcome(emu, manager, "add", {"file": ROWING})
    assert added.startswith("Added “Northern Rowing League")
    assert [d.id for d in base.sources().documents] == [SHARED], "a server's /add never reaches the base"
    removed = await outcome(emu, manager, "remove", {"document": SHARED})
    assert removed.startswith("Nothing changed: there is no document") and len(base.sources().documents) == 1
    in_dm = await outcome(emu, manager, "add", {"file": SAILING}, guild=False)
    assert in_dm == "Only server administrators can add documents."

    by_owner = await outcome(emu, owner, "add", {"file": SAILING}, guild=False)
    assert by_owner.startswith("Added “") and len(base.sources().documents) == 2
    assert "Ruth Callander" in (await answer(emu, member, COMMODORE, guild=False))["description"]
    assert "Ruth Callander" in (await answer(emu, member, COMMODORE))["description"], "the base is shared"
    assert "Lindqvist" not in (await answer(emu, member, COACH, guild=False))["description"], "DMs: base only"
    assert emu.failed_requests == []


async def test_rebuilding_in_a_server_leaves_the_base_alone(
    emu: DiscordEmulator, start_bot: StartBot, own_engine: Engine
) -> None:
    admin = emu.add_member("quin", admin=True)
    await start_bot(own_engine)
    built_at = own_engine.library.base.sources().built_at
    nothing = await outcome(emu, admin, "rebuild", {})
    assert nothing.startswith("This server has no documents of its own yet")
    await outcome(emu, admin, "add", {"file": ROWING})
    rebuilt = await outcome(emu, admin, "rebuild", {})
    assert rebuilt.startswith("Index already up to date: 1 documents")
    await asyncio.sleep(0)
    assert own_engine.library.base.sources().built_at == built_at


async def test_a_document_added_in_one_server_is_never_quoted_listed_or_removable_in_another(
    emu: DiscordEmulator, start_bot: StartBot, own_engine: Engine
) -> None:
    other = await emu.add_guild("Other")
    admin_a, admin_b = emu.add_member("ann", admin=True), emu.add_member("bo", admin=True, guild_id=other)
    member = emu.add_member("cy")
    emu.join(member, other)
    await start_bot(own_engine, discord_guild_id=None)

    assert (await outcome(emu, admin_a, "add", {"file": ROWING})).startswith("Added “Northern Rowing League")
    [document] = own_engine.library.manager(emu.guild_id).sources().documents
    in_a, in_b = await answer(emu, member, COACH), await answer(emu, member, COACH, guild_id=other)
    assert "Lindqvist" in in_a["description"] and cites(in_a, "Northern Rowing League")
    assert "Lindqvist" not in in_b["description"] and not cites(in_b, "Northern Rowing League")

    offered = await emu.autocomplete(admin_b, "remove", {"document": ""}, focused="document", guild_id=other)
    assert offered == [], "B's admin is not even offered A's document"
    removed = await outcome(emu, admin_b, "remove", {"document": document.id}, guild_id=other)
    assert removed.startswith("Nothing changed: there is no document")
    sources = await emu.send_slash_command(member, "sources", guild_id=other)
    [listing] = await emu.wait_for_responses(sources.id, 1, timeout=60)
    assert "Northern Rowing League" not in str(listing.body["data"]["embeds"])
    assert "Lindqvist" in (await answer(emu, member, COACH))["description"], "still there in A"
    assert emu.failed_requests == []


async def test_stats_in_a_server_show_only_its_own_questions(
    emu: DiscordEmulator, start_bot: StartBot, own_engine: Engine
) -> None:
    other = await emu.add_guild("Other")
    admin_a, admin_b = emu.add_member("dee", admin=True), emu.add_member("eli", admin=True, guild_id=other)
    await start_bot(own_engine, discord_guild_id=None)
    unanswered_a, unanswered_b = "What is the capital of Australia?", "How tall is the Eiffel Tower?"
    await answer(emu, admin_a, unanswered_a)  # not answered: listed among the gaps of /stats
    await answer(emu, admin_b, unanswered_b, guild_id=other)

    for admin, where, asked, never in (
        (admin_a, {}, unanswered_a, unanswered_b),
        (admin_b, {"guild_id": other}, unanswered_b, unanswered_a),
    ):
        interaction = await emu.send_slash_command(admin, "stats", **where)
        _, shown = await emu.wait_for_responses(interaction.id, 2, timeout=60)
        text = shown.body.get("content") or shown.body["data"]["content"]
        assert text.startswith("Last 7 days: 1 questions") and asked in text and never not in text
    assert emu.failed_requests == []


async def test_removing_the_bot_deletes_what_the_server_added_but_an_outage_does_not(
    emu: DiscordEmulator, start_bot: StartBot, own_engine: Engine
) -> None:
    other = await emu.add_guild("Other")
    admin = emu.add_member("fay", admin=True, guild_id=other)
    bot = await start_bot(own_engine, discord_guild_id=None)
    assert (await outcome(emu, admin, "add", {"file": ROWING}, guild_id=other)).startswith("Added")
    await answer(emu, admin, COACH, guild_id=other)
    folder, log = own_engine.library.servers_dir / str(other), bot.questions
    assert folder.is_dir() and log is not None and log.stats(30, other)["questions"] == 1

    await emu.guild_outage(other)
    await asyncio.sleep(0.5)
    assert folder.is_dir() and log.stats(30, other)["questions"] == 1, "an outage deletes nothing"
    await emu.end_guild_outage(other)

    await emu.remove_bot(other)
    await emu.wait_for(lambda: not folder.exists(), timeout=30)
    await emu.wait_for(lambda: log.stats(30, other)["questions"] == 0, timeout=30)
    assert own_engine.library.servers() == []


async def test_forget_deletes_the_servers_documents_and_questions(
    emu: DiscordEmulator, start_bot: StartBot, own_engine: Engine
) -> None:
    admin, member = emu.add_member("gil", admin=True), emu.add_member("hal")
    bot = await start_bot(own_engine)
    await outcome(emu, admin, "add", {"file": ROWING})
    await answer(emu, member, COACH)
    assert (
        await outcome(emu, member, "forget", {"confirm": True})
        == "Only server administrators can make the bot forget this server."
    )
    assert await outcome(emu, admin, "forget", {"confirm": False}) == "Nothing deleted (confirm was False)."
    assert own_engine.library.servers() == [emu.guild_id]

    interaction = await emu.send_slash_command(admin, "forget", {"confirm": True})
    _, done = await emu.wait_for_responses(interaction.id, 2, timeout=60)
    assert done.body["content"] == "Deleted its documents and index and 1 logged questions."
    assert own_engine.library.servers() == [] and bot.questions.stats(30, emu.guild_id)["questions"] == 0
    assert "Lindqvist" not in (await answer(emu, member, COACH))["description"]


async def test_the_bot_leaves_servers_not_allowed(
    emu: DiscordEmulator, start_bot: StartBot, own_engine: Engine
) -> None:
    stranger = await emu.add_guild("Stranger")
    await start_bot(own_engine, allowed_guild_ids=[emu.guild_id], discord_guild_id=None)
    await emu.wait_for(lambda: not emu.guild(stranger).has_bot, timeout=30)
    invited = await emu.add_guild("Invited later")
    await emu.wait_for(lambda: not emu.guild(invited).has_bot, timeout=30)
    assert emu.guild(emu.guild_id).has_bot
    left = [r for r in emu.requests if r.method == "DELETE" and "/users/@me/guilds/" in r.path]
    assert sorted(r.path.rsplit("/", 1)[1] for r in left) == sorted([str(stranger), str(invited)])


async def test_three_servers_take_turns_within_a_budget_for_two_indexes(
    emu: DiscordEmulator, start_bot: StartBot, own_engine: Engine
) -> None:
    guilds = [emu.guild_id, await emu.add_guild("Two"), await emu.add_guild("Three")]
    member = emu.add_member("ivy")
    for guild in guilds[1:]:
        emu.join(member, guild)
    library = own_engine.library
    files = (ROWING, SAILING, UserFile("tidepool.txt", (DEVSET / "release" / "tidepool-4-2.txt").read_bytes()))
    for guild, file in zip(guilds, files, strict=True):
        await asyncio.to_thread(library.manager(guild).add_file, file.filename, file.data)
    sizes = sorted(library.server(g).footprint for g in guilds)
    library.memory_bytes = sizes[-1] + sizes[-2]
    await start_bot(own_engine, discord_guild_id=None)

    facts = [(COACH, "Lindqvist"), (COMMODORE, "Ruth Callander"), ("When was Tidepool 4.2 released?", "3 March")]
    for guild, (question, fact) in [*zip(guilds, facts, strict=True)] * 2:
        assert fact in (await answer(emu, member, question, guild_id=guild))["description"]
        assert len(library._open) <= 2
    assert emu.failed_requests == []
