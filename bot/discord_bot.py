"""The Discord bot: a `commands.Bot` (or `AutoShardedBot` with SHARD_COUNT) holding the engine and the Cogs.

With SHARD_IDS, a process runs only those shards of SHARD_COUNT; processes sharing INDEX_DIR serve the build any
of them publishes (a `/rebuild` in one), checking every INDEX_WATCH_SECONDS. REST requests go to DISCORD_API_URL
(Discord, or a proxy for it), and the gateway is where that API says it is.

Intents are the defaults; the privileged message-content intent is asked for only when ASK_CHANNEL_IDS is set or
THREADS is on (follow-ups in a thread need no mention), since Discord delivers the content of messages that
mention the bot (and of DMs) without it.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.ext import commands, tasks

from bot.cogs.admin import AdminCog, NotAdmin, forget_server
from bot.cogs.ask import AskCog
from bot.cogs.documents import DocumentsCog
from bot.feedback import CommentBoxes, VoteButton
from bot.questionlog import QuestionLog, open_log
from bot.replies import APOLOGY
from bot.settings import Settings

log = logging.getLogger(__name__)

# Retrying while Discord cannot be reached: 1 s, 2 s, 4 s … at most a minute apart.
RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 60.0
UNREACHABLE = (aiohttp.ClientConnectionError, asyncio.TimeoutError, discord.DiscordServerError, discord.GatewayNotFound)

# A text-only bot: discord.py's own switches for its "voice will NOT be supported" start-up warnings.
discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False

# What the bot needs in a channel: read it, answer (in threads too) with embeds, reply to messages, start threads.
PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    create_public_threads=True,
    embed_links=True,
    read_message_history=True,
)


if TYPE_CHECKING:  # the mixin is written against commands.Bot; it is combined with Bot or AutoShardedBot below
    from bot.engine import Engine

    _BotBase = commands.Bot
else:
    _BotBase = object


class _ArticleBotMixin(_BotBase):
    """What both bot classes share: Cogs, command sync and the error handler."""

    def __init__(self, settings: Settings, engine: Engine, **sharding: Any) -> None:
        intents = discord.Intents.default()
        intents.message_content = bool(settings.ask_channel_ids) or settings.threads
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            **sharding,
        )
        self.settings = settings
        self.engine = engine
        self.questions: QuestionLog | None = None
        self.comment_boxes = CommentBoxes()

    async def setup_hook(self) -> None:
        await self._use_announced_gateway()  # first: a failure here leaves nothing to undo before a retry
        self.questions = await asyncio.to_thread(open_log, self.settings)
        self.add_dynamic_items(VoteButton)  # 👍/👎 under answers sent before a restart keep working
        await self.add_cog(AskCog(self, self.engine, self.settings, self.questions))
        await self.add_cog(AdminCog(self.engine.library, self.questions))
        await self.add_cog(DocumentsCog(self.engine.library))
        self.tree.error(self.on_app_command_error)
        if self.settings.discord_guild_id:
            guild = discord.Object(id=self.settings.discord_guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
        else:
            synced = await self.tree.sync()
        log.info(
            "synced %d slash commands %s", len(synced), "to the guild" if self.settings.discord_guild_id else "globally"
        )
        if self.settings.index_watch_seconds:
            self.watch_index.change_interval(seconds=self.settings.index_watch_seconds)
            self.watch_index.start()
        if self.questions is not None:
            self.expire_questions.start()

    async def _use_announced_gateway(self) -> None:
        """Connect to the gateway the REST API names (GET /gateway/bot), as Discord asks of clients, rather than at
        discord.py's built-in address, which it keeps once per process like the API's (see `use_discord_api`)."""
        _, url, _ = await self.http.get_bot_gateway()
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)

    @tasks.loop(seconds=10)
    async def watch_index(self) -> None:
        """Serve builds another process published; a failure is logged and the next check tries again."""
        try:
            await asyncio.to_thread(self.engine.library.refresh)
        except Exception:
            log.exception("checking %s for a new index failed", self.settings.index_dir)

    @tasks.loop(hours=24)
    async def expire_questions(self) -> None:
        """Delete logged questions past LOG_RETENTION_DAYS once a day, whether or not questions are asked."""
        if self.questions is not None:
            await asyncio.to_thread(self.questions.expire)

    async def on_message(self, message: discord.Message) -> None:
        """Messages are questions for the AskCog, never prefix commands: skip `process_commands`."""

    async def close(self) -> None:
        self.watch_index.cancel()
        self.expire_questions.cancel()
        self.comment_boxes.close_all()
        await super().close()
        if self.questions is not None:
            self.questions.close()

    async def on_ready(self) -> None:
        log.info("ready: logged in as %s, answering from %d passages", self.user, len(self.engine.store.passages))
        log.info("invite the bot to a server with %s", invite_url(self.application_id or 0))
        for guild in list(self.guilds):
            await self._leave_unless_allowed(guild)

    async def on_guild_join(self, guild: discord.Guild) -> None:
        await self._leave_unless_allowed(guild)

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        """Removed from a server (kicked, the server deleted, or left): delete what it added and asked. A server
        that is only unavailable (an outage) is not removed, and keeps everything."""
        outcome = await asyncio.to_thread(forget_server, self.engine.library, self.questions, guild.id)
        log.info("removed from server %s: %s", guild.id, outcome)

    async def _leave_unless_allowed(self, guild: discord.Guild) -> None:
        """Leave a server that ALLOWED_GUILD_IDS (when set) does not list."""
        allowed = self.settings.allowed_guild_ids
        if allowed and guild.id not in allowed:
            log.warning("leaving server %s: it is not in ALLOWED_GUILD_IDS", guild.id)
            await guild.leave()

    async def on_app_command_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        """A member who is not an admin is told so privately; any other failure is logged with its traceback and
        the user gets a short apology, never the traceback."""
        if isinstance(error, NotAdmin):
            await interaction.response.send_message(str(error), ephemeral=True)
            return
        log.error("command %s failed", interaction.command and interaction.command.name, exc_info=error)
        if interaction.response.is_done():
            await interaction.followup.send(APOLOGY, ephemeral=True)
        else:
            await interaction.response.send_message(APOLOGY, ephemeral=True)


class ArticleBot(_ArticleBotMixin, commands.Bot):
    """The bot for one process and a modest number of servers."""


class ShardedArticleBot(_ArticleBotMixin, commands.AutoShardedBot):
    """The same bot, sharded (SHARD_COUNT) for many servers."""


def invite_url(application_id: int) -> str:
    """The OAuth2 link that adds the bot to a server with the commands scope and the permissions it needs."""
    return discord.utils.oauth_url(application_id, permissions=PERMISSIONS, scopes=("bot", "applications.commands"))


def create_bot(settings: Settings, engine: Engine) -> commands.Bot:
    """One connection, or the shards SHARD_IDS names (all of SHARD_COUNT when empty)."""
    if settings.shard_count is None:
        return ArticleBot(settings, engine)
    shard_ids = settings.shard_ids or None
    return ShardedArticleBot(settings, engine, shard_count=settings.shard_count, shard_ids=shard_ids)


async def serve(bot: commands.Bot, token: str, first_delay: float = RETRY_FIRST_SECONDS) -> None:
    """Log in and stay connected. While Discord cannot be reached (no route, DNS, an outage), log one line and
    try again with capped exponential backoff; once logged in, discord.py reconnects the gateway itself."""
    async with bot:
        delay = first_delay
        while True:
            try:
                await bot.login(token)
                break
            except UNREACHABLE as exc:
                host = urlsplit(discord.http.Route.BASE).netloc
                log.error("cannot reach Discord at %s (%s); retrying in %.0f s", host, exc or type(exc).__name__, delay)
                await bot.http.close()
                bot.http.connector = discord.utils.MISSING  # closed with the session: the next login makes one
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
        await bot.connect()


def use_discord_api(url: str) -> None:
    """Send the REST requests of this process to `url` (DISCORD_API_URL): discord.py keeps one base per process."""
    discord.http.Route.BASE = url


def run_bot(settings: Settings) -> int:
    """Load the engine (model and index) first, then connect; one clear line if Discord refuses the token."""
    assert settings.discord_token is not None
    from bot.engine import Engine  # torch and the models load only to serve

    use_discord_api(settings.discord_api_url)
    engine = Engine(settings)
    bot = create_bot(settings, engine)
    try:
        asyncio.run(serve(bot, settings.discord_token.get_secret_value()))
    except discord.LoginFailure:
        print(
            "error: Discord rejected DISCORD_TOKEN: copy the bot token again from the Developer Portal", file=sys.stderr
        )
        return 1
    except discord.PrivilegedIntentsRequired:
        print(
            "error: enable the Message Content intent for the bot in the Developer Portal (needed by THREADS and "
            "ASK_CHANNEL_IDS), or set THREADS=false",
            file=sys.stderr,
        )
        return 1
    return 0
