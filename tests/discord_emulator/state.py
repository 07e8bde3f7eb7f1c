"""The emulated world: guilds with their roles, text channels, threads and members, the bot user, the messages and
interactions, and the records the tests inspect."""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, TypedDict

from aiohttp import web

from .constants import (
    ADMINISTRATOR,
    API_PREFIX,
    APPLICATION_COMMAND_BADGE,
    APPLICATION_GATEWAY_GUILD_MEMBERS_LIMITED,
    APPLICATION_GATEWAY_MESSAGE_CONTENT_LIMITED,
    APPLICATION_GATEWAY_PRESENCE_LIMITED,
    BOT_PERMISSIONS,
    CHANNEL_DM,
    COMMAND_CHAT_INPUT,
    DEFAULT_HEARTBEAT_INTERVAL_MS,
    DISCORD_EPOCH_MS,
    EMULATOR_WORKER_ID,
    EVERYONE_PERMISSIONS,
    INTENT_GUILD_MEMBERS,
    INTENT_GUILD_PRESENCES,
    INTENT_MESSAGE_CONTENT,
    INTERACTION_ACK_SECONDS,
    PRIVILEGED_INTENTS,
    SNOWFLAKE_INCREMENT_MASK,
    SNOWFLAKE_TIMESTAMP_SHIFT,
    SNOWFLAKE_WORKER_SHIFT,
)
from .models import Channel, Guild, Member, Role, Thread, User

# A bot token: the bot's id in base64, then random parts as long as a timestamp's and an HMAC's.
TOKEN_TIMESTAMP_BYTES = 5
TOKEN_HMAC_BYTES = 28


def snowflake_timestamp(snowflake: int) -> str:
    """The ISO-8601 timestamp Discord writes for an object created at the time encoded in its snowflake."""
    ms = (snowflake >> SNOWFLAKE_TIMESTAMP_SHIFT) + DISCORD_EPOCH_MS
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="microseconds")


class SnowflakeFactory:
    """Realistic snowflakes: milliseconds since the Discord epoch, worker 1, an increment; strictly increasing."""

    def __init__(self) -> None:
        self._last = 0
        self._increment = 0

    def __call__(self) -> int:
        self._increment = (self._increment + 1) & SNOWFLAKE_INCREMENT_MASK
        now = int(time.time() * 1000) - DISCORD_EPOCH_MS
        snowflake = now << SNOWFLAKE_TIMESTAMP_SHIFT | EMULATOR_WORKER_ID << SNOWFLAKE_WORKER_SHIFT | self._increment
        self._last = max(snowflake, self._last + 1)
        return self._last


@dataclass
class RecordedRequest:
    """One REST request the client made, and what the emulator answered."""

    method: str
    path: str  # below /api/v10, e.g. "/channels/123/messages"
    route: str  # the matched template, e.g. "/channels/{channel_id}/messages"; "" for an unknown route
    query: dict[str, str]
    headers: dict[str, str]
    body: Any  # the JSON body, or None
    status: int = 0
    response: Any = None  # the decoded JSON answer, or None (e.g. 204)
    interaction_id: int | None = None  # set on interaction callbacks and on webhook calls with its token
    at: float = field(default_factory=time.monotonic)  # when it arrived (time.monotonic)

    @property
    def ok(self) -> bool:
        return HTTPStatus.OK <= self.status < HTTPStatus.MULTIPLE_CHOICES


RECORD = web.RequestKey("record", RecordedRequest)


def recorded(request: web.Request) -> RecordedRequest:
    """The record of a REST request, made before its handler runs."""
    return request[RECORD]


@dataclass
class CommandSync:
    """One bulk overwrite of application commands: the commands as Discord answered them (with ids)."""

    guild_id: int | None  # None for global commands
    commands: list[dict[str, Any]]

    @property
    def names(self) -> list[str]:
        return [command["name"] for command in self.commands]


@dataclass
class EmulatedInteraction:
    """An interaction the emulator dispatched, and the state of its response."""

    id: int
    token: str
    name: str
    user_id: int
    payload: dict[str, Any]
    created: float  # time.monotonic() at dispatch, for the acknowledgement deadline
    response_type: int | None = None
    original_message_id: int | None = None
    loading: bool = False  # deferred with a "thinking" message not yet resolved
    followup_message_ids: list[int] = field(default_factory=list)
    modal: dict[str, Any] | None = None  # the modal the bot answered with (callback type 9)
    choices: list[dict[str, Any]] | None = None  # the autocomplete choices the bot answered with (callback type 8)


@dataclass
class UserAttachment:
    """A file a user attached to a slash command, kept by the CDN and served at its signed URL."""

    id: int
    filename: str
    data: bytes
    content_type: str
    channel_id: int
    expires: int  # Unix time after which the signed URL no longer works (``ex``)
    issued: int  # Unix time the URL was signed (``is``)
    signature: str  # ``hm``
    downloads: int = 0


class WorldOptions(TypedDict, total=False):
    """The keyword arguments of :class:`World` (and of the emulator)."""

    bot_name: str
    guild_name: str
    channel_names: tuple[str, ...]
    bot_permissions: int
    heartbeat_interval_ms: int
    shard_count: int
    interaction_ack_timeout: float | None
    allowed_privileged_intents: int
    guild_shard: tuple[int, int] | None


class World:
    """Guilds with text channels, roles and members, a bot user, and everything that happened in them.

    The first guild, made with the world, is the default of every call taking a ``guild_id``; ``roles``,
    ``channels``, ``members``, ``guild_id``, ``channel_id`` and ``owner_id`` are its own. Configure a guild's roles
    and channels before the bot connects or joins it (a connected client would need GUILD_ROLE_CREATE /
    CHANNEL_CREATE to learn about later ones); members may be added at any time, since interactions and messages
    carry their member data. A guild the bot was removed from stays in ``guilds`` (its members still in it), with
    ``has_bot`` false.
    """

    def __init__(
        self,
        *,
        bot_name: str = "ArticleBot",
        guild_name: str = "Emulated Guild",
        channel_names: tuple[str, ...] = ("general",),
        bot_permissions: int = BOT_PERMISSIONS,
        heartbeat_interval_ms: int = DEFAULT_HEARTBEAT_INTERVAL_MS,
        shard_count: int = 1,
        interaction_ack_timeout: float | None = INTERACTION_ACK_SECONDS,
        allowed_privileged_intents: int = PRIVILEGED_INTENTS,
        guild_shard: tuple[int, int] | None = None,
    ) -> None:
        self.snowflake = SnowflakeFactory()
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.shard_count = shard_count  # what GET /gateway/bot recommends
        self.interaction_ack_timeout = interaction_ack_timeout
        self.allowed_privileged_intents = allowed_privileged_intents
        self.port = 0  # where the server listens, once started

        self.owner = User(self.snowflake(), "guild-owner")  # the application's owner, who owns the first guild
        self.bot = User(self.snowflake(), bot_name.lower(), bot=True)
        self.bot_role_name = bot_name  # the name of the managed role the bot gets in each guild it joins
        self.application_id = self.bot.id  # applications created since 2016 share their bot user's id
        self.token = ".".join(
            (
                base64.b64encode(str(self.bot.id).encode()).decode().rstrip("="),
                secrets.token_urlsafe(TOKEN_TIMESTAMP_BYTES),
                secrets.token_urlsafe(TOKEN_HMAC_BYTES),
            )
        )
        self.users: dict[int, User] = {self.owner.id: self.owner, self.bot.id: self.bot}
        self.guilds: dict[int, Guild] = {}  # every guild, by id, in the order they were made
        self.guild_id = self.create_guild(
            guild_name,
            channel_names=channel_names,
            owner_id=self.owner.id,
            bot_permissions=bot_permissions,
            shard=guild_shard,
        )

        # What happened, for the tests to inspect.
        self.requests: list[RecordedRequest] = []
        self.unknown_routes: list[RecordedRequest] = []
        self.command_syncs: list[CommandSync] = []
        self.messages: dict[int, dict[str, Any]] = {}  # every message, by id, in its current state
        self.interactions: dict[int, EmulatedInteraction] = {}
        self.interactions_by_token: dict[str, EmulatedInteraction] = {}
        self.commands: dict[int | None, list[dict[str, Any]]] = {}  # registered commands by guild id (None: global)
        self.dm_channels: dict[int, int] = {}  # user id -> DM channel id
        self.uploads: dict[int, bytes] = {}  # files the bot attached to messages, by attachment id
        self.attachments: dict[int, UserAttachment] = {}  # files users attached to slash commands, by id
        self.threads: dict[int, Thread] = {}  # active threads, by id (the id of the message each started on)
        # Latency: seconds a route's response is held after it took effect (its gateway events already sent), as
        # on Discord, where a MESSAGE_CREATE often arrives before the REST response; by (method, route template).
        self.response_delays: dict[tuple[str, str], float] = {}

    # ----------------------------------------------------------------------------------------------- the first guild

    @property
    def roles(self) -> dict[int, Role]:
        return self.guild().roles

    @property
    def channels(self) -> dict[int, Channel]:
        return self.guild().channels

    @property
    def members(self) -> dict[int, Member]:
        return self.guild().members

    @property
    def guild_name(self) -> str:
        return self.guild().name

    @property
    def admin_role_id(self) -> int:
        return self.guild().admin_role_id

    @property
    def bot_role_id(self) -> int | None:
        return self.guild().bot_role_id

    @property
    def owner_id(self) -> int:
        return self.guild().owner_id

    @property
    def channel_id(self) -> int:
        """The first text channel of the first guild: the default for messages and slash commands."""
        return self.guild().channel_id

    @property
    def bot_id(self) -> int:
        return self.bot.id

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    # ----------------------------------------------------------------------------------------------- guilds

    def create_guild(
        self,
        name: str,
        *,
        channel_names: tuple[str, ...] = ("general",),
        owner_id: int | None = None,
        bot_permissions: int = BOT_PERMISSIONS,
        shard: tuple[int, int] | None = None,
    ) -> int:
        """Make a guild with the bot in it - @everyone, "Administrator" and the bot's managed role, text channels,
        its owner (a new user unless ``owner_id``) - and return its id. Only the world changes: ``emu.add_guild``
        also announces it to a connected bot.

        ``shard=(shard_id, shard_count)`` picks an id Discord's rule, ``(id >> 22) % shard_count``, routes there.
        """
        guild_id = self.snowflake()
        while shard is not None and (guild_id >> SNOWFLAKE_TIMESTAMP_SHIFT) % shard[1] != shard[0]:
            guild_id = self.snowflake()  # within milliseconds
        if owner_id is None:
            owner = User(self.snowflake(), f"{'-'.join(name.lower().split())}-owner")
            self.users[owner.id] = owner
            owner_id = owner.id
        guild = Guild(guild_id, name, owner_id, self.bot.id, bot_permissions)
        guild.roles[guild_id] = Role(guild_id, "@everyone", EVERYONE_PERMISSIONS)
        self.guilds[guild_id] = guild
        guild.admin_role_id = self.add_role("Administrator", ADMINISTRATOR, guild_id=guild_id)
        for channel in channel_names:
            self.add_channel(channel, guild_id=guild_id)
        self.join(owner_id, guild_id)
        self.bot_joins(guild_id)
        return guild_id

    def bot_joins(self, guild_id: int) -> None:
        """The bot becomes a member of a guild, with a new managed role (the world only; see ``emu.add_bot``)."""
        guild = self.guild(guild_id)
        if guild.has_bot:
            raise ValueError(f"the bot is already in guild {guild_id}")
        guild.bot_role_id = self.add_role(self.bot_role_name, guild.bot_permissions, guild_id=guild_id)
        guild.roles[guild.bot_role_id].bot_id = self.bot.id
        self.join(self.bot.id, guild_id)
        guild.members[self.bot.id].role_ids.append(guild.bot_role_id)

    def bot_leaves(self, guild_id: int) -> None:
        """The bot is no longer a member of a guild; Discord deletes its managed role (the world only; see
        ``emu.remove_bot``)."""
        guild = self.guild(guild_id)
        if not guild.has_bot:
            raise LookupError(f"the bot is not in guild {guild_id}")
        del guild.members[self.bot.id]
        if guild.bot_role_id is not None:
            del guild.roles[guild.bot_role_id]
            guild.bot_role_id = None
        guild.unavailable = False

    def guild(self, guild_id: int | None = None) -> Guild:
        """A guild by id; the first guild if None."""
        guild = self.guilds.get(self.guild_id if guild_id is None else guild_id)
        if guild is None:
            raise LookupError(f"no guild {guild_id}")
        return guild

    def guild_of(self, channel_id: int) -> Guild | None:
        """The guild of a channel or thread; None for a DM or an unknown channel."""
        if thread := self.threads.get(channel_id):
            channel_id = thread.parent_id
        return next((guild for guild in self.guilds.values() if channel_id in guild.channels), None)

    def guild_channel(self, channel_id: int) -> Channel | Thread | None:
        """A guild's text channel or thread by id; None for a DM or an unknown channel."""
        if thread := self.threads.get(channel_id):
            return thread
        guild = self.guild_of(channel_id)
        return guild.channels[channel_id] if guild else None

    def in_guild(self, channel_id: int) -> bool:
        """Whether a channel id is one of the guilds' channels or threads (not a DM)."""
        return self.guild_of(channel_id) is not None

    def guild_create_payload(self, guild: Guild, intents: int, *, joined: bool = False) -> dict[str, Any]:
        """GUILD_CREATE for a session with these intents: without the presences intent Discord sends only the bot
        (and members in voice) as members; ``joined`` when the bot has just joined the guild."""
        threads = [thread for thread in self.threads.values() if thread.parent_id in guild.channels]
        return guild.create_payload(threads, all_members=bool(intents & INTENT_GUILD_PRESENCES), joined=joined)

    # ----------------------------------------------------------------------------------------------- in a guild

    def add_role(self, name: str, permissions: int = 0, *, guild_id: int | None = None) -> int:
        """Add a role to a guild (before the bot connects or joins it) and return its id."""
        guild = self.guild(guild_id)
        role_id = self.snowflake()
        guild.roles[role_id] = Role(role_id, name, permissions, position=len(guild.roles))
        return role_id

    def add_channel(self, name: str, *, guild_id: int | None = None) -> int:
        """Add a text channel to a guild (before the bot connects or joins it) and return its id."""
        guild = self.guild(guild_id)
        channel_id = self.snowflake()
        guild.channels[channel_id] = Channel(channel_id, name, position=len(guild.channels))
        return channel_id

    def add_member(
        self,
        name: str,
        *,
        roles: tuple[int | str, ...] = (),
        admin: bool = False,
        bot: bool = False,
        guild_id: int | None = None,
    ) -> int:
        """Add a new user as a member of a guild with the given roles (ids or names) and return the user id.

        ``admin=True`` gives the member the guild's "Administrator" role (the ADMINISTRATOR permission). The same
        user joins other guilds with :meth:`join`.
        """
        self.guild(guild_id)  # fails before a user is made
        user = User(self.snowflake(), name, bot=bot)
        self.users[user.id] = user
        self.join(user.id, guild_id, roles=roles, admin=admin)
        return user.id

    def join(
        self, user_id: int, guild_id: int | None, *, roles: tuple[int | str, ...] = (), admin: bool = False
    ) -> None:
        """Make an existing user a member of another guild, with that guild's roles (ids or names)."""
        guild = self.guild(guild_id)
        if user_id in guild.members:
            raise ValueError(f"user {user_id} is already a member of guild {guild.id}")
        role_ids = [guild.role_id(role) for role in roles]
        if admin:
            role_ids.append(guild.admin_role_id)
        guild.members[user_id] = Member(self.users[user_id], role_ids, snowflake_timestamp(self.snowflake()))

    def permissions_of(self, user_id: int, guild_id: int | None = None) -> int:
        """A member's permissions in a guild as Discord computes them (no channel overwrites exist here)."""
        return self.guild(guild_id).permissions_of(user_id)

    # ----------------------------------------------------------------------------------------------- the bot

    def dm_channel(self, user_id: int) -> int:
        """The id of a user's DM channel with the bot, opened on first use."""
        if user_id not in self.dm_channels:
            self.dm_channels[user_id] = self.snowflake()
        return self.dm_channels[user_id]

    def dm_channel_payload(self, user_id: int) -> dict[str, Any]:
        channel_id = self.dm_channel(user_id)
        return {
            "id": str(channel_id),
            "type": CHANNEL_DM,
            "last_message_id": None,
            "flags": 0,
            "recipients": [self.users[user_id].payload()],
        }

    def current_user_payload(self) -> dict[str, Any]:
        """The bot user as it sees itself (``GET /users/@me``, READY)."""
        return self.bot.payload() | {"verified": True, "mfa_enabled": False, "flags": 0, "email": None}

    def application_flags(self) -> int:
        allowed = self.allowed_privileged_intents
        flags = APPLICATION_COMMAND_BADGE
        flags |= APPLICATION_GATEWAY_PRESENCE_LIMITED if allowed & INTENT_GUILD_PRESENCES else 0
        flags |= APPLICATION_GATEWAY_GUILD_MEMBERS_LIMITED if allowed & INTENT_GUILD_MEMBERS else 0
        flags |= APPLICATION_GATEWAY_MESSAGE_CONTENT_LIMITED if allowed & INTENT_MESSAGE_CONTENT else 0
        return flags

    def registered_command(self, name: str, guild_id: int | None) -> dict[str, Any]:
        """The chat-input command a user can invoke: the guild's first, then the global one."""
        scopes = [guild_id, None] if guild_id is not None else [None]
        for scope in scopes:
            for command in self.commands.get(scope, []):
                if command["name"] == name and command["type"] == COMMAND_CHAT_INPUT:
                    return command
        raise LookupError(f"/{name} is not registered {'in the guild or ' if guild_id else ''}globally; sync first")
