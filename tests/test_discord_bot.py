"""The real bot (real discord.py client, real engine, real model and FAISS index) against the Discord API emulator.

Every assertion is on what Discord would have received: interaction callbacks, follow-ups, edits and channel
messages, with their embeds, flags and `allowed_mentions`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import discord
import pytest
import yaml
from conftest import handlers_done, own_settings
from discord.ext import commands
from discord_emulator import FLAG_EPHEMERAL, DiscordEmulator, RecordedRequest
from pydantic import SecretStr

from bot.discord_bot import PERMISSIONS, create_bot, invite_url, run_bot, serve
from bot.engine import Engine
from bot.questionlog import COMMENT_CHARS
from bot.settings import Settings
from index.embedder import Embedder
from index.manager import IndexManager

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

CALLBACK_MESSAGE, CALLBACK_DEFERRED = 4, 5
SECRETARIAT = "Who heads WeGO's secretariat?"
OFF_TOPIC = "What is the capital of Australia?"
README = Path(__file__).parents[1] / "README.md"
QUESTIONS = yaml.safe_load((Path(__file__).parent / "questions.yaml").read_text(encoding="utf-8"))
ANSWERABLE = [c for c in QUESTIONS["answerable"] if c["question"] not in QUESTIONS["reader_misses"]]

StartBot = Callable[..., Awaitable[commands.Bot]]
ROWING = (Path(__file__).parent / "articles" / "rowing" / "northern-rowing-league.txt").read_bytes()
COACH = "Who is the head coach of the Northern Rowing League?"


def server_index(engine: Engine, emu: DiscordEmulator) -> IndexManager:
    """The index of the documents added in the emulated server."""
    return engine.library.manager(emu.guild_id)


async def ask_by_mention(emu: DiscordEmulator, user: int, question: str, **where: Any) -> RecordedRequest:
    """Post `@bot question` as `user` and return the bot's reply."""
    message = await emu.send_message(user, question, mention_bot=True, **where)
    [reply] = await emu.wait_for(lambda: emu.replies_to(message), timeout=30)
    return reply


async def thread_on(emu: DiscordEmulator, reply: RecordedRequest) -> Any:
    """The thread the bot starts on its answer (just after sending it)."""
    return await emu.wait_for(lambda: emu.threads.get(int(reply.response["id"])), timeout=10)


def embed_text(embed: dict[str, Any]) -> str:
    return "\n".join([embed["description"], *(f"{f['name']}\n{f['value']}" for f in embed.get("fields", []))])


def assert_no_pings(request: RecordedRequest) -> None:
    """The payload forbids every ping, and Discord (the emulator) indeed pinged nobody."""
    allowed = request.body["allowed_mentions"]
    assert allowed["parse"] == [] and not allowed.get("users") and not allowed.get("roles")
    assert not allowed.get("replied_user")
    message = request.response.get("resource", {}).get("message", request.response)
    assert message["mentions"] == [] and message["mention_roles"] == [] and not message["mention_everyone"]


def assert_cited_answer(embed: dict[str, Any], fact: str, paragraph: int) -> None:
    """An answer embed: the fact with a [1] marker in the text, then "Sources [1] …, ¶N" with the quote."""
    assert fact.lower() in embed["description"].lower() and "[1]" in embed["description"]
    first = embed["fields"][0]
    assert first["name"].startswith("Sources [1] ") and first["name"].endswith(f"¶{paragraph}")
    assert first["value"].startswith("> ") and "BusinessKorea" in first["value"]


async def test_mention_gets_a_cited_answer(emu: DiscordEmulator, start_bot: StartBot, caplog) -> None:
    caplog.set_level(logging.INFO, logger="bot")
    user = emu.add_member("bob")
    await start_bot()
    reply = await ask_by_mention(emu, user, SECRETARIAT)

    [embed] = reply.body["embeds"]
    assert_cited_answer(embed, "Park Jung-sook", 11)
    short, _, quote = embed["description"].partition("** — ")
    assert short.startswith("**") and "Park Jung-sook" in short and "[1]" in quote, "the short answer first, in bold"
    assert embed["title"] == "Who heads WeGO's secretariat?"
    assert reply.response["type"] == 19, "a reply to the question's message"
    assert_no_pings(reply)
    assert any(r.message.startswith("ready: logged in as") for r in caplog.records)
    assert "voice will NOT be supported" not in caplog.text, "a text-only bot does not warn about voice"
    assert invite_url(emu.application_id) in caplog.text
    assert f"permissions={PERMISSIONS.value}" in README.read_text(encoding="utf-8"), "README's invite link"
    [sync] = emu.command_syncs
    assert sorted(sync.names) == ["add", "ask", "forget", "help", "rebuild", "remove", "sources", "stats"]
    assert sync.guild_id == emu.guild_id
    manage_guild = str(discord.Permissions(manage_guild=True).value)
    for admin_only in [c for c in sync.commands if c["name"] in {"rebuild", "add", "remove"}]:
        assert admin_only["default_member_permissions"] == manage_guild, admin_only["name"]
    assert emu.failed_requests == []


async def test_slash_ask_defers_then_follows_up_with_the_same_answer(emu: DiscordEmulator, start_bot: StartBot) -> None:
    user = emu.add_member("carol")
    await start_bot()
    interaction = await emu.send_slash_command(user, "ask", {"question": SECRETARIAT})
    defer, followup = await emu.wait_for_responses(interaction.id, 2, timeout=60)

    assert defer.body["type"] == CALLBACK_DEFERRED and defer.query.get("with_response") in ("1", "true", "True")
    assert followup.method == "POST" and followup.route == "/webhooks/{application_id}/{token}"
    [embed] = followup.body["embeds"]
    assert_cited_answer(embed, "Park Jung-sook", 11)
    assert_no_pings(followup)
    [message] = emu.interaction_messages(interaction.id)
    assert message["embeds"][0]["description"] == embed["description"] and not message["flags"] & FLAG_EPHEMERAL

    mentioned = await ask_by_mention(emu, user, SECRETARIAT)
    assert mentioned.body["embeds"] == followup.body["embeds"], "both ways give the same answer"


async def test_out_of_scope_question_gets_the_abstention_form(emu: DiscordEmulator, start_bot: StartBot) -> None:
    user = emu.add_member("dave")
    await start_bot()
    [embed] = (await ask_by_mention(emu, user, OFF_TOPIC)).body["embeds"]

    assert "doesn't seem to answer" in embed["description"] or "does not seem" in embed["description"]
    assert "[1]" not in embed["description"]
    names = [field["name"] for field in embed.get("fields", [])]
    assert names and all(name.startswith("See also") for name in names), "closest passages, not sources"
    assert embed["color"] != discord.Colour.blurple().value


async def test_bad_input_is_handled_politely(emu: DiscordEmulator, start_bot: StartBot, engine: Engine) -> None:
    user = emu.add_member("erin")
    other_bot = emu.add_member("otherbot", bot=True)
    await start_bot()

    empty = await ask_by_mention(emu, user, "   ")
    assert "Ask a question about the article" in empty.body["content"] and "embeds" not in empty.body
    too_long = await ask_by_mention(emu, user, "why " * 200)
    assert f"under {engine.settings.max_question_chars}" in too_long.body["content"]
    interaction = await emu.send_slash_command(user, "ask", {"question": "why " * 200})
    [refusal] = await emu.wait_for_responses(interaction.id, 1, timeout=60)
    assert f"under {engine.settings.max_question_chars}" in refusal.body["data"]["content"]
    assert refusal.body["data"]["flags"] & FLAG_EPHEMERAL, "only the asker sees the hint"

    from_bot = await emu.send_message(other_bot, SECRETARIAT, mention_bot=True)
    await ask_by_mention(emu, user, SECRETARIAT)  # answered after the bot's message was seen and skipped
    assert emu.replies_to(from_bot) == []
    markdown = await ask_by_mention(emu, user, "**who** heads `the` ~~secretariat~~? ```py\nprint(1)\n```")
    assert markdown.body["embeds"][0]["title"].startswith(r"\*\*who\*\* heads \`the\`")
    assert emu.failed_requests == []


async def test_everyone_and_mentions_in_a_question_ping_nobody(emu: DiscordEmulator, start_bot: StartBot) -> None:
    user = emu.add_member("frank")
    victim = emu.add_member("grace")
    await start_bot()
    question = f"@everyone @here <@{victim}> <@&{emu.admin_role_id}> who heads WeGO's secretariat?"

    reply = await ask_by_mention(emu, user, question)
    assert_no_pings(reply)
    assert "@everyone" not in reply.body["embeds"][0]["title"].replace("@\u200beveryone", "")
    interaction = await emu.send_slash_command(user, "ask", {"question": question})
    _, followup = await emu.wait_for_responses(interaction.id, 2, timeout=60)
    assert_no_pings(followup)


async def test_a_very_long_passage_fits_discords_limits(
    emu: DiscordEmulator, start_bot: StartBot, embedder: Embedder, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    title = "The harbour lantern festival " * 12  # longer than an embed title may be
    clauses = ", ".join(f"stall {i} sells **lanterns** made of `paper` and _silk_ by @everyone" for i in range(90))
    (corpus / "festival.md").write_text(
        f"---\ntitle: {title}\nurl: https://example.org/festival\n---\n"
        f"The lantern festival is organised by the harbour guild and {clauses}.\n",
        encoding="utf-8",
    )
    engine = Engine(own_settings(corpus, tmp_path), embedder)
    user = emu.add_member("heidi")
    await start_bot(engine)

    for question in ("Who organises the lantern festival?", "lanterns " * 55):
        reply = await ask_by_mention(emu, user, question)
        assert reply.ok, reply.response
        [embed] = reply.body["embeds"]
        assert len(embed["title"]) <= 256 and len(embed["description"]) <= 4096
        assert all(len(f["name"]) <= 256 and len(f["value"]) <= 1024 for f in embed["fields"])
        assert len(discord.Embed.from_dict(embed)) <= 6000
    assert embed["fields"][0]["value"].rstrip().endswith("https://example.org/festival")
    assert emu.failed_requests == []


async def test_sources_and_help(emu: DiscordEmulator, start_bot: StartBot, engine: Engine) -> None:
    user = emu.add_member("ivan")
    await start_bot()

    sources = await emu.send_slash_command(user, "sources")
    [callback] = await emu.wait_for_responses(sources.id, 1, timeout=60)
    assert callback.body["type"] == CALLBACK_MESSAGE and callback.body["data"]["flags"] & FLAG_EPHEMERAL
    [embed] = callback.body["data"]["embeds"]
    [document] = engine.library.base.sources().documents
    assert embed["fields"][0]["name"].startswith("6th WeGO General Assembly")
    assert f"{document.passages} passages" in embed["fields"][0]["value"]
    assert engine.library.base.sources().built_at in embed["description"]

    help_ = await emu.send_slash_command(user, "help")
    [callback] = await emu.wait_for_responses(help_.id, 1, timeout=60)
    assert "/ask" in callback.body["data"]["content"] and "/rebuild" in callback.body["data"]["content"]
    assert "thread" in callback.body["data"]["content"] and "keyed hash" in callback.body["data"]["content"]


async def test_dms_follow_allow_dms(emu: DiscordEmulator, start_bot: StartBot) -> None:
    user = emu.add_member("judy")
    await start_bot(allow_dms=True)
    message = await emu.send_message(user, SECRETARIAT, dm=True)
    [reply] = await emu.wait_for(lambda: emu.replies_to(message), timeout=30)
    assert_cited_answer(reply.body["embeds"][0], "Park Jung-sook", 11)


async def test_dms_are_ignored_without_allow_dms(emu: DiscordEmulator, start_bot: StartBot) -> None:
    user = emu.add_member("judy")
    await start_bot(allow_dms=False)
    ignored = await emu.send_message(user, SECRETARIAT, dm=True)
    await ask_by_mention(emu, user, SECRETARIAT)
    assert emu.replies_to(ignored) == []


async def test_ask_channel_answers_every_message(emu: DiscordEmulator, start_bot: StartBot) -> None:
    ask_channel = emu.add_channel("ask-the-article")
    user = emu.add_member("ken")
    bot = await start_bot(ask_channel_ids=[ask_channel])

    assert bot.intents.message_content, "content of unmentioned messages needs the privileged intent"
    question = await emu.send_message(user, "where was it held?", channel_id=ask_channel)
    [reply] = await emu.wait_for(lambda: emu.replies_to(question), timeout=30)
    assert_cited_answer(reply.body["embeds"][0], "Seoul City Hall", 1)
    chatter = await emu.send_message(user, "where was it held?")  # another channel, no mention
    await ask_by_mention(emu, user, SECRETARIAT)
    assert emu.replies_to(chatter) == []


async def test_cooldown_says_when_to_try_again(emu: DiscordEmulator, start_bot: StartBot) -> None:
    user, other = emu.add_member("liam"), emu.add_member("mia")
    await start_bot(cooldown_seconds=60)

    await ask_by_mention(emu, user, SECRETARIAT)
    again = await ask_by_mention(emu, user, "where was it held?")
    assert "Try again in 60 s" in again.body["content"]
    interaction = await emu.send_slash_command(user, "ask", {"question": "where was it held?"})
    [refusal] = await emu.wait_for_responses(interaction.id, 1, timeout=60)
    assert "Try again in" in refusal.body["data"]["content"] and refusal.body["data"]["flags"] & FLAG_EPHEMERAL
    assert "embeds" in (await ask_by_mention(emu, other, "where was it held?")).body, "other users are not slowed"


async def test_an_empty_question_counts_against_the_cooldown_and_a_flood_gets_one_reply(
    emu: DiscordEmulator, start_bot: StartBot
) -> None:
    user, other = emu.add_member("liam"), emu.add_member("mia")
    await start_bot(cooldown_seconds=60)

    empty = await ask_by_mention(emu, user, "   ")
    assert "Ask a question about the article" in empty.body["content"]
    again = await ask_by_mention(emu, user, SECRETARIAT)
    assert "Try again in 60 s" in again.body["content"], "the empty question started the wait"
    flood = [await emu.send_message(user, "   ", mention_bot=True) for _ in range(5)]
    interaction = await emu.send_slash_command(user, "ask", {"question": "why " * 200})
    [refusal] = await emu.wait_for_responses(interaction.id, 1, timeout=60)
    assert "Try again in" in refusal.body["data"]["content"] and refusal.body["data"]["flags"] & FLAG_EPHEMERAL
    assert "embeds" in (await ask_by_mention(emu, other, SECRETARIAT)).body  # answered after the flood was seen
    assert all(emu.replies_to(message) == [] for message in flood), "told once per wait, then not again"


async def test_past_max_concurrent_questions_a_member_is_told_the_bot_is_busy(
    emu: DiscordEmulator, start_bot: StartBot
) -> None:
    first, second, third = emu.add_member("nell"), emu.add_member("omar"), emu.add_member("pia")
    await start_bot(max_concurrent_questions=1)
    emu.response_delays[("POST", "/channels/{channel_id}/messages")] = 5.0  # the first answer is still being sent
    question = await emu.send_message(first, SECRETARIAT, mention_bot=True)
    await emu.wait_for(lambda: emu.replies_to(question), timeout=30)

    interaction = await emu.send_slash_command(third, "ask", {"question": SECRETARIAT})
    [refusal] = await emu.wait_for_responses(interaction.id, 1, timeout=30)
    assert "try again in a moment" in refusal.body["data"]["content"]
    assert refusal.body["data"]["flags"] & FLAG_EPHEMERAL
    busy = await ask_by_mention(emu, second, SECRETARIAT)  # sent once the first answer's send returns
    assert "try again in a moment" in busy.body["content"] and "embeds" not in busy.body
    emu.response_delays.clear()
    await handlers_done()  # the first answer has been sent: its place is free again
    assert_cited_answer((await ask_by_mention(emu, second, SECRETARIAT)).body["embeds"][0], "Park Jung-sook", 11)


async def test_a_failing_command_logs_and_apologises(
    emu: DiscordEmulator, start_bot: StartBot, own_engine: Engine, caplog, monkeypatch
) -> None:
    user = emu.add_member("nina")
    await start_bot(own_engine)

    def broken(question: str, history: object = (), server: int | None = None) -> None:
        raise RuntimeError("the disk vanished")

    monkeypatch.setattr(own_engine, "ask", broken)  # a fault injected below the Discord layer
    with caplog.at_level(logging.ERROR):
        reply = await ask_by_mention(emu, user, SECRETARIAT)
        interaction = await emu.send_slash_command(user, "ask", {"question": SECRETARIAT})
        _, apology = await emu.wait_for_responses(interaction.id, 2, timeout=60)
    for text in (reply.body["content"], apology.body["content"]):
        assert text.startswith("Sorry, something went wrong") and "disk vanished" not in text
    assert sum(1 for r in caplog.records if r.exc_info and "disk vanished" in str(r.exc_info[1])) == 2


async def test_rebuild_is_refused_to_non_admins(emu: DiscordEmulator, start_bot: StartBot, own_engine: Engine) -> None:
    user = emu.add_member("oscar", roles=(emu.add_role("Helpers", discord.Permissions(kick_members=True).value),))
    await start_bot(own_engine)
    (own_engine.library.base.config.corpus_dir / "new.txt").write_text("A new document.\n", encoding="utf-8")
    built_at = own_engine.library.base.sources().built_at

    interaction = await emu.send_slash_command(user, "rebuild")
    [refusal] = await emu.wait_for_responses(interaction.id, 1, timeout=60)
    assert refusal.body["type"] == CALLBACK_MESSAGE and refusal.body["data"]["flags"] & FLAG_EPHEMERAL
    assert "Only server administrators" in refusal.body["data"]["content"]
    await asyncio.sleep(0.2)
    assert own_engine.library.base.sources().built_at == built_at and not own_engine.library.base.rebuilding
    assert len(emu.interaction_responses(interaction.id)) == 1


async def test_admin_roles_and_users_may_rebuild(emu: DiscordEmulator, start_bot: StartBot, engine: Engine) -> None:
    moderators = emu.add_role("Moderators")
    managers = emu.add_role("Managers", discord.Permissions(manage_guild=True).value)
    by_role, by_id, by_permission = (
        emu.add_member("pat", roles=(moderators,)),
        emu.add_member("quinn"),
        emu.add_member("ruth", roles=(managers,)),
    )
    await asyncio.to_thread(server_index(engine, emu).add_file, "rowing.txt", ROWING)
    await start_bot(admin_role_ids=[moderators], admin_user_ids=[by_id])

    for user in (by_role, by_id, by_permission, emu.owner_id):
        interaction = await emu.send_slash_command(user, "rebuild")
        _, done = await emu.wait_for_responses(interaction.id, 2, timeout=60)
        assert done.method == "PATCH" and done.path.endswith("/messages/@original")
        assert done.body["content"].startswith("Index already up to date: 1 documents")


async def test_admin_rebuild_swaps_in_new_documents_while_answering(
    emu: DiscordEmulator, start_bot: StartBot, own_engine: Engine
) -> None:
    admin, user = emu.add_member("sam", admin=True), emu.add_member("tess")
    indexes = server_index(own_engine, emu)
    await asyncio.to_thread(indexes.add_file, "rowing.txt", ROWING)
    await start_bot(own_engine)
    question = "Who leads the lantern parade?"
    assert "Marrow" not in embed_text((await ask_by_mention(emu, user, question)).body["embeds"][0])
    _write_festival(indexes.config.corpus_dir / "festival.txt")

    rebuild = await emu.send_slash_command(admin, "rebuild")
    [started] = await emu.wait_for_responses(rebuild.id, 1, timeout=60)
    assert "Rebuilding" in started.body["data"]["content"] and started.body["data"]["flags"] & FLAG_EPHEMERAL
    await emu.wait_for(lambda: indexes.rebuilding, timeout=10)
    during = [await ask_by_mention(emu, user, SECRETARIAT) for _ in range(3)]
    second = await emu.send_slash_command(admin, "rebuild")
    [busy] = await emu.wait_for_responses(second.id, 1, timeout=60)
    assert "already running" in busy.body["data"]["content"]
    assert indexes.rebuilding, "the questions were answered while the rebuild was still running"
    for reply in during:
        assert_cited_answer(reply.body["embeds"][0], "Park Jung-sook", 11)

    _, done = await emu.wait_for_responses(rebuild.id, 2, timeout=60)
    assert done.body["content"].startswith("Index rebuilt: 2 documents")
    embed = (await ask_by_mention(emu, user, question)).body["embeds"][0]
    assert "Ilse Marrow" in embed["description"] and "Harbour Lantern Festival" in embed["fields"][0]["name"]
    assert emu.failed_requests == []


async def test_a_failed_rebuild_keeps_the_old_index(
    emu: DiscordEmulator, start_bot: StartBot, own_engine: Engine
) -> None:
    admin = emu.add_member("uma", admin=True)
    indexes = server_index(own_engine, emu)
    await asyncio.to_thread(indexes.add_file, "rowing.txt", ROWING)
    await start_bot(own_engine)
    (indexes.config.corpus_dir / "empty.txt").write_text("\n", encoding="utf-8")

    interaction = await emu.send_slash_command(admin, "rebuild")
    _, failed = await emu.wait_for_responses(interaction.id, 2, timeout=60)
    assert failed.body["content"].startswith("Nothing changed: ")
    assert "empty.txt" in failed.body["content"]
    assert_cited_answer((await ask_by_mention(emu, admin, SECRETARIAT)).body["embeds"][0], "Park Jung-sook", 11)
    assert "Lindqvist" in (await ask_by_mention(emu, admin, COACH)).body["embeds"][0]["description"]


async def test_a_burst_of_questions_is_answered_and_logged_exactly_once(
    emu: DiscordEmulator, start_bot: StartBot, caplog, tmp_path: Path
) -> None:
    users = [emu.add_member(f"user{i}") for i in range(20)]
    bot = await start_bot(database_url=f"sqlite:///{tmp_path / 'burst.db'}", max_concurrent_questions=200)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        asked = {}
        for i in range(200):
            item = ANSWERABLE[i % len(ANSWERABLE)]
            asked[await emu.send_message(users[i % 20], item["question"], mention_bot=True)] = item
        await emu.wait_for(lambda: len(emu.channel_messages()) >= 200, timeout=150)
        await asyncio.sleep(0.5)  # room for any duplicate reply to show up
    elapsed = time.monotonic() - started

    replies = emu.channel_messages()
    assert len(replies) == 200 and {int(r.body["message_reference"]["message_id"]) for r in replies} == set(asked)
    for reply in replies:
        fact = asked[int(reply.body["message_reference"]["message_id"])]["fact"]
        facts = fact if isinstance(fact, list) else [fact]
        assert any(f.lower() in reply.body["embeds"][0]["description"].lower() for f in facts)
    assert emu.failed_requests == [] and not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert elapsed < 150
    await emu.wait_for(lambda: bot.questions.stats(days=1)["questions"] >= 200, timeout=30)
    logged = list(bot.questions.rows(days=1))
    assert len(logged) == 200 and all(r["front_end"] == "discord" and r["channel_id"] for r in logged)
    assert sorted(r["question"] for r in logged) == sorted(item["question"] for item in asked.values())


async def test_a_rejected_token_gives_one_clear_line(emu: DiscordEmulator, settings: Settings, capsys, caplog) -> None:
    token = "MTIz.not-the-token.at-all"
    bad = settings.model_copy(update={"discord_token": SecretStr(token), "discord_api_url": emu.base_url})

    assert await asyncio.to_thread(run_bot, bad) == 1
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "DISCORD_TOKEN" in err and token not in err
    assert emu.requests[-1].path == "/users/@me" and emu.requests[-1].status == 401
    assert token not in caplog.text and token not in repr(bad)


def _write_festival(path: Path) -> None:
    """A second document, long enough that its build takes a few seconds."""
    stalls = "\n\n".join(
        f"Stall {i} of the harbour market sells paper lanterns in shade {i}. Its keeper learned the craft in "
        f"workshop {i % 7}. Every evening the stall lights {i * 3} candles. Visitors queue for its tea."
        for i in range(80)
    )
    path.write_text(
        "---\ntitle: Harbour Lantern Festival\n---\n"
        f"The lantern parade of the Harbour Lantern Festival is led by Captain Ilse Marrow.\n\n{stalls}\n",
        encoding="utf-8",
    )


async def test_an_answer_starts_a_thread_where_every_message_follows_up(
    emu: DiscordEmulator, start_bot: StartBot
) -> None:
    user = emu.add_member("olivia")
    await start_bot()
    first = await ask_by_mention(emu, user, "Who gave the keynote address?")
    thread = await thread_on(emu, first)
    assert thread.name == "Who gave the keynote address?" and thread.parent_id == emu.channel_id

    replies = []
    for question in ("Where is she based?", "Which board does she chair?"):  # no mention needed in the thread
        message = await emu.send_message(user, question, channel_id=thread.id)
        [reply] = await emu.wait_for(lambda m=message: emu.replies_to(m), timeout=30)
        replies.append(reply.body["embeds"][0])
    assert_cited_answer(replies[0], "Stockholm", 7)
    assert_cited_answer(replies[1], "High Commissioner for Refugees", 7)
    assert len(emu.threads) == 1, "follow-ups are answered in the thread, not in new ones"
    assert emu.failed_requests == []


async def test_a_long_question_names_its_thread_within_discords_limit(
    emu: DiscordEmulator, start_bot: StartBot
) -> None:
    user = emu.add_member("pat")
    await start_bot()
    question = "Who heads the secretariat of the organization " + "that held its general assembly in Seoul " * 3
    reply = await ask_by_mention(emu, user, question)
    name = (await thread_on(emu, reply)).name
    assert len(name) <= 100 and name.endswith("…") and name.startswith("Who heads the secretariat")


async def test_without_threads_a_reply_to_an_answer_follows_it_up(emu: DiscordEmulator, start_bot: StartBot) -> None:
    user = emu.add_member("quinn")
    await start_bot(threads=False)
    first = await ask_by_mention(emu, user, "Who heads WeGO's secretariat?")
    follow_up = await emu.send_message(user, "In which city is her office?", reply_to=int(first.response["id"]))
    [reply] = await emu.wait_for(lambda: emu.replies_to(follow_up), timeout=30)
    assert_cited_answer(reply.body["embeds"][0], "Seoul", 11)
    alone = await ask_by_mention(emu, user, "In which city is her office?")
    sources = [field["name"] for field in alone.body["embeds"][0].get("fields", [])]
    cited = [name for name in sources if name.startswith("Sources [1] ") and name.endswith("¶11")]
    assert cited == [], "a new question has no history: 'her' is nobody"
    assert emu.threads == {}


async def test_a_dm_channel_is_one_conversation(emu: DiscordEmulator, start_bot: StartBot) -> None:
    user = emu.add_member("ruth")
    await start_bot(allow_dms=True)
    replies = []
    for question in ("Who heads WeGO's secretariat?", "In which city is her office?"):
        message = await emu.send_message(user, question, dm=True)
        [reply] = await emu.wait_for(lambda m=message: emu.replies_to(m), timeout=30)
        replies.append(reply.body["embeds"][0])
    assert_cited_answer(replies[1], "Seoul", 11)


def vote_buttons(reply: RecordedRequest) -> dict[str, str]:
    """The answer's buttons: emoji → custom_id."""
    message = reply.response.get("resource", {}).get("message", reply.response)
    return {b["emoji"]["name"]: b["custom_id"] for row in message["components"] for b in row["components"]}


async def click(emu: DiscordEmulator, user: int, message_id: int, custom_id: str) -> dict[str, Any]:
    """Click a button and return the bot's interaction callback body."""
    interaction = await emu.click_button(user, message_id, custom_id)
    [callback] = await emu.wait_for_responses(interaction.id, 1, timeout=30)
    return {"interaction": interaction.id, **callback.body}


async def test_votes_are_counted_once_per_member_and_a_down_vote_asks_why(
    emu: DiscordEmulator, start_bot: StartBot, tmp_path: Path
) -> None:
    member, other = emu.add_member("sam"), emu.add_member("tess")
    bot = await start_bot(database_url=f"sqlite:///{tmp_path / 'votes.db'}")
    reply = await ask_by_mention(emu, member, SECRETARIAT)
    buttons = vote_buttons(reply)
    assert set(buttons) == {"👍", "👎"} and all(b.startswith("vote:") for b in buttons.values())
    answer_id = int(reply.response["id"])

    up = await click(emu, member, answer_id, buttons["👍"])
    assert up["type"] == 4 and up["data"]["flags"] & FLAG_EPHEMERAL and "👍" in up["data"]["content"]
    down = await click(emu, member, answer_id, buttons["👎"])
    assert down["type"] == 9 and down["data"]["title"] == "What was wrong?"
    submitted = await emu.submit_modal(member, down["interaction"], {down_input(down): "It should say where."})
    [thanks] = await emu.wait_for_responses(submitted.id, 1, timeout=30)
    assert thanks.body["data"]["flags"] & FLAG_EPHEMERAL
    await click(emu, other, answer_id, buttons["👍"])

    stats = bot.questions.stats(days=1)
    assert stats["votes"] == {"up": 1, "down": 1}, "the member's second click changed their vote"
    [row] = list(bot.questions.rows(days=1))
    assert row["comments"] == "It should say where." and row["question"] == SECRETARIAT


async def test_two_members_comments_on_one_answer_are_both_kept_and_cut_to_the_limit(
    emu: DiscordEmulator, start_bot: StartBot, tmp_path: Path
) -> None:
    members = [emu.add_member(name) for name in ("rosa", "saul", "tina")]
    bot = await start_bot(database_url=f"sqlite:///{tmp_path / 'comments.db'}")
    reply = await ask_by_mention(emu, members[0], SECRETARIAT)
    answer_id, down = int(reply.response["id"]), vote_buttons(reply)["👎"]
    boxes = [await click(emu, member, answer_id, down) for member in members]  # three boxes open at once
    assert len({box["data"]["custom_id"] for box in boxes}) == 3 and len(bot.comment_boxes) == 3
    again = await click(emu, members[2], answer_id, down)  # the third member's earlier box was dismissed
    assert len(bot.comment_boxes) == 3, "one box per answer and member"

    long = "It never says where. " * 100  # past the box's 300 characters: a client need not enforce them
    submitted = [
        await emu.submit_modal(members[1], boxes[1]["interaction"], {down_input(boxes[1]): long}),
        await emu.submit_modal(members[0], boxes[0]["interaction"], {down_input(boxes[0]): "It should say where."}),
        await emu.submit_modal(members[2], again["interaction"], {down_input(again): "Too short."}),
    ]
    for interaction in submitted:
        [thanks] = await emu.wait_for_responses(interaction.id, 1, timeout=30)
        assert "👎 is recorded" in thanks.body["data"]["content"]
    [row] = list(bot.questions.rows(days=1))
    comments = sorted(row["comments"].split(" | "), key=len)
    assert row["down"] == 3 and comments == ["Too short.", "It should say where.", long[:COMMENT_CHARS]]
    assert len(bot.comment_boxes) == 0, "submitted boxes are forgotten"


async def test_vote_buttons_keep_working_after_a_restart(
    emu: DiscordEmulator, start_bot: StartBot, tmp_path: Path
) -> None:
    member = emu.add_member("uma")
    log = f"sqlite:///{tmp_path / 'votes.db'}"
    first = await start_bot(database_url=log)
    reply = await ask_by_mention(emu, member, OFF_TOPIC)
    await first.close()
    second = await start_bot(database_url=log)
    up = await click(emu, member, int(reply.response["id"]), vote_buttons(reply)["👍"])
    assert up["type"] == 4 and "👍" in up["data"]["content"]
    assert second.questions.stats(days=1)["votes"] == {"up": 1, "down": 0}


def down_input(callback: dict[str, Any]) -> str:
    """The custom_id of the modal's text input."""
    return callback["data"]["components"][0]["components"][0]["custom_id"]


async def test_stats_are_refused_to_members_and_shown_to_admins_with_a_chart(
    emu: DiscordEmulator, start_bot: StartBot, tmp_path: Path
) -> None:
    member, admin = emu.add_member("vic"), emu.add_member("wanda", admin=True)
    await start_bot(database_url=f"sqlite:///{tmp_path / 'stats.db'}")
    for question in (SECRETARIAT, OFF_TOPIC, OFF_TOPIC):
        await ask_by_mention(emu, member, question)

    refused = await emu.send_slash_command(member, "stats")
    [refusal] = await emu.wait_for_responses(refused.id, 1, timeout=30)
    assert "Only server administrators" in refusal.body["data"]["content"]
    assert refusal.body["data"]["flags"] & FLAG_EPHEMERAL

    shown = await emu.send_slash_command(admin, "stats")
    _, report = await emu.wait_for_responses(shown.id, 2, timeout=60)
    text = report.body["content"]
    assert "Last 7 days: 3 questions, 1 answered, 2 not answered (67%)" in text and OFF_TOPIC in text
    assert report.body["flags"] & FLAG_EPHEMERAL
    [message] = emu.interaction_messages(shown.id)  # the "thinking" message, resolved by the report
    [chart] = message["attachments"]
    assert chart["filename"] == "questions-per-day.png" and chart["content_type"] == "image/png"
    assert emu.uploads[int(chart["id"])].startswith(b"\x89PNG") and chart["size"] > 5_000


async def test_a_thread_conversation_and_a_down_vote_show_in_the_terminal_stats(
    emu: DiscordEmulator, start_bot: StartBot, tmp_path: Path
) -> None:
    member = emu.add_member("xena")
    database = f"sqlite:///{tmp_path / 'log.db'}"
    await start_bot(database_url=database)
    first = await ask_by_mention(emu, member, "Who gave the keynote address?")
    thread = (await thread_on(emu, first)).id
    replies = [first]
    for question in ("Where is she based?", "Which board does she chair?"):
        message = await emu.send_message(member, question, channel_id=thread)
        replies += await emu.wait_for(lambda m=message: emu.replies_to(m), timeout=30)
    assert_cited_answer(replies[1].body["embeds"][0], "Stockholm", 7)
    assert_cited_answer(replies[2].body["embeds"][0], "High Commissioner for Refugees", 7)
    await click(emu, member, int(replies[2].response["id"]), vote_buttons(replies[2])["👎"])

    env = {**os.environ, "DATABASE_URL": database}
    run = subprocess.run(
        [sys.executable, "-m", "bot.cli", "stats", "--json"],
        env=env,
        cwd=tmp_path,  # no developer .env
        capture_output=True,
        text=True,
        check=True,
    )
    stats = json.loads(run.stdout)
    assert stats["questions"] == 3 and stats["votes"] == {"up": 0, "down": 1}
    assert [g["question"] for g in stats["gaps"]] == ["Which board does she chair?"]


async def test_slash_ask_starts_a_thread_on_its_answer(emu: DiscordEmulator, start_bot: StartBot) -> None:
    user = emu.add_member("yara")
    await start_bot()
    interaction = await emu.send_slash_command(user, "ask", {"question": "Who heads WeGO's secretariat?"})
    await emu.wait_for_responses(interaction.id, 2, timeout=60)
    [answer] = emu.interaction_messages(interaction.id)
    thread = await emu.wait_for(lambda: emu.threads.get(int(answer["id"])), timeout=10)  # started once it is sent
    message = await emu.send_message(user, "In which city is her office?", channel_id=thread.id)
    [reply] = await emu.wait_for(lambda: emu.replies_to(message), timeout=30)
    assert_cited_answer(reply.body["embeds"][0], "Seoul", 11)


async def test_without_permission_to_start_threads_replies_follow_up(emu: DiscordEmulator, start_bot: StartBot) -> None:
    emu.roles[emu.guild_id].permissions &= ~discord.Permissions(create_public_threads=True).value
    user = emu.add_member("zoe")
    await start_bot()
    first = await ask_by_mention(emu, user, "Who heads WeGO's secretariat?")
    follow_up = await emu.send_message(user, "In which city is her office?", reply_to=int(first.response["id"]))
    [reply] = await emu.wait_for(lambda: emu.replies_to(follow_up), timeout=30)
    assert_cited_answer(reply.body["embeds"][0], "Seoul", 11)
    assert emu.threads == {} and emu.failed_requests == []


async def test_a_reply_that_overtakes_its_answers_send_still_follows_it_up(
    emu: DiscordEmulator, start_bot: StartBot
) -> None:
    emu.roles[emu.guild_id].permissions &= ~discord.Permissions(create_public_threads=True).value
    emu.response_delays[("POST", "/channels/{channel_id}/messages")] = 2.0  # shown before the bot hears it was sent
    user = emu.add_member("uma")
    await start_bot()
    question = await emu.send_message(user, "Who heads WeGO's secretariat?", mention_bot=True)
    [first] = await emu.wait_for(lambda: emu.replies_to(question), timeout=30)
    emu.response_delays.clear()  # the first answer's response is still held
    follow_up = await emu.send_message(user, "In which city is her office?", reply_to=int(first.response["id"]))
    [reply] = await emu.wait_for(lambda: emu.replies_to(follow_up), timeout=30)
    assert_cited_answer(reply.body["embeds"][0], "Seoul", 11)


async def test_the_bot_rides_out_an_outage_and_connects_when_discord_is_back(
    emu: DiscordEmulator, engine: Engine, caplog
) -> None:
    user = emu.add_member("amos")
    await emu.stop()  # Discord is unreachable: connections to its port are refused
    bot = create_bot(
        engine.settings.model_copy(update={"discord_guild_id": emu.guild_id, "cooldown_seconds": 0}), engine
    )
    with caplog.at_level(logging.ERROR, logger="bot.discord_bot"):
        task = asyncio.create_task(serve(bot, emu.token, first_delay=0.2))
        await emu.wait_for(lambda: len([r for r in caplog.records if "cannot reach Discord" in r.message]) >= 2)
    [line] = {r.message.split(";")[0] for r in caplog.records if "cannot reach Discord" in r.message}
    assert "127.0.0.1" in line and "Traceback" not in caplog.text and emu.token not in caplog.text

    await emu.start()
    try:
        await emu.wait_for(bot.is_ready, timeout=15)
        reply = await ask_by_mention(emu, user, SECRETARIAT)
        assert_cited_answer(reply.body["embeds"][0], "Park Jung-sook", 11)
    finally:
        await bot.close()
        await asyncio.wait_for(task, timeout=5)
