"""Self-test of the Discord emulator: a minimal real discord.py bot, over real HTTP and a real WebSocket, logs in,
syncs its commands, answers mentions and slash commands, resumes after a reconnect and shuts down cleanly."""

from __future__ import annotations

import asyncio
from typing import Any

import discord
import pytest
from discord import app_commands
from discord.ext import commands
from discord_emulator import FLAG_EPHEMERAL, DiscordEmulator

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

    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot:  # includes the echoes of its own messages
            return
        self.seen.append(message)
        if message.guild is None or self.user in message.mentions:  # type: ignore[attr-defined]
            await message.reply(f"{message.author.mention} you said: {message.content}", allowed_mentions=NO_PINGS)


class PingBot(_PingBot, commands.Bot):
    pass


class ShardedPingBot(_PingBot, commands.AutoShardedBot):
    pass


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
    assert len(emu.failed_requests) == 3 and emu.unknown_routes == []


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
