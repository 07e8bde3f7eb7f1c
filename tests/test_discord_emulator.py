"""Self-test of the Discord emulator: a minimal real discord.py bot, over real HTTP and a real WebSocket, logs in,
syncs its commands, answers mentions and slash commands, resumes after a reconnect and shuts down cleanly; and the
parts of the API the article bot may use but its tests do not (message edits, webhooks, global commands, shards);
and several guilds, which the bot joins, leaves, is removed from or loses in an outage."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands
from discord_emulator import FLAG_EPHEMERAL, DiscordEmulator, UserFile

pytestmark = pytest.mark.timeout(60)

NO_PINGS = discord.AllowedMentions.none()


@app_commands.command(description="Think, then answer with an embed")
async def ping(interaction: discord.Interaction) -> None:
    await interaction.response.defer(thinking=True)
    await interaction.followup.send(embed=discord.Embed(title="Pong", description="pong!"), allowed_mentions=NO_PINGS)


@app_commands.command(description="Think privately, then edit the original response")
async def secret(interaction: discord.Interaction) -> None:
    await interaction.response.defer(ephemeral=True)
    await interaction.edit_original_response(content="only you can see this")


@app_commands.command(description="Whether you are an administrator")
async def whoami(interaction: discord.Interaction) -> None:
    assert isinstance(interaction.user, discord.Member)
    administrator = interaction.user.guild_permissions.administrator
    await interaction.response.send_message(f"administrator={administrator}", ephemeral=True)


@app_commands.command(description="Repeat a text")
async def echo(interaction: discord.Interaction, text: str, times: int = 1) -> None:
    await interaction.response.send_message(text * times, allowed_mentions=NO_PINGS)


@app_commands.command(description="Answer too late")
async def slow(interaction: discord.Interaction) -> None:
    await asyncio.sleep(0.3)
    try:
        await interaction.response.send_message("late")
    except discord.NotFound as exc:
        interaction.client.errors.append(exc)  # type: ignore[attr-defined]


@app_commands.command(description="Greet, in the guild or in a DM")
async def hello(interaction: discord.Interaction) -> None:
    await interaction.response.send_message(f"hello {interaction.user.name}")


class _PingBot:
    """What the test bots share: guild commands synced in setup_hook, replies to mentions and DMs."""

    def __init__(self, guild_id: int, intents: discord.Intents, **options: Any) -> None:
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, guild_ready_timeout=0.05, **options)  # type: ignore[call-arg]
        self.guild = discord.Object(guild_id)
        self.seen: list[discord.Message] = []
        self.errors: list[Exception] = []
        self.synced: list[app_commands.AppCommand] = []
        for command in (ping, secret, whoami, echo, slow):
            self.tree.add_command(command, guild=self.guild)  # type: ignore[attr-defined]

    async def setup_hook(self) -> None:
        self.synced = await self.tree.sync(guild=self.guild)  # type: ignore[attr-defined]

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        pass  # discord.py waits 5 s before any IDENTIFY but the first; the emulator does not rate-limit them

    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot:  # includes the echoes of its own messages
            return
        self.seen.append(message)
        if message.guild is None or self.user in message.mentions:  # type: ignore[attr-defined]
            await message.reply(f"{message.author.mention} you said: {message.content}", allowed_mentions=NO_PINGS)


class PingBot(_PingBot, commands.Bot):
    pass


@app_commands.command(description="Read an attached file back")
async def upload(interaction: discord.Interaction, file: discord.Attachment, note: str = "") -> None:
    data = await file.read()
    await interaction.response.send_message(f"{file.filename} {file.content_type} {len(data)} {data[:7]!r} {note}")


@app_commands.command(description="Pick one of as many fruits as asked for")
async def pick(interaction: discord.Interaction, count: int, fruit: str) -> None:
    await interaction.response.send_message(f"picked {fruit}")


@pick.autocomplete("fruit")
async def _fruits(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    """As many choices as `count` says (one if not typed yet); a name too long for Discord if "long" is typed."""
    names = [
        f"{current}{number}" if current != "long" else "x" * 101 for number in range(interaction.namespace.count or 1)
    ]
    return [app_commands.Choice(name=name, value=str(number)) for number, name in enumerate(names)]


class FilesBot(PingBot):
    """Also has a command taking an attachment, and one with autocomplete."""

    def __init__(self, guild_id: int, intents: discord.Intents) -> None:
        super().__init__(guild_id, intents)
        self.tree.add_command(upload, guild=self.guild)
        self.tree.add_command(pick, guild=self.guild)


class ShardedPingBot(_PingBot, commands.AutoShardedBot):
    pass


class GlobalPingBot(PingBot):
    """Also syncs a global command, which users can invoke in DMs."""

    def __init__(self, guild_id: int, intents: discord.Intents) -> None:
        super().__init__(guild_id, intents)
        self.tree.add_command(hello)

    async def setup_hook(self) -> None:
        await super().setup_hook()
        await self.tree.sync()


def default_intents() -> discord.Intents:
    intents = discord.Intents.default()
    intents.message_content = True
    return intents


async def test_login_ready_guild_and_command_sync(emu: DiscordEmulator, run_bot) -> None:
    admin = emu.add_member("alice", admin=True)
    bot = await run_bot(PingBot(emu.guild_id, default_intents()))

    calls = [(r.method, r.route) for r in emu.requests]
    assert calls[:2] == [("GET", "/users/@me"), ("GET", "/oauth2/applications/@me")]
    assert all(r.headers["Authorization"] == f"Bot {emu.token}" for r in emu.requests)
    assert bot.user is not None and bot.user.id == emu.bot_id and bot.user.bot
    assert bot.application_id == emu.application_id

    [connection] = emu.gateway_connections
    assert connection.query == {"v": "10", "encoding": "json", "compress": "zlib-stream"}
    [identify] = emu.gateway_received(op=2)
    assert identify["d"]["intents"] == bot.intents.value and "shard" not in identify["d"]
    assert emu.gateway_received(op=1), "discord.py heartbeats right after HELLO"
    [ready] = emu.dispatched("READY")
    assert ready["guilds"] == [{"id": str(emu.guild_id), "unavailable": True}]

    guild = bot.get_guild(emu.guild_id)
    assert guild is not None and guild.name == "Emulated Guild" and guild.owner_id == emu.owner_id
    assert [role.name for role in guild.roles] == ["@everyone", "Administrator", "ArticleBot"]
    assert guild.me.id == emu.bot_id and guild.me.guild_permissions.send_messages
    assert not guild.me.guild_permissions.administrator
    channel = guild.get_channel(emu.channel_id)
    assert isinstance(channel, discord.TextChannel) and channel.name == "general"
    # Default intents: GUILD_CREATE carries only the bot; other members come with events or on request.
    assert guild.get_member(admin) is None
    fetched = await guild.fetch_member(admin)
    assert fetched.name == "alice" and fetched.guild_permissions.administrator

    [sync] = emu.command_syncs
    assert sync.guild_id == emu.guild_id
    assert sync.names == ["ping", "secret", "whoami", "echo", "slow"]
    assert [command.id for command in bot.synced] == [int(c["id"]) for c in sync.commands]
    assert emu.unknown_routes == [] and emu.failed_requests == []


async def test_mention_gets_a_reply_without_pings(emu: DiscordEmulator, run_bot) -> None:
    user = emu.add_member("bob")
    bot = await run_bot(PingBot(emu.guild_id, default_intents()))

    quiet = await emu.send_message(user, "no mention here")
    mentioned = await emu.send_message(user, "hello there", mention_bot=True)
    [reply] = await emu.wait_for(lambda: emu.replies_to(mentioned))

    assert reply.body["message_reference"] == {
        "message_id": mentioned,
        "channel_id": emu.channel_id,
        "guild_id": emu.guild_id,
    }
    assert reply.body["allowed_mentions"] == {"parse": []}
    assert reply.body["content"] == f"<@{user}> you said: <@{emu.bot_id}> hello there"
    assert reply.response["type"] == 19 and reply.response["referenced_message"]["id"] == str(mentioned)
    assert reply.response["mentions"] == [], "allowed_mentions none: nobody is pinged"

    # The reply came back over the gateway; the bot ignores its own messages and the unmentioned one.
    second = await emu.send_message(user, "again", mention_bot=True)
    await emu.wait_for(lambda: emu.replies_to(second))
    assert any(m["author"]["id"] == str(emu.bot_id) for m in emu.dispatched("MESSAGE_CREATE"))
    assert emu.replies_to(quiet) == [] and len(emu.channel_messages(emu.channel_id)) == 2
    assert [m.content for m in bot.seen] == [
        "no mention here",
        f"<@{emu.bot_id}> hello there",
        f"<@{emu.bot_id}> again",
    ]
    assert emu.unknown_routes == [] and emu.failed_requests == []


async def test_content_is_withheld_without_the_message_content_intent(emu: DiscordEmulator, run_bot) -> None:
    user = emu.add_member("bob")
    bot = await run_bot(PingBot(emu.guild_id, discord.Intents.default()))

    await emu.send_message(user, "secret words")
    mentioned = await emu.send_message(user, "hello", mention_bot=True)
    await emu.wait_for(lambda: emu.replies_to(mentioned))
    assert [m.content for m in bot.seen] == ["", f"<@{emu.bot_id}> hello"]


async def test_slash_command_defer_then_followup(emu: DiscordEmulator, run_bot) -> None:
    user = emu.add_member("carol")
    await run_bot(PingBot(emu.guild_id, default_intents()))

    interaction = await emu.send_slash_command(user, "ping")
    assert interaction.payload["data"]["guild_id"] == str(emu.guild_id), "a guild command carries its guild"
    callback, followup = await emu.wait_for_responses(interaction.id, 2)

    assert (callback.method, callback.route) == ("POST", "/interactions/{interaction_id}/{token}/callback")
    assert callback.query == {"with_response": "1"} and callback.body == {"type": 5}
    assert callback.response["interaction"]["response_message_loading"] is True
    assert (followup.method, followup.route, followup.query["wait"]) == (
        "POST",
        "/webhooks/{application_id}/{token}",
        "1",
    )
    assert followup.body["embeds"][0]["title"] == "Pong" and followup.body["allowed_mentions"] == {"parse": []}

    # The first follow-up after a defer resolves the "thinking" message: same message, no longer loading.
    [message] = emu.interaction_messages(interaction.id)
    assert message["id"] == callback.response["interaction"]["response_message_id"] == followup.response["id"]
    assert message["flags"] == 0 and message["embeds"][0]["description"] == "pong!"
    assert emu.unknown_routes == [] and emu.failed_requests == []


async def test_ephemeral_defer_then_edit_original(emu: DiscordEmulator, run_bot) -> None:
    user = emu.add_member("dave")
    await run_bot(PingBot(emu.guild_id, default_intents()))

    interaction = await emu.send_slash_command(user, "secret")
    callback, edit = await emu.wait_for_responses(interaction.id, 2)
    assert callback.body == {"type": 5, "data": {"flags": FLAG_EPHEMERAL}}
    assert callback.response["interaction"]["response_message_ephemeral"] is True
    assert (edit.method, edit.path) == (
        "PATCH",
        f"/webhooks/{emu.application_id}/{interaction.token}/messages/@original",
    )
    assert edit.body["content"] == "only you can see this"
    [message] = emu.interaction_messages(interaction.id)
    assert message["flags"] == FLAG_EPHEMERAL and message["content"] == "only you can see this"
    assert emu.unknown_routes == [] and emu.failed_requests == []


async def test_role_permissions_reach_the_interaction(emu: DiscordEmulator, run_bot) -> None:
    admin = emu.add_member("alice", admin=True)
    member = emu.add_member("bob")
    await run_bot(PingBot(emu.guild_id, default_intents()))

    for user, expected in ((admin, True), (member, False), (emu.owner_id, True)):
        interaction = await emu.send_slash_command(user, "whoami")
        [callback] = await emu.wait_for_responses(interaction.id, 1)
        assert callback.body["type"] == 4
        assert callback.body["data"]["content"] == f"administrator={expected}"
        assert callback.body["data"]["flags"] == FLAG_EPHEMERAL
    admin_interaction = next(i for i in emu.interactions.values() if i.user_id == admin)
    assert admin_interaction.payload["member"]["permissions"] == str(discord.Permissions.all().value)
    assert emu.unknown_routes == [] and emu.failed_requests == []


async def test_command_options_and_unregistered_commands(emu: DiscordEmulator, run_bot) -> None:
    user = emu.add_member("erin")
    await run_bot(PingBot(emu.guild_id, default_intents()))

    interaction = await emu.send_slash_command(user, "echo", {"text": "hi", "times": 3})
    assert interaction.payload["data"]["options"] == [
        {"name": "text", "type": 3, "value": "hi"},
        {"name": "times", "type": 4, "value": 3},
    ]
    [callback] = await emu.wait_for_responses(interaction.id, 1)
    assert callback.body["data"]["content"] == "hihihi"
    assert callback.response["resource"]["message"]["type"] == 20
    with pytest.raises(LookupError):
        await emu.send_slash_command(user, "nope")
    with pytest.raises(ValueError):
        await emu.send_slash_command(user, "echo", {"times": 2})
    with pytest.raises(LookupError):  # guild commands cannot be used in DMs
        await emu.send_slash_command(user, "echo", {"text": "hi"}, guild=False)


async def test_acknowledging_after_three_seconds_fails(emu: DiscordEmulator, run_bot) -> None:
    emu.interaction_ack_timeout = 0.1  # Discord's deadline is 3 s; shortened to keep the test fast
    user = emu.add_member("frank")
    bot = await run_bot(PingBot(emu.guild_id, default_intents()))

    interaction = await emu.send_slash_command(user, "slow")
    [callback] = await emu.wait_for_responses(interaction.id, 1)
    assert callback.status == 404 and callback.response == {"message": "Unknown interaction", "code": 10062}
    [error] = await emu.wait_for(lambda: bot.errors)
    assert isinstance(error, discord.NotFound) and error.code == 10062


async def test_resume_after_reconnect_replays_missed_events(emu: DiscordEmulator, run_bot) -> None:
    user = emu.add_member("gina")
    await run_bot(PingBot(emu.guild_id, default_intents()))

    await emu.force_reconnect()
    mentioned = await emu.send_message(user, "are you there?", mention_bot=True)  # sent while reconnecting
    await emu.wait_for(lambda: emu.replies_to(mentioned))
    await emu.wait_for(lambda: emu.dispatched("RESUMED"))

    first, second = emu.gateway_connections
    assert (first.path, second.path) == ("/", "/resume"), "RESUME goes to READY's resume_gateway_url"
    assert len(emu.gateway_received(op=2)) == 1 and len(emu.gateway_received(op=6)) == 1
    assert first.ws.closed
    interaction = await emu.send_slash_command(user, "ping")
    await emu.wait_for_responses(interaction.id, 2)


async def test_an_unknown_session_is_not_resumed_but_identified_again(emu: DiscordEmulator, run_bot) -> None:
    user = emu.add_member("hal")
    bot = await run_bot(PingBot(emu.guild_id, default_intents()))
    ready_again = asyncio.create_task(bot.wait_for("ready", timeout=10))  # a new session, not a resumed one
    await asyncio.sleep(0)

    await emu.force_reconnect()
    emu.gateway.sessions.clear()  # as if Discord had dropped the session before the client resumes it
    await ready_again
    assert len(emu.gateway_received(op=6)) == 1, "it tried to RESUME first, and was told op 9 INVALID_SESSION"
    assert len(emu.gateway_received(op=2)) == 2 and not emu.dispatched("RESUMED")
    mentioned = await emu.send_message(user, "still there?", mention_bot=True)
    await emu.wait_for(lambda: emu.replies_to(mentioned))


async def test_direct_messages(emu: DiscordEmulator, run_bot) -> None:
    user = emu.add_member("hank")
    bot = await run_bot(PingBot(emu.guild_id, discord.Intents.default()))

    message_id = await emu.send_message(user, "hi in private", dm=True)
    [reply] = await emu.wait_for(lambda: emu.replies_to(message_id))
    dm_channel = emu.dm_channels[user]
    assert reply.path == f"/channels/{dm_channel}/messages"
    assert reply.body["message_reference"] == {"message_id": message_id, "channel_id": dm_channel}
    assert bot.seen[0].content == "hi in private", "DMs carry content without the message content intent"

    await (await bot.fetch_user(user)).send("hello from the bot")
    opened, sent = emu.requests[-2:]
    assert (opened.method, opened.path, opened.body) == (
        "POST",
        "/users/@me/channels",
        {"recipient_id": user},
    )
    assert sent.path == f"/channels/{dm_channel}/messages" and sent.body["content"] == "hello from the bot"


async def test_discord_limits_are_enforced(emu: DiscordEmulator, run_bot) -> None:
    bot = await run_bot(PingBot(emu.guild_id, default_intents()))
    channel = bot.get_channel(emu.channel_id)
    assert isinstance(channel, discord.TextChannel)

    with pytest.raises(discord.HTTPException) as too_long:
        await channel.send("x" * 2001)
    assert (too_long.value.status, too_long.value.code) == (400, 50035)
    with pytest.raises(discord.HTTPException) as empty:
        await channel.send()
    assert (empty.value.status, empty.value.code) == (400, 50006)
    with pytest.raises(discord.HTTPException) as big_embed:
        await channel.send(embed=discord.Embed(description="x" * 4097))
    assert "embeds.0.description" in str(big_embed.value)
    crowded = discord.Embed(title="many fields")
    for number in range(26):
        crowded.add_field(name=f"field {number}", value="value")
    with pytest.raises(discord.HTTPException) as too_many_fields:
        await channel.send(embed=crowded)
    assert "embeds.0.fields: Must be 25 or fewer in length." in str(too_many_fields.value)
    with pytest.raises(discord.HTTPException) as too_big_in_total:
        await channel.send(embed=discord.Embed(title="t" * 256, description="d" * 4096).set_footer(text="f" * 2048))
    assert "Embed size exceeds maximum size of 6000" in str(too_big_in_total.value)
    assert len(emu.failed_requests) == 5 and emu.unknown_routes == []


async def test_unknown_routes_are_recorded(emu: DiscordEmulator, run_bot) -> None:
    bot = await run_bot(PingBot(emu.guild_id, default_intents()))
    with pytest.raises(discord.NotFound):
        await bot.http.request(discord.http.Route("GET", "/guilds/{guild_id}/bans", guild_id=emu.guild_id))
    [unknown] = emu.unknown_routes
    assert (unknown.method, unknown.path, unknown.status) == ("GET", f"/guilds/{emu.guild_id}/bans", 404)


async def test_sharded_bot(emu: DiscordEmulator, run_bot) -> None:
    user = emu.add_member("ivy")
    bot = await run_bot(ShardedPingBot(emu.guild_id, default_intents()))

    assert ("GET", "/gateway/bot") in [(r.method, r.route) for r in emu.requests]
    [identify] = emu.gateway_received(op=2)
    assert identify["d"]["shard"] == [0, 1] and emu.dispatched("READY")[0]["shard"] == [0, 1]
    assert bot.shard_count == 1 and bot.get_guild(emu.guild_id) is not None
    mentioned = await emu.send_message(user, "sharded?", mention_bot=True)
    await emu.wait_for(lambda: emu.replies_to(mentioned))


async def test_disallowed_privileged_intent_is_refused() -> None:
    async with DiscordEmulator(allowed_privileged_intents=0) as emu:
        bot = PingBot(emu.guild_id, default_intents())
        try:
            with pytest.raises(discord.PrivilegedIntentsRequired):
                await asyncio.wait_for(bot.start(emu.token), timeout=10)
        finally:
            await bot.close()
        assert emu.gateway_connections[0].closed_with == 4014


async def test_two_shards_each_get_their_events(emu: DiscordEmulator, run_bot) -> None:
    emu.shard_count = 2  # what GET /gateway/bot recommends
    user = emu.add_member("jill")
    bot = await run_bot(ShardedPingBot(emu.guild_id, default_intents()))

    assert sorted(identify["d"]["shard"] for identify in emu.gateway_received(op=2)) == [[0, 2], [1, 2]]
    guild_shard = (emu.guild_id >> 22) % 2  # Discord's rule: (guild_id >> 22) % shard_count
    guilds_by_shard = {tuple(ready["shard"]): ready["guilds"] for ready in emu.dispatched("READY")}
    assert guilds_by_shard == {
        (guild_shard, 2): [{"id": str(emu.guild_id), "unavailable": True}],
        (1 - guild_shard, 2): [],
    }
    guild = bot.get_guild(emu.guild_id)
    assert bot.shard_count == 2 and guild is not None and guild.shard_id == guild_shard

    mentioned = await emu.send_message(user, "which shard?", mention_bot=True)
    in_dm = await emu.send_message(user, "and in private?", dm=True)
    await emu.wait_for(lambda: emu.replies_to(mentioned) and emu.replies_to(in_dm))
    created = {shard: [d["id"] for d in emu.dispatched("MESSAGE_CREATE", shard=shard)] for shard in (0, 1)}
    assert str(mentioned) in created[guild_shard] and str(mentioned) not in created[1 - guild_shard]
    assert str(in_dm) in created[0] and str(in_dm) not in created[1], "DMs go to shard 0"


async def test_channel_messages_are_fetched_edited_and_deleted(emu: DiscordEmulator, run_bot) -> None:
    user = emu.add_member("kim")
    bot = await run_bot(PingBot(emu.guild_id, default_intents()))
    channel = bot.get_channel(emu.channel_id)
    assert isinstance(channel, discord.TextChannel)

    sent = await channel.send("draft")
    fetched = await channel.fetch_message(sent.id)
    assert fetched.content == "draft" and fetched.edited_at is None
    edited = await sent.edit(content="final")
    assert edited.content == "final" and edited.edited_at is not None
    await emu.wait_for(lambda: [u for u in emu.dispatched("MESSAGE_UPDATE") if u["content"] == "final"])

    theirs = await channel.fetch_message(await emu.send_message(user, "my words"))
    with pytest.raises(discord.Forbidden) as not_the_author:
        await theirs.edit(content="changed")
    assert not_the_author.value.code == 50005
    with pytest.raises(discord.Forbidden) as without_manage_messages:
        await theirs.delete()
    assert without_manage_messages.value.code == 50013

    await sent.delete()
    deleted = {"id": str(sent.id), "channel_id": str(emu.channel_id), "guild_id": str(emu.guild_id)}
    await emu.wait_for(lambda: emu.dispatched("MESSAGE_DELETE") == [deleted])
    with pytest.raises(discord.NotFound) as gone:
        await channel.fetch_message(sent.id)
    assert gone.value.code == 10008
    with pytest.raises(discord.HTTPException) as reply_to_gone:
        await channel.send("a reply", reference=sent)
    assert "message_reference: Unknown message" in str(reply_to_gone.value)


async def test_channels_threads_and_dms_are_fetched(emu: DiscordEmulator, run_bot) -> None:
    user = emu.add_member("lou")
    bot = await run_bot(PingBot(emu.guild_id, default_intents()))
    channel = await bot.fetch_channel(emu.channel_id)
    assert isinstance(channel, discord.TextChannel) and channel.name == "general"

    started = await channel.create_thread(name="a thread", message=await channel.send("start here"))
    thread = await bot.fetch_channel(started.id)
    assert isinstance(thread, discord.Thread) and thread.name == "a thread" and thread.parent_id == channel.id
    dm = await (await bot.fetch_user(user)).create_dm()
    fetched_dm = await bot.fetch_channel(dm.id)
    assert isinstance(fetched_dm, discord.DMChannel) and fetched_dm.recipient and fetched_dm.recipient.id == user
    with pytest.raises(discord.NotFound) as unknown:
        await bot.fetch_channel(emu.snowflake())
    assert unknown.value.code == 10003


async def test_interaction_messages_through_the_webhook(emu: DiscordEmulator, run_bot) -> None:
    user = emu.add_member("mo")
    bot = await run_bot(PingBot(emu.guild_id, default_intents()))
    interaction = await emu.send_slash_command(user, "echo", {"text": "hi"})
    await emu.wait_for_responses(interaction.id, 1)
    webhook = discord.Webhook.partial(emu.application_id, interaction.token, client=bot)

    original = await webhook.fetch_message(interaction.original_message_id)  # type: ignore[arg-type]
    assert original.content == "hi"
    followup = await webhook.send("and more", wait=True)
    assert interaction.followup_message_ids == [followup.id]
    metadata = emu.messages[followup.id]["interaction_metadata"]
    assert metadata["original_response_message_id"] == str(original.id)
    assert await webhook.send("without waiting") is None  # answered 204 No Content
    await webhook.delete_message(followup.id)
    await emu.wait_for(lambda: [d for d in emu.dispatched("MESSAGE_DELETE") if d["id"] == str(followup.id)])
    with pytest.raises(discord.NotFound) as gone:
        await webhook.fetch_message(followup.id)
    assert gone.value.code == 10008
    calls = [(r.method, r.status) for r in emu.interaction_responses(interaction.id)]
    assert calls == [("POST", 200), ("GET", 200), ("POST", 200), ("POST", 204), ("DELETE", 204), ("GET", 404)]

    stranger = discord.Webhook.partial(emu.application_id, "not-a-token", client=bot)
    with pytest.raises(discord.NotFound) as unknown:
        await stranger.send("hello?")
    assert unknown.value.code == 10015


async def test_global_commands_work_in_dms_and_can_be_fetched(emu: DiscordEmulator, run_bot) -> None:
    user = emu.add_member("nat")
    bot = await run_bot(GlobalPingBot(emu.guild_id, default_intents()))
    guild_sync, global_sync = emu.command_syncs
    assert global_sync.guild_id is None and global_sync.names == ["hello"]

    in_dm = await emu.send_slash_command(user, "hello", guild=False)
    assert in_dm.payload["channel_id"] == str(emu.dm_channels[user]) and "guild_id" not in in_dm.payload
    [callback] = await emu.wait_for_responses(in_dm.id, 1)
    assert callback.body["data"]["content"] == "hello nat"
    in_guild = await emu.send_slash_command(user, "hello")  # global commands are offered in guilds too
    [callback] = await emu.wait_for_responses(in_guild.id, 1)
    assert callback.body["data"]["content"] == "hello nat"

    assert [c.id for c in await bot.tree.fetch_commands()] == [int(c["id"]) for c in global_sync.commands]
    assert [c.name for c in await bot.tree.fetch_commands(guild=bot.guild)] == guild_sync.names
    assert emu.failed_requests == []


async def test_invalid_commands_are_refused_with_discords_errors(emu: DiscordEmulator, run_bot) -> None:
    bot = await run_bot(PingBot(emu.guild_id, default_intents()))
    text = 3  # the STRING option type
    invalid = [
        {"name": "Bad Name", "description": "a command", "type": 1},
        {"name": "twin", "description": "", "type": 1},
        {
            "name": "twin",
            "description": "a command",
            "type": 1,
            "options": [
                {"name": "optional", "description": "optional", "type": text},
                {"name": "required", "description": "required", "type": text, "required": True},
            ],
        },
    ]
    with pytest.raises(discord.HTTPException) as refused:
        await bot.http.bulk_upsert_guild_commands(emu.application_id, emu.guild_id, invalid)
    assert (refused.value.status, refused.value.code) == (400, 50035)
    for path in ("0.name", "1.description", "2.name", "2.options.1.required"):
        assert f"In {path}: " in str(refused.value)
    too_many = [{"name": f"command{number}", "description": "a command", "type": 1} for number in range(101)]
    with pytest.raises(discord.HTTPException) as crowded:
        await bot.http.bulk_upsert_guild_commands(emu.application_id, emu.guild_id, too_many)
    assert "Maximum number of application commands reached (100)" in str(crowded.value)
    with pytest.raises(discord.Forbidden) as elsewhere:
        await bot.http.bulk_upsert_guild_commands(emu.application_id, emu.snowflake(), [])
    assert elsewhere.value.code == 50001
    assert len(emu.command_syncs) == 1, "refused overwrites change nothing"


async def test_zstd_compression_is_refused_with_the_reason(emu: DiscordEmulator, monkeypatch) -> None:
    # discord.py asks for zstd-stream when the zstandard package is installed; the emulator speaks zlib-stream.
    monkeypatch.setattr(discord.utils._ActiveDecompressionContext, "COMPRESSION_TYPE", "zstd-stream")
    bot = PingBot(emu.guild_id, default_intents())
    try:
        # discord.py 2.7 trips over its own missing websocket when the first connection closes before HELLO.
        with pytest.raises((discord.ConnectionClosed, AttributeError)):
            await asyncio.wait_for(bot.start(emu.token), timeout=10)
    finally:
        await bot.close()
    [connection] = emu.gateway_connections  # the emulator says what a bare traceback would not
    assert connection.closed_with == 4000 and connection.query["compress"] == "zstd-stream"
    assert connection.error is not None and "only zlib-stream" in connection.error


async def test_attachment_options_are_resolved_and_served_by_the_cdn(emu: DiscordEmulator, run_bot) -> None:
    user = emu.add_member("yara")
    await run_bot(FilesBot(emu.guild_id, default_intents()))
    [registered] = [c for c in emu.commands[emu.guild_id] if c["name"] == "upload"]
    assert registered["options"][0]["type"] == 11, "discord.Attachment is an ATTACHMENT option"

    notes = UserFile("my notes.md", b"# Notes\n\nBring a towel.", "text/markdown; charset=utf-8")
    interaction = await emu.send_slash_command(user, "upload", {"file": notes, "note": "ok"})
    [option, _] = interaction.payload["data"]["options"]
    attachment = interaction.payload["data"]["resolved"]["attachments"][option["value"]]
    assert option == {"name": "file", "type": 11, "value": attachment["id"]}
    assert attachment["filename"] == "my_notes.md" and attachment["size"] == len(notes.data)
    assert attachment["ephemeral"] is True and "/ephemeral-attachments/" in attachment["url"]
    [callback] = await emu.wait_for_responses(interaction.id, 1)
    assert callback.body["data"]["content"] == "my_notes.md text/markdown; charset=utf-8 23 b'# Notes' ok"
    assert emu.attachments[int(attachment["id"])].downloads == 1
    assert all(not r.path.startswith("/ephemeral") for r in emu.requests), "CDN downloads are not REST requests"

    pdf = await emu.send_slash_command(user, "upload", {"file": ("scan.pdf", b"%PDF-1.4")})
    [callback] = await emu.wait_for_responses(pdf.id, 1)
    assert callback.body["data"]["content"].startswith("scan.pdf application/pdf 8 ")
    forged = attachment["url"].replace("hm=", "hm=0")
    async with aiohttp.ClientSession() as session, session.get(forged) as response:
        assert response.status == 404 and await response.text() == "This content is no longer available."
    with pytest.raises(TypeError):
        await emu.send_slash_command(user, "upload", {"file": ("notes.txt", "not bytes")})
    assert emu.failed_requests == []


async def test_autocomplete_gets_choices_within_discords_limits(emu: DiscordEmulator, run_bot) -> None:
    user = emu.add_member("zoe")
    await run_bot(FilesBot(emu.guild_id, default_intents()))
    [registered] = [c for c in emu.commands[emu.guild_id] if c["name"] == "pick"]
    assert [o.get("autocomplete", False) for o in registered["options"]] == [False, True]

    choices = await emu.autocomplete(user, "pick", {"count": 2, "fruit": "ap"}, focused="fruit")
    assert choices == [{"name": "ap0", "value": "0"}, {"name": "ap1", "value": "1"}]
    [interaction] = [i for i in emu.interactions.values() if i.payload["type"] == 4]
    assert interaction.payload["data"]["options"] == [
        {"name": "count", "type": 4, "value": 2},
        {"name": "fruit", "type": 3, "value": "ap", "focused": True},
    ]
    assert emu.interaction_messages(interaction.id) == [], "choices are no message"
    assert await emu.autocomplete(user, "pick", {}, focused="fruit") == [{"name": "0", "value": "0"}], (
        "required options may be missing while typing; the focused one is sent empty"
    )
    with pytest.raises(ValueError, match="Must be 25 or fewer in length"):
        await emu.autocomplete(user, "pick", {"count": 26, "fruit": "b"}, focused="fruit")
    with pytest.raises(ValueError, match="Must be between 1 and 100 in length"):
        await emu.autocomplete(user, "pick", {"fruit": "long"}, focused="fruit")
    with pytest.raises(ValueError, match="no option 'count' with autocomplete"):
        await emu.autocomplete(user, "pick", {}, focused="count")
    assert [(r.status, r.response["code"]) for r in emu.failed_requests] == [(400, 50035), (400, 50035)]


@app_commands.command(description="Whether you may manage this server")
async def manager(interaction: discord.Interaction) -> None:
    assert isinstance(interaction.user, discord.Member) and interaction.guild is not None
    cached = interaction.user.guild_permissions.manage_guild  # from the roles of the guild discord.py cached
    sent = interaction.permissions.manage_guild  # from the interaction's member.permissions
    await interaction.response.send_message(f"{interaction.guild.id} {cached} {sent}", ephemeral=True)


class _GuildsBot:
    """What the guild tests' bots add: a global command (offered in every guild), and the guild events discord.py
    calls, recorded."""

    def __init__(self, guild_id: int, intents: discord.Intents, **options: Any) -> None:
        super().__init__(guild_id, intents, **options)  # type: ignore[call-arg]
        self.tree.add_command(manager)  # type: ignore[attr-defined]
        self.guild_events: list[tuple[str, int]] = []

    async def setup_hook(self) -> None:
        await super().setup_hook()  # type: ignore[misc]
        await self.tree.sync()  # type: ignore[attr-defined]

    async def on_guild_join(self, guild: discord.Guild) -> None:
        self.guild_events.append(("join", guild.id))

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        self.guild_events.append(("remove", guild.id))

    async def on_guild_unavailable(self, guild: discord.Guild) -> None:
        self.guild_events.append(("unavailable", guild.id))

    async def on_guild_available(self, guild: discord.Guild) -> None:
        self.guild_events.append(("available", guild.id))


B = TypeVar("B", bound=_GuildsBot)


class GuildsBot(_GuildsBot, PingBot):
    pass


class ShardedGuildsBot(_GuildsBot, ShardedPingBot):
    pass


async def start_guilds_bot(emu: DiscordEmulator, run_bot, bot: B) -> B:
    """Start the bot, then forget the ``on_guild_available`` discord.py calls at start for each guild of READY."""
    await run_bot(bot)
    at_start = sorted(("available", guild.id) for guild in bot.guilds)
    await emu.wait_for(lambda: sorted(bot.guild_events) == at_start)
    bot.guild_events.clear()
    return bot


async def test_each_guild_has_its_members_channels_and_messages(emu: DiscordEmulator, run_bot) -> None:
    other = await emu.add_guild("Other Guild", channel_names=("lobby", "help"))
    ann = emu.add_member("ann")
    ben = emu.add_member("ben", guild_id=other)
    bot = await run_bot(PingBot(emu.guild_id, default_intents()))

    [ready] = emu.dispatched("READY")
    assert ready["guilds"] == [{"id": str(g), "unavailable": True} for g in (emu.guild_id, other)]
    assert [g["id"] for g in emu.dispatched("GUILD_CREATE")] == [str(emu.guild_id), str(other)]
    assert all(g["unavailable"] is False for g in emu.dispatched("GUILD_CREATE")), "guilds of READY become available"
    first, second = bot.get_guild(emu.guild_id), bot.get_guild(other)
    assert first is not None and second is not None and second.name == "Other Guild"
    assert second.owner_id == emu.guilds[other].owner_id != emu.owner_id, "each guild has its own owner"
    assert [c.name for c in second.text_channels] == ["lobby", "help"] and second.me.id == emu.bot_id
    assert [r.name for r in second.roles] == ["@everyone", "Administrator", "ArticleBot"]
    assert {r.id for r in second.roles}.isdisjoint(r.id for r in first.roles), "roles of its own"

    lobby = emu.guilds[other].channel_id
    here = await emu.send_message(ann, "hello here", mention_bot=True)
    there = await emu.send_message(ben, "hello there", guild_id=other, mention_bot=True)
    [reply_there] = await emu.wait_for(lambda: emu.replies_to(there))
    await emu.wait_for(lambda: emu.replies_to(here))
    assert [(m.content.split()[-1], m.guild and m.guild.id, m.channel.id) for m in bot.seen] == [
        ("here", emu.guild_id, emu.channel_id),
        ("there", other, lobby),
    ]
    assert reply_there.path == f"/channels/{lobby}/messages"
    assert reply_there.body["message_reference"]["guild_id"] == other
    with pytest.raises(ValueError, match="not a member"):
        await emu.send_message(ann, "am I there?", guild_id=other)
    with pytest.raises(ValueError, match="is in guild"):
        await emu.send_message(ben, "wrong place", channel_id=lobby, guild_id=emu.guild_id)
    assert emu.failed_requests == []


async def test_permissions_are_per_guild(emu: DiscordEmulator, run_bot) -> None:
    other = await emu.add_guild("Other Guild")
    ann = emu.add_member("ann", admin=True)  # an administrator of the first guild only
    emu.join(ann, other)
    await start_guilds_bot(emu, run_bot, GuildsBot(emu.guild_id, default_intents()))

    answers = {}
    for guild_id in (emu.guild_id, other):
        interaction = await emu.send_slash_command(ann, "manager", guild_id=guild_id)
        assert interaction.payload["guild_id"] == str(guild_id)
        assert interaction.payload["app_permissions"] == str(emu.permissions_of(emu.bot_id, guild_id))
        [callback] = await emu.wait_for_responses(interaction.id, 1)
        answers[guild_id] = callback.body["data"]["content"]
    assert answers == {emu.guild_id: f"{emu.guild_id} True True", other: f"{other} False False"}
    assert "guild_id" not in emu.registered_command("manager", other), "a global command, offered in every guild"
    with pytest.raises(LookupError):  # the guild's commands were synced to the first guild only
        await emu.send_slash_command(ann, "ping", guild_id=other)
    assert emu.failed_requests == []


async def test_the_bot_joins_a_guild_while_connected(emu: DiscordEmulator, run_bot) -> None:
    bot = await start_guilds_bot(emu, run_bot, GuildsBot(emu.guild_id, default_intents()))
    joined = asyncio.create_task(bot.wait_for("guild_join", timeout=5))
    await asyncio.sleep(0)

    other = await emu.add_guild("New Guild")
    assert (await joined).id == other and bot.guild_events == [("join", other)]
    [created] = [g for g in emu.dispatched("GUILD_CREATE") if g["id"] == str(other)]
    assert "unavailable" not in created, "absent for a guild just joined: discord.py calls on_guild_join"
    guild = bot.get_guild(other)
    assert guild is not None and guild.name == "New Guild" and guild.get_channel(emu.guilds[other].channel_id)

    cleo = emu.add_member("cleo", guild_id=other)
    mentioned = await emu.send_message(cleo, "welcome?", guild_id=other, mention_bot=True)
    await emu.wait_for(lambda: emu.replies_to(mentioned))
    assert bot.seen[-1].guild == guild


async def test_a_removed_bot_loses_the_guild(emu: DiscordEmulator, run_bot) -> None:
    other = await emu.add_guild("Other Guild")
    dan = emu.add_member("dan", guild_id=other)
    bot = await start_guilds_bot(emu, run_bot, GuildsBot(emu.guild_id, default_intents()))
    channel = bot.get_channel(emu.guilds[other].channel_id)
    assert isinstance(channel, discord.TextChannel)

    await emu.remove_bot(other)  # an administrator kicks the bot
    await emu.wait_for(lambda: bot.guild_events)
    assert bot.guild_events == [("remove", other)] and bot.get_guild(other) is None
    assert emu.dispatched("GUILD_DELETE") == [{"id": str(other)}]
    assert not emu.guilds[other].has_bot and dan in emu.guilds[other].members
    assert bot.get_guild(emu.guild_id) is not None, "the other guilds stay"
    with pytest.raises(RuntimeError, match="not in guild"):
        await emu.send_message(dan, "anyone?", guild_id=other)
    with pytest.raises(discord.Forbidden) as no_access:
        await channel.send("still here?")
    assert no_access.value.code == 50001

    rejoined = asyncio.create_task(bot.wait_for("guild_join", timeout=5))
    await asyncio.sleep(0)
    await emu.add_bot(other)  # invited again
    assert (await rejoined).id == other
    mentioned = await emu.send_message(dan, "back?", guild_id=other, mention_bot=True)
    await emu.wait_for(lambda: emu.replies_to(mentioned))


async def test_the_bot_leaves_a_guild(emu: DiscordEmulator, run_bot) -> None:
    other = await emu.add_guild("Other Guild")
    bot = await start_guilds_bot(emu, run_bot, GuildsBot(emu.guild_id, default_intents()))
    assert sorted([g.id async for g in bot.fetch_guilds()]) == sorted([emu.guild_id, other])

    guild = bot.get_guild(other)
    assert guild is not None
    await guild.leave()
    [left] = [r for r in emu.requests if r.method == "DELETE"]
    assert (left.method, left.path, left.status) == ("DELETE", f"/users/@me/guilds/{other}", 204)
    await emu.wait_for(lambda: bot.guild_events)
    assert bot.guild_events == [("remove", other)] and bot.get_guild(other) is None
    assert emu.dispatched("GUILD_DELETE") == [{"id": str(other)}]
    assert [g.id async for g in bot.fetch_guilds()] == [emu.guild_id]

    with pytest.raises(discord.NotFound) as gone:
        await guild.leave()
    assert (gone.value.status, gone.value.code, gone.value.text) == (404, 10004, "Unknown Guild")


async def test_an_outage_is_not_a_removal(emu: DiscordEmulator, run_bot) -> None:
    other = await emu.add_guild("Other Guild")
    eve = emu.add_member("eve", guild_id=other)
    bot = await start_guilds_bot(emu, run_bot, GuildsBot(emu.guild_id, default_intents()))

    await emu.guild_outage(other)
    await emu.wait_for(lambda: bot.guild_events)
    assert emu.dispatched("GUILD_DELETE") == [{"id": str(other), "unavailable": True}]
    assert bot.guild_events == [("unavailable", other)]
    guild = bot.get_guild(other)
    assert guild is not None and guild.unavailable, "discord.py keeps the guild, unavailable"
    with pytest.raises(RuntimeError, match="outage"):
        await emu.send_message(eve, "hello?", guild_id=other)

    await emu.end_guild_outage(other)
    await emu.wait_for(lambda: len(bot.guild_events) == 2)
    assert bot.guild_events == [("unavailable", other), ("available", other)] and not guild.unavailable
    mentioned = await emu.send_message(eve, "back?", guild_id=other, mention_bot=True)
    await emu.wait_for(lambda: emu.replies_to(mentioned))


async def test_guild_events_go_to_the_guilds_shard(emu: DiscordEmulator, run_bot) -> None:
    emu.shard_count = 2
    on_one = await emu.add_guild("On Shard 1", shard=(1, 2))
    first_shard = (emu.guild_id >> 22) % 2
    bot = await start_guilds_bot(emu, run_bot, ShardedGuildsBot(emu.guild_id, default_intents()))

    ready = {ready["shard"][0]: [g["id"] for g in ready["guilds"]] for ready in emu.dispatched("READY")}
    assert str(on_one) in ready[1] and str(on_one) not in ready[0] and str(emu.guild_id) in ready[first_shard]
    assert bot.get_guild(on_one).shard_id == 1  # type: ignore[union-attr]

    joined = asyncio.create_task(bot.wait_for("guild_join", timeout=5))
    await asyncio.sleep(0)
    on_zero = await emu.add_guild("On Shard 0", shard=(0, 2))
    assert (await joined).shard_id == 0
    await emu.remove_bot(on_one)
    await emu.wait_for(lambda: ("remove", on_one) in bot.guild_events)
    created = {shard: [g["id"] for g in emu.dispatched("GUILD_CREATE", shard=shard)] for shard in (0, 1)}
    assert str(on_zero) in created[0] and str(on_zero) not in created[1]
    assert emu.dispatched("GUILD_DELETE", shard=1) == [{"id": str(on_one)}] and not emu.dispatched("GUILD_DELETE", 0)
