"""The emulated world: one guild with its roles, text channels, threads and members, the bot user, the messages and
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
    ALL_PERMISSIONS,
    API_PREFIX,
    APPLICATION_COMMAND_BADGE,
    APPLICATION_GATEWAY_GUILD_MEMBERS_LIMITED,
    APPLICATION_GATEWAY_MESSAGE_CONTENT_LIMITED,
    APPLICATION_GATEWAY_PRESENCE_LIMITED,
    BOT_PERMISSIONS,
    CHANNEL_DM,
    CHANNEL_GUILD_TEXT,
    CHANNEL_PUBLIC_THREAD,
    COMMAND_CHAT_INPUT,
    DEFAULT_AUTO_ARCHIVE_MINUTES,
    DEFAULT_HEARTBEAT_INTERVAL_MS,
    DISCORD_EPOCH_MS,
    DISCRIMINATORS,
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
class User:
    id: int
    username: str
    bot: bool = False

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "username": self.username,
            "global_name": None if self.bot else self.username.title(),
            # Bots keep a four-digit discriminator; users migrated to unique usernames have "0".
            "discriminator": f"{self.id % DISCRIMINATORS:04d}" if self.bot else "0",
            "avatar": None,
            "public_flags": 0,
        }
        if self.bot:
            data["bot"] = True
        return data


@dataclass
class Role:
    id: int
    name: str
    permissions: int = 0
    position: int = 0
    bot_id: int | None = None  # set for the managed role Discord gives a bot when it joins

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "managed": self.bot_id is not None,
            "mentionable": False,
            "flags": 0,
        }
        if self.bot_id is not None:
            data["tags"] = {"bot_id": str(self.bot_id)}
        return data


@dataclass
class Member:
    user: User
    role_ids: list[int]
    joined_at: str

    def payload(self, *, with_user: bool = True, permissions: int | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "roles": [str(role_id) for role_id in self.role_ids],
            "nick": None,
            "avatar": None,
            "banner": None,
            "premium_since": None,
            "joined_at": self.joined_at,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = self.user.payload()
        if permissions is not None:
            data["permissions"] = str(permissions)
        return data


@dataclass
class Channel:
    id: int
    name: str
    position: int = 0
    type: int = CHANNEL_GUILD_TEXT

    def payload(self, guild_id: int) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(guild_id),
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [],
            "parent_id": None,
            "topic": None,
            "nsfw": False,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }


@dataclass
class Thread:
    """A public thread started on a message: it has the message's id, as on Discord."""

    id: int
    name: str
    parent_id: int
    owner_id: int
    created: str
    auto_archive_duration: int = DEFAULT_AUTO_ARCHIVE_MINUTES

    def payload(self, guild_id: int) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "type": CHANNEL_PUBLIC_THREAD,
            "guild_id": str(guild_id),
            "parent_id": str(self.parent_id),
            "owner_id": str(self.owner_id),
            "name": self.name,
            "last_message_id": None,
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "rate_limit_per_user": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": self.auto_archive_duration,
                "archive_timestamp": self.created,
                "locked": False,
                "create_timestamp": self.created,
            },
        }


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
    """One guild with text channels, roles and members, a bot user, and everything that happened in it.

    Configure roles and channels before the bot connects (a connected client would need GUILD_ROLE_CREATE /
    CHANNEL_CREATE to learn about later ones); members may be added at any time, since interactions and
    messages carry their member data.
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

        self.owner = User(self.snowflake(), "guild-owner")
        self.bot = User(self.snowflake(), bot_name.lower(), bot=True)
        self.application_id = self.bot.id  # applications created since 2016 share their bot user's id
        self.token = ".".join(
            (
                base64.b64encode(str(self.bot.id).encode()).decode().rstrip("="),
                secrets.token_urlsafe(TOKEN_TIMESTAMP_BYTES),
                secrets.token_urlsafe(TOKEN_HMAC_BYTES),
            )
        )
        self.guild_id = self.snowflake()
        while (
            guild_shard is not None and (self.guild_id >> SNOWFLAKE_TIMESTAMP_SHIFT) % guild_shard[1] != guild_shard[0]
        ):
            self.guild_id = self.snowflake()  # an id Discord's rule routes to that shard (id, count): within ms
        self.guild_name = guild_name
        self.roles: dict[int, Role] = {self.guild_id: Role(self.guild_id, "@everyone", EVERYONE_PERMISSIONS)}
        self.admin_role_id = self.add_role("Administrator", ADMINISTRATOR)
        self.bot_role_id = self.add_role(bot_name, bot_permissions)
        self.roles[self.bot_role_id].bot_id = self.bot.id
        self.channels: dict[int, Channel] = {}
        for name in channel_names:
            self.add_channel(name)
        self.users: dict[int, User] = {self.owner.id: self.owner, self.bot.id: self.bot}
        self.members: dict[int, Member] = {}
        for user, roles in ((self.owner, []), (self.bot, [self.bot_role_id])):
            self.members[user.id] = Member(user, roles, snowflake_timestamp(self.snowflake()))

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

    @property
    def bot_id(self) -> int:
        return self.bot.id

    @property
    def owner_id(self) -> int:
        return self.owner.id

    @property
    def channel_id(self) -> int:
        """The first text channel: the default for messages and slash commands."""
        return next(iter(self.channels))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def add_role(self, name: str, permissions: int = 0) -> int:
        """Add a guild role (before the bot connects) and return its id."""
        role_id = self.snowflake()
        self.roles[role_id] = Role(role_id, name, permissions, position=len(self.roles))
        return role_id

    def add_channel(self, name: str) -> int:
        """Add a guild text channel (before the bot connects) and return its id."""
        channel_id = self.snowflake()
        self.channels[channel_id] = Channel(channel_id, name, position=len(self.channels))
        return channel_id

    def add_member(
        self, name: str, *, roles: tuple[int | str, ...] = (), admin: bool = False, bot: bool = False
    ) -> int:
        """Add a guild member with the given roles (ids or names) and return the user id.

        ``admin=True`` gives the member the guild's "Administrator" role (the ADMINISTRATOR permission).
        """
        by_name = {role.name: role_id for role_id, role in self.roles.items()}
        role_ids = [by_name[role] if isinstance(role, str) else role for role in roles]
        if admin:
            role_ids.append(self.admin_role_id)
        user = User(self.snowflake(), name, bot=bot)
        self.users[user.id] = user
        self.members[user.id] = Member(user, role_ids, snowflake_timestamp(self.snowflake()))
        return user.id

    def permissions_of(self, user_id: int) -> int:
        """A member's permissions as Discord computes them (no channel overwrites exist here)."""
        if user_id == self.owner.id:
            return ALL_PERMISSIONS
        value = self.roles[self.guild_id].permissions
        for role_id in self.members[user_id].role_ids:
            value |= self.roles[role_id].permissions
        return ALL_PERMISSIONS if value & ADMINISTRATOR else value

    def in_guild(self, channel_id: int) -> bool:
        """Whether a channel id is one of the guild's channels or threads (not a DM)."""
        return channel_id in self.channels or channel_id in self.threads

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
