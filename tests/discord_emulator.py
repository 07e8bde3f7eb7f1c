"""A small, faithful emulator of the Discord API (REST v10 and the Gateway) for end-to-end tests of a real bot.

The real discord.py client talks real HTTP and a real WebSocket to an aiohttp server on 127.0.0.1; nothing inside
discord.py is mocked. The emulator plays one guild with text channels, roles and members, records every REST
request and every gateway payload it receives, and lets a test play the users: send messages, invoke slash
commands, force a gateway reconnect.

    emu = DiscordEmulator()
    admin = emu.add_member("alice", admin=True)
    async with emu:                                  # start() + install(); uninstall() + stop() on exit
        task = asyncio.create_task(bot.start(emu.token))
        await emu.wait_until_identified()
        message_id = await emu.send_message(admin, "what is it about?", mention_bot=True)
        [reply] = await emu.wait_for(lambda: emu.replies_to(message_id))
        interaction = await emu.send_slash_command(admin, "ask", {"question": "why?"})
        await emu.wait_for(lambda: len(emu.interaction_responses(interaction.id)) >= 2)
        await bot.close()
        await task

What Discord does and the emulator reproduces: JSON bodies served as exactly ``application/json``; zlib-stream
gateway compression; READY then GUILD_CREATE; RESUME replaying missed events then RESUMED; members in GUILD_CREATE
only with the presences intent (otherwise only the bot), message content hidden without
the message-content intent unless the bot is mentioned, it is a DM or the bot wrote it; MESSAGE_CREATE/UPDATE/
DELETE echoed for the bot's own (non-ephemeral) messages; the 3-second deadline to acknowledge an interaction;
the first follow-up after a defer resolving the "thinking" message; message, embed and command limits answered
with Discord's error bodies; ``mentions`` of created messages honouring ``allowed_mentions``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import mimetypes
import re
import secrets
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self, TypeVar

import discord
import yarl
from aiohttp import WSMsgType, web

T = TypeVar("T")

API_PREFIX = "/api/v10"
DISCORD_EPOCH_MS = 1_420_070_400_000

# Gateway intents (https://discord.com/developers/docs/events/gateway#gateway-intents).
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT

# Message flags.
FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12
SETTABLE_FLAGS = FLAG_SUPPRESS_EMBEDS | FLAG_SUPPRESS_NOTIFICATIONS

# Interaction callback types.
CALLBACK_PONG = 1
CALLBACK_CHANNEL_MESSAGE = 4
CALLBACK_DEFERRED_CHANNEL_MESSAGE = 5
CALLBACK_MODAL = 9

# Interaction types, and the component types of buttons, action rows and text inputs.
INTERACTION_COMMAND = 2
INTERACTION_COMPONENT = 3
INTERACTION_MODAL_SUBMIT = 5
COMPONENT_ACTION_ROW = 1
COMPONENT_BUTTON = 2
COMPONENT_TEXT_INPUT = 4

ALL_PERMISSIONS = discord.Permissions.all().value
ADMINISTRATOR = discord.Permissions(administrator=True).value
EVERYONE_PERMISSIONS = discord.Permissions(
    create_instant_invite=True,
    change_nickname=True,
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    create_public_threads=True,
    embed_links=True,
    attach_files=True,
    add_reactions=True,
    use_external_emojis=True,
    read_message_history=True,
    use_application_commands=True,
    connect=True,
    speak=True,
).value
BOT_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
    add_reactions=True,
    use_application_commands=True,
).value
SEND_PERMISSIONS = discord.Permissions(view_channel=True, send_messages=True).value
THREAD_SEND_PERMISSIONS = discord.Permissions(view_channel=True, send_messages_in_threads=True).value
THREAD_CREATE_PERMISSIONS = discord.Permissions(view_channel=True, create_public_threads=True).value

# Channel types, and the message flag of a message a thread was started on.
CHANNEL_GUILD_TEXT = 0
CHANNEL_PUBLIC_THREAD = 11
FLAG_HAS_THREAD = 1 << 5

_COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")
_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")
_TRACE = ['["gateway-emulator",{"micros":0.0}]']
_RECORD = web.RequestKey("record", "RecordedRequest")


def snowflake_timestamp(snowflake: int) -> str:
    """The ISO-8601 timestamp Discord writes for an object created at the time encoded in its snowflake."""
    ms = (snowflake >> 22) + DISCORD_EPOCH_MS
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="microseconds")


class SnowflakeFactory:
    """Realistic snowflakes: milliseconds since the Discord epoch, worker 1, an increment; strictly increasing."""

    def __init__(self) -> None:
        self._last = 0
        self._increment = 0

    def __call__(self) -> int:
        self._increment = (self._increment + 1) & 0xFFF
        now = int(time.time() * 1000) - DISCORD_EPOCH_MS
        self._last = max(now << 22 | 1 << 17 | self._increment, self._last + 1)
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
            "discriminator": f"{self.id % 10000:04d}" if self.bot else "0",
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
    type: int = 0  # GUILD_TEXT

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
    auto_archive_duration: int = 1440

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
        return 200 <= self.status < 300


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


class GatewayConnection:
    """One WebSocket connection to the gateway; sends are serialised and zlib-stream compressed if asked."""

    def __init__(self, ws: web.WebSocketResponse, path: str, query: dict[str, str]) -> None:
        self.ws = ws
        self.path = path
        self.query = query
        self.received: list[dict[str, Any]] = []
        self.session: GatewaySession | None = None
        self.error: str | None = None  # why the emulator refused the connection
        self.closed_with: int | None = None  # the close code the emulator sent, if it closed the connection
        self._zlib = zlib.compressobj() if query.get("compress") == "zlib-stream" else None
        self._lock = asyncio.Lock()

    async def send(self, payload: dict[str, Any]) -> None:
        text = json.dumps(payload, separators=(",", ":"))
        async with self._lock:
            if self.ws.closed:
                return
            with contextlib.suppress(ConnectionError):
                if self._zlib is None:
                    await self.ws.send_str(text)
                else:  # one shared zlib context per connection; every message ends with the Z_SYNC_FLUSH suffix
                    data = self._zlib.compress(text.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
                    await self.ws.send_bytes(data)

    async def close(self, code: int, reason: str = "") -> None:
        if not self.ws.closed:
            self.closed_with = code
            await self.ws.close(code=code, message=reason.encode())


@dataclass
class GatewaySession:
    """An identified gateway session: outlives its connection so that the client can RESUME it."""

    id: str
    intents: int
    shard: tuple[int, int]
    connection: GatewayConnection | None
    seq: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)
    ready: bool = False  # READY and the GUILD_CREATEs have been sent

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a DISPATCH with the next sequence number; kept for replay if the connection is gone."""
        self.seq += 1
        frame = {"op": 0, "t": event, "s": self.seq, "d": data}
        self.sent.append(frame)
        if self.connection is not None:
            await self.connection.send(frame)

    def owns(self, guild_id: int | None) -> bool:
        shard_id, shard_count = self.shard
        return (0 if guild_id is None else (guild_id >> 22) % shard_count) == shard_id


class _FormErrors:
    """Discord's "Invalid Form Body" (code 50035) error tree, built one field path at a time."""

    def __init__(self) -> None:
        self.tree: dict[str, Any] = {}

    def add(self, path: tuple[str | int, ...], code: str, message: str) -> None:
        node = self.tree
        for key in path:
            node = node.setdefault(str(key), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})

    def response(self) -> web.Response | None:
        if not self.tree:
            return None
        return _json({"message": "Invalid Form Body", "code": 50035, "errors": self.tree}, status=400)


def _json(data: Any, status: int = 200) -> web.Response:
    # discord.py decodes a body only when Content-Type is exactly "application/json" (no charset).
    return web.Response(body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"})


def _error(status: int, code: int, message: str) -> web.Response:
    return _json({"message": message, "code": code}, status=status)


def _form_error(path: tuple[str | int, ...], code: str, message: str) -> web.Response:
    errors = _FormErrors()
    errors.add(path, code, message)
    return errors.response()  # type: ignore[return-value]  # never None with an error added


def _text_input(component: dict[str, Any]) -> dict[str, Any]:
    """A submitted text input as Discord sends it back: its type and custom id (the value is added)."""
    return {"type": COMPONENT_TEXT_INPUT, "custom_id": component["custom_id"]}


def _optional_str(value: Any) -> str | None:
    """Discord accepts permission bit sets as numbers or strings and always answers with strings."""
    return None if value is None else str(value)


def _no_content() -> web.Response:
    return web.Response(status=204)


class DiscordEmulator:
    """An emulated Discord: one guild with text channels, roles and members, a bot user, REST and Gateway.

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
        heartbeat_interval_ms: int = 41_250,
        shard_count: int = 1,
        interaction_ack_timeout: float | None = 3.0,
        allowed_privileged_intents: int = PRIVILEGED_INTENTS,
    ) -> None:
        self.snowflake = SnowflakeFactory()
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.shard_count = shard_count
        self.interaction_ack_timeout = interaction_ack_timeout
        self.allowed_privileged_intents = allowed_privileged_intents

        self.owner = User(self.snowflake(), "guild-owner")
        self.bot = User(self.snowflake(), bot_name.lower(), bot=True)
        self.application_id = self.bot.id  # applications created since 2016 share their bot user's id
        self.token = ".".join(
            (
                base64.b64encode(str(self.bot.id).encode()).decode().rstrip("="),
                secrets.token_urlsafe(5),
                secrets.token_urlsafe(28),
            )
        )
        self.guild_id = self.snowflake()
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
        self.gateway_connections: list[GatewayConnection] = []
        self.messages: dict[int, dict[str, Any]] = {}  # every message, by id, in its current state
        self.interactions: dict[int, EmulatedInteraction] = {}
        self.commands: dict[int | None, list[dict[str, Any]]] = {}  # registered commands by guild id (None: global)
        self.dm_channels: dict[int, int] = {}  # user id -> DM channel id
        self.uploads: dict[int, bytes] = {}  # files the bot attached to messages, by attachment id
        self.threads: dict[int, Thread] = {}  # active threads, by id (the id of the message each started on)

        self._sessions: dict[str, GatewaySession] = {}
        self._interactions_by_token: dict[str, EmulatedInteraction] = {}
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._saved: tuple[str, yarl.URL] | None = None

    # ----------------------------------------------------------------------------------------------- set-up

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

    # ----------------------------------------------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}"

    async def start(self) -> None:
        """Serve REST and the gateway on a free port of 127.0.0.1 (after a stop, on the same port again)."""
        app = web.Application(middlewares=[self._record], client_max_size=25 * 1024 * 1024)
        app.router.add_get("/", self._gateway)
        app.router.add_get("/resume", self._gateway)  # READY's resume_gateway_url, to tell resumes apart
        for method, path, handler in self._routes():
            app.router.add_route(method, API_PREFIX + path, handler)
        app.router.add_route("*", "/{tail:.*}", self._unknown_route)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self._port).start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Close the gateway connections (1001, going away) and the server."""
        for connection in self.gateway_connections:
            await connection.close(1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def install(self) -> None:
        """Point discord.py at the emulator: ``Route.BASE`` and ``DiscordWebSocket.DEFAULT_GATEWAY``."""
        if self._saved is None:
            self._saved = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
        discord.http.Route.BASE = self.base_url
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url + "/")

    def uninstall(self) -> None:
        """Restore what :meth:`install` replaced."""
        if self._saved is not None:
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = self._saved
            self._saved = None

    async def __aenter__(self) -> Self:
        await self.start()
        self.install()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.uninstall()
        await self.stop()

    # ----------------------------------------------------------------------------------------------- waiting

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:
        """Poll until ``predicate()`` is truthy and return its value; TimeoutError (with context) otherwise."""
        deadline = time.monotonic() + timeout
        while not (value := predicate()):
            if time.monotonic() > deadline:
                recent = [f"{r.method} {r.path} -> {r.status}" for r in self.requests[-10:]]
                raise TimeoutError(f"condition not met within {timeout}s; last requests: {recent}")
            await asyncio.sleep(0.01)
        return value

    async def wait_for_responses(self, interaction_id: int, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Wait until the bot made ``count`` requests answering an interaction (callback, follow-ups, edits);
        return those first ``count``."""

        def first() -> list[RecordedRequest]:
            made = self.interaction_responses(interaction_id)
            return made[:count] if len(made) >= count else []

        return await self.wait_for(first, timeout)

    async def wait_until_identified(self, timeout: float = 10.0) -> GatewaySession:
        """Wait until the client identified and received READY and the guild's GUILD_CREATE."""

        def session() -> GatewaySession | None:
            errors = [c.error for c in self.gateway_connections if c.error]
            if errors:
                raise RuntimeError(f"gateway connection refused: {errors[-1]}")
            return self._session_for(self.guild_id)

        return await self.wait_for(session, timeout)

    # ----------------------------------------------------------------------------------------------- inspection

    @property
    def failed_requests(self) -> list[RecordedRequest]:
        """Requests answered with an error status (unknown routes included)."""
        return [r for r in self.requests if r.status >= 400]

    def channel_messages(self, channel_id: int | None = None) -> list[RecordedRequest]:
        """Successful ``POST /channels/{id}/messages`` (sends and replies), in order; all channels if None."""
        return [
            r
            for r in self.requests
            if r.ok
            and r.route == "/channels/{channel_id}/messages"
            and r.method == "POST"
            and (channel_id is None or r.path == f"/channels/{channel_id}/messages")
        ]

    def replies_to(self, message_id: int) -> list[RecordedRequest]:
        """Successful channel messages whose ``message_reference`` points at ``message_id``."""
        return [
            r
            for r in self.channel_messages()
            if str((r.body.get("message_reference") or {}).get("message_id")) == str(message_id)
        ]

    def interaction_responses(self, interaction_id: int) -> list[RecordedRequest]:
        """The callback, follow-ups and edits/fetches/deletes made for an interaction, in order."""
        return [r for r in self.requests if r.interaction_id == interaction_id]

    def interaction_messages(self, interaction_id: int) -> list[dict[str, Any]]:
        """The current state of an interaction's messages: the original response first, then follow-ups."""
        interaction = self.interactions[interaction_id]
        ids = [interaction.original_message_id, *interaction.followup_message_ids]
        return [self.messages[i] for i in ids if i is not None and i in self.messages]

    def dispatched(self, event: str) -> list[dict[str, Any]]:
        """The ``d`` of every DISPATCH of ``event`` sent, over all sessions."""
        return [f["d"] for s in self._sessions.values() for f in s.sent if f["t"] == event]

    def gateway_received(self, op: int | None = None) -> list[dict[str, Any]]:
        """Every payload the client sent over the gateway (optionally only opcode ``op``)."""
        return [p for c in self.gateway_connections for p in c.received if op is None or p.get("op") == op]

    # ----------------------------------------------------------------------------------------------- acting as users

    async def send_message(
        self,
        author_id: int,
        content: str,
        *,
        channel_id: int | None = None,
        mention_bot: bool = False,
        dm: bool = False,
        reply_to: int | None = None,
    ) -> int:
        """Have a user post a message (MESSAGE_CREATE) and return its id.

        ``mention_bot`` prefixes ``<@bot_id> `` as Discord clients do; ``dm`` posts in the user's DM channel
        with the bot; ``reply_to`` makes it a reply. The bot sees the content only if it has the message
        content intent, is mentioned, or the message is a DM - as on Discord.
        """
        author = self.users[author_id]
        channel_id = self._dm_channel(author_id) if dm else (channel_id or self.channel_id)
        if mention_bot:
            content = f"<@{self.bot.id}> {content}"
        body: dict[str, Any] = {"content": content, "nonce": str(self.snowflake())}
        if reply_to is not None:
            body["message_reference"] = {"message_id": reply_to}
        message = self._create_message(channel_id, author, body)
        if isinstance(message, web.Response):
            raise ValueError(f"invalid message: {message.text}")
        await self._publish("MESSAGE_CREATE", message, required=True)
        return int(message["id"])

    async def send_slash_command(
        self,
        user_id: int,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        channel_id: int | None = None,
        guild: bool = True,
        locale: str = "en-US",
    ) -> EmulatedInteraction:
        """Have a user invoke a chat-input command (INTERACTION_CREATE, type 2) and return the interaction.

        The command must have been synced (guild commands first, then global; only global ones in DMs), as a
        Discord client only offers registered commands. Option types come from the registered command.
        """
        command = self._registered_command(name, self.guild_id if guild else None)
        data: dict[str, Any] = {"id": command["id"], "name": name, "type": 1}
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        data.update(self._command_options(command, options or {}))
        return await self._interact(user_id, INTERACTION_COMMAND, name, data, channel_id, guild=guild, locale=locale)

    async def click_button(self, user_id: int, message_id: int, custom_id: str) -> EmulatedInteraction:
        """Have a guild member click a button of a message (INTERACTION_CREATE, type 3) and return the interaction.

        Like a Discord client, only a button the message shows can be clicked.
        """
        message = self.messages[message_id]
        buttons = [c for row in message["components"] for c in row.get("components", [])]
        if not any(b.get("type") == COMPONENT_BUTTON and b.get("custom_id") == custom_id for b in buttons):
            raise ValueError(f"message {message_id} has no button {custom_id!r}")
        data = {"custom_id": custom_id, "component_type": COMPONENT_BUTTON}
        extra = {"message": message}
        return await self._interact(
            user_id, INTERACTION_COMPONENT, custom_id, data, int(message["channel_id"]), extra=extra
        )

    async def submit_modal(self, user_id: int, shown_by: int, values: dict[str, str]) -> EmulatedInteraction:
        """Have the member submit the modal the bot showed in answer to interaction ``shown_by`` (type 5)."""
        origin = self.interactions[shown_by]
        if origin.modal is None:
            raise ValueError(f"interaction {shown_by} was not answered with a modal")
        inputs = [row["components"][0] for row in origin.modal["components"]]
        rows = [
            {"type": COMPONENT_ACTION_ROW, "components": [{**_text_input(c), "value": values.get(c["custom_id"], "")}]}
            for c in inputs
        ]
        data = {"custom_id": origin.modal["custom_id"], "components": rows}
        extra = {"message": origin.payload["message"]} if "message" in origin.payload else {}
        channel_id = int(origin.payload["channel_id"])
        return await self._interact(user_id, INTERACTION_MODAL_SUBMIT, data["custom_id"], data, channel_id, extra=extra)

    async def _interact(
        self,
        user_id: int,
        kind: int,
        name: str,
        data: dict[str, Any],
        channel_id: int | None,
        *,
        guild: bool = True,
        locale: str = "en-US",
        extra: dict[str, Any] | None = None,
    ) -> EmulatedInteraction:
        """Dispatch an INTERACTION_CREATE of a user, in a guild channel (or their DM with ``guild=False``)."""
        user = self.users[user_id]
        interaction_id = self.snowflake()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(96)  # base64("interaction:") + secret, like Discord
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "token": token,
            "version": 1,
            "locale": locale,
            "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024,
            **(extra or {}),
        }
        if guild:
            channel_id = channel_id or self.channel_id
            permissions = self.permissions_of(user_id)
            payload |= {
                "guild_id": str(self.guild_id),
                "guild": {"id": str(self.guild_id), "locale": "en-US", "features": []},
                "guild_locale": "en-US",
                "channel_id": str(channel_id),
                "channel": (self.channels.get(channel_id) or self.threads[channel_id]).payload(self.guild_id)
                | {"permissions": str(permissions)},
                "member": self.members[user_id].payload(permissions=permissions),
                "app_permissions": str(self.permissions_of(self.bot.id)),
                "authorizing_integration_owners": {"0": str(self.guild_id)},
                "context": 0,
            }
        else:
            channel_id = self._dm_channel(user_id)
            payload |= {
                "channel_id": str(channel_id),
                "channel": self._dm_channel_payload(user_id),
                "user": user.payload(),
                "app_permissions": str(self.permissions_of(self.bot.id)),
                "authorizing_integration_owners": {"0": "0"},
                "context": 1,
            }
        interaction = EmulatedInteraction(interaction_id, token, name, user_id, payload, time.monotonic())
        self.interactions[interaction_id] = interaction
        self._interactions_by_token[token] = interaction
        session = self._session_for(self.guild_id if guild else None)
        if session is None:
            raise RuntimeError("the bot is not connected to the gateway")
        await session.dispatch("INTERACTION_CREATE", payload)
        return interaction

    async def force_reconnect(self) -> None:
        """Send op 7 RECONNECT on every live connection: discord.py reconnects and RESUMEs."""
        for session in list(self._sessions.values()):
            if session.connection is not None:
                await session.connection.send({"op": 7, "d": None, "s": None, "t": None})

    # ----------------------------------------------------------------------------------------------- gateway

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        connection = GatewayConnection(ws, request.path, dict(request.query))
        self.gateway_connections.append(connection)
        query = connection.query
        if query.get("v") != "10" or query.get("encoding") != "json":
            connection.error = f"unsupported gateway query {query} (only v=10, encoding=json)"
            await connection.close(4012, "Invalid API version")
            return ws
        if query.get("compress") not in (None, "zlib-stream"):
            connection.error = f"unsupported transport compression {query['compress']!r} (only zlib-stream)"
            await connection.close(4000, "Unknown error")
            return ws
        hello = {"heartbeat_interval": self.heartbeat_interval_ms, "_trace": _TRACE}
        await connection.send({"op": 10, "d": hello, "s": None, "t": None})
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    await self._on_gateway_payload(connection, json.loads(message.data))
        finally:
            if connection.session is not None and connection.session.connection is connection:
                connection.session.connection = None
        return ws

    async def _on_gateway_payload(self, connection: GatewayConnection, payload: dict[str, Any]) -> None:
        connection.received.append(payload)
        op, data = payload.get("op"), payload.get("d")
        if op == 1:  # HEARTBEAT
            await connection.send({"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:
            await self._identify(connection, data)
        elif op == 6:
            await self._resume(connection, data)
        elif op not in (3, 4):  # presence and voice state updates are only recorded
            await connection.close(4001, "Unknown opcode.")

    async def _identify(self, connection: GatewayConnection, data: dict[str, Any]) -> None:
        if data.get("token") != self.token:
            await connection.close(4004, "Authentication failed.")
            return
        intents = data.get("intents")
        if not isinstance(intents, int):
            await connection.close(4013, "Invalid intent(s).")
            return
        if intents & PRIVILEGED_INTENTS & ~self.allowed_privileged_intents:
            await connection.close(4014, "Disallowed intent(s).")
            return
        shard_id, shard_count = data.get("shard") or (0, 1)
        if not 0 <= shard_id < shard_count:
            await connection.close(4010, "Invalid shard.")
            return
        session = GatewaySession(secrets.token_hex(16), intents, (shard_id, shard_count), connection)
        connection.session = session
        self._sessions[session.id] = session
        owns_guild = session.owns(self.guild_id)
        ready: dict[str, Any] = {
            "v": 10,
            "user": self.bot.payload() | {"verified": True, "mfa_enabled": False, "flags": 0, "email": None},
            "guilds": [{"id": str(self.guild_id), "unavailable": True}] if owns_guild else [],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url + "/resume",
            "application": {"id": str(self.application_id), "flags": self._application_flags()},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "user_settings": {},
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["emulated"],
            "auth": {},
            "_trace": _TRACE,
        }
        if "shard" in data:
            ready["shard"] = [shard_id, shard_count]
        await session.dispatch("READY", ready)
        if owns_guild and intents & INTENT_GUILDS:
            await session.dispatch("GUILD_CREATE", self._guild_create(intents))
        session.ready = True

    async def _resume(self, connection: GatewayConnection, data: dict[str, Any]) -> None:
        session = self._sessions.get(data.get("session_id", ""))
        if session is None or data.get("token") != self.token:
            await connection.send({"op": 9, "d": False, "s": None, "t": None})  # INVALID_SESSION, not resumable
            return
        if session.connection is not None and session.connection is not connection:
            await session.connection.close(4000, "Session resumed elsewhere")
        session.connection = connection
        connection.session = session
        missed = [frame for frame in session.sent if frame["s"] > (data.get("seq") or 0)]
        for frame in missed:
            await connection.send(frame)
        await session.dispatch("RESUMED", {"_trace": _TRACE})

    def _session_for(self, guild_id: int | None) -> GatewaySession | None:
        """The newest ready session whose shard receives the guild's events (DMs go to shard 0)."""
        sessions = [s for s in self._sessions.values() if s.ready and s.owns(guild_id)]
        return sessions[-1] if sessions else None

    def _application_flags(self) -> int:
        # GATEWAY_*_LIMITED: the privileged intents enabled for an unverified app; APPLICATION_COMMAND_BADGE.
        allowed = self.allowed_privileged_intents
        flags = 1 << 23
        flags |= (1 << 13) if allowed & INTENT_GUILD_PRESENCES else 0
        flags |= (1 << 15) if allowed & INTENT_GUILD_MEMBERS else 0
        flags |= (1 << 19) if allowed & INTENT_MESSAGE_CONTENT else 0
        return flags

    def _guild_create(self, intents: int) -> dict[str, Any]:
        # Without the presences intent Discord sends only the bot (and members in voice) in GUILD_CREATE.
        members = self.members.values() if intents & INTENT_GUILD_PRESENCES else [self.members[self.bot.id]]
        return {
            "id": str(self.guild_id),
            "name": self.guild_name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner.id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "system_channel_id": str(self.channel_id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "features": [],
            "roles": [role.payload() for role in self.roles.values()],
            "emojis": [],
            "stickers": [],
            "max_members": 500_000,
            "max_video_channel_users": 25,
            "vanity_url_code": None,
            "application_id": None,
            # Fields only sent in GUILD_CREATE:
            "joined_at": self.members[self.bot.id].joined_at,
            "large": False,
            "unavailable": False,
            "member_count": len(self.members),
            "members": [member.payload() for member in members],
            "channels": [channel.payload(self.guild_id) for channel in self.channels.values()],
            "threads": [thread.payload(self.guild_id) for thread in self.threads.values()],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    # ----------------------------------------------------------------------------------------------- REST plumbing

    def _routes(self) -> list[tuple[str, str, Callable[[web.Request], Any]]]:
        message = "/channels/{channel_id}/messages/{message_id}"
        webhook_message = "/webhooks/{application_id}/{token}/messages/{message_id}"  # message_id may be @original
        return [
            ("GET", "/users/@me", self._get_current_user),
            ("GET", "/oauth2/applications/@me", self._get_application),
            ("GET", "/gateway", self._get_gateway),
            ("GET", "/gateway/bot", self._get_gateway_bot),
            ("POST", "/users/@me/channels", self._create_dm),
            ("GET", "/users/{user_id}", self._get_user),
            ("GET", "/applications/{application_id}/commands", self._get_commands),
            ("PUT", "/applications/{application_id}/commands", self._put_commands),
            ("GET", "/applications/{application_id}/guilds/{guild_id}/commands", self._get_commands),
            ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands", self._put_commands),
            ("GET", "/guilds/{guild_id}/members/{user_id}", self._get_member),
            ("GET", "/channels/{channel_id}", self._get_channel),
            ("POST", "/channels/{channel_id}/typing", self._typing),
            ("POST", "/channels/{channel_id}/messages", self._post_channel_message),
            ("POST", message + "/threads", self._start_thread),
            ("GET", message, self._channel_message),
            ("PATCH", message, self._channel_message),
            ("DELETE", message, self._channel_message),
            ("POST", "/interactions/{interaction_id}/{token}/callback", self._interaction_callback),
            ("POST", "/webhooks/{application_id}/{token}", self._followup),
            ("GET", webhook_message, self._webhook_message),
            ("PATCH", webhook_message, self._webhook_message),
            ("DELETE", webhook_message, self._webhook_message),
        ]

    @web.middleware
    async def _record(self, request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        """Record every non-gateway request with its decoded body, and check the bot token where needed."""
        if request.path in ("/", "/resume") and request.method == "GET":
            return await handler(request)
        route = request.match_info.route
        known = route.handler != self._unknown_route
        body = await self._read_body(request)
        path = request.path.removeprefix(API_PREFIX)
        template = route.resource.canonical.removeprefix(API_PREFIX) if known and route.resource else ""
        record = RecordedRequest(request.method, path, template, dict(request.query), dict(request.headers), body)
        request[_RECORD] = record
        self.requests.append(record)
        if not known:
            self.unknown_routes.append(record)
        bot_route = not template.startswith(("/interactions/", "/webhooks/"))
        if known and bot_route and request.headers.get("Authorization") != f"Bot {self.token}":
            response = _error(401, 0, "401: Unauthorized")
        else:
            response = await handler(request)
        record.status = response.status
        if isinstance(response, web.Response) and response.body:
            record.response = json.loads(response.body)
        return response

    @staticmethod
    async def _read_body(request: web.Request) -> Any:
        """The JSON body; of a multipart request, its `payload_json` part with the uploaded `files[n]` parts
        added under `_uploads`, in order."""
        if request.content_type == "multipart/form-data":
            form = await request.post()
            body = json.loads(str(form["payload_json"]))
            files = sorted((k, v) for k, v in form.items() if k.startswith("files[") and isinstance(v, web.FileField))
            body["_uploads"] = [
                {"filename": f.filename, "content_type": f.content_type, "data": f.file.read()} for _, f in files
            ]
            return body
        raw = await request.read()
        if request.content_type == "application/json" and raw:
            return json.loads(raw)
        return raw.decode(errors="replace") or None

    @staticmethod
    def _body(request: web.Request) -> Any:
        return request[_RECORD].body

    async def _unknown_route(self, request: web.Request) -> web.Response:
        return _error(404, 0, "404: Not Found")

    # ----------------------------------------------------------------------------------------------- REST: users etc.

    async def _get_current_user(self, request: web.Request) -> web.Response:
        return _json(self.bot.payload() | {"verified": True, "mfa_enabled": False, "flags": 0, "email": None})

    async def _get_user(self, request: web.Request) -> web.Response:
        user = self.users.get(int(request.match_info["user_id"]))
        return _json(user.payload()) if user else _error(404, 10013, "Unknown User")

    async def _get_application(self, request: web.Request) -> web.Response:
        return _json(
            {
                "id": str(self.application_id),
                "name": self.bot.username,
                "icon": None,
                "description": "",
                "summary": "",
                "type": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": secrets.token_hex(32),
                "flags": self._application_flags(),
                "owner": self.owner.payload(),
                "team": None,
                "bot": self.bot.payload(),
                "redirect_uris": [],
                "interactions_endpoint_url": None,
                "tags": [],
                "approximate_guild_count": 1,
                "integration_types_config": {"0": {}},
            }
        )

    async def _get_gateway(self, request: web.Request) -> web.Response:
        return _json({"url": self.gateway_url})

    async def _get_gateway_bot(self, request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1}
        return _json({"url": self.gateway_url, "shards": self.shard_count, "session_start_limit": limit})

    async def _get_member(self, request: web.Request) -> web.Response:
        if int(request.match_info["guild_id"]) != self.guild_id:
            return _error(404, 10004, "Unknown Guild")
        member = self.members.get(int(request.match_info["user_id"]))
        return _json(member.payload()) if member else _error(404, 10007, "Unknown Member")

    async def _create_dm(self, request: web.Request) -> web.Response:
        recipient = int((self._body(request) or {}).get("recipient_id", 0))
        if recipient not in self.users or recipient == self.bot.id:
            return _error(400, 50033, "Invalid Recipient(s)")
        return _json(self._dm_channel_payload(recipient))

    def _dm_channel(self, user_id: int) -> int:
        if user_id not in self.dm_channels:
            self.dm_channels[user_id] = self.snowflake()
        return self.dm_channels[user_id]

    def _dm_channel_payload(self, user_id: int) -> dict[str, Any]:
        channel_id = self._dm_channel(user_id)
        return {
            "id": str(channel_id),
            "type": 1,
            "last_message_id": None,
            "flags": 0,
            "recipients": [self.users[user_id].payload()],
        }

    # ----------------------------------------------------------------------------------------------- REST: commands

    async def _get_commands(self, request: web.Request) -> web.Response:
        guild_id = int(request.match_info["guild_id"]) if "guild_id" in request.match_info else None
        return _json(self.commands.get(guild_id, []))

    async def _put_commands(self, request: web.Request) -> web.Response:
        """Bulk overwrite (what ``CommandTree.sync`` does): validate, keep ids of existing commands, answer all."""
        if int(request.match_info["application_id"]) != self.application_id:
            return _error(403, 50001, "Missing Access")
        guild_id = int(request.match_info["guild_id"]) if "guild_id" in request.match_info else None
        if guild_id is not None and guild_id != self.guild_id:
            return _error(403, 50001, "Missing Access")
        body = self._body(request)
        if not isinstance(body, list):
            return _error(400, 50035, "Invalid Form Body")
        if invalid := self._command_errors(body):
            return invalid
        existing = {(c["type"], c["name"]): c for c in self.commands.get(guild_id, [])}
        registered = []
        for command in body:
            kind = command.get("type", 1)
            old = existing.get((kind, command["name"]))
            answer = {
                "id": old["id"] if old else str(self.snowflake()),
                "application_id": str(self.application_id),
                "version": str(self.snowflake()),
                "type": kind,
                "name": command["name"],
                "name_localizations": command.get("name_localizations"),
                "description": command.get("description", ""),
                "description_localizations": command.get("description_localizations"),
                "default_member_permissions": _optional_str(command.get("default_member_permissions")),
                "nsfw": command.get("nsfw", False),
                "contexts": command.get("contexts"),
                "integration_types": command.get("integration_types") or [0],
            }
            if command.get("options"):
                answer["options"] = command["options"]
            if guild_id is not None:
                answer["guild_id"] = str(guild_id)
            else:
                answer["dm_permission"] = command.get("dm_permission", True)
            registered.append(answer)
        self.commands[guild_id] = registered
        self.command_syncs.append(CommandSync(guild_id, registered))
        return _json(registered)

    @staticmethod
    def _command_errors(commands: list[dict[str, Any]]) -> web.Response | None:
        errors = _FormErrors()
        seen: set[tuple[int, str]] = set()
        for index, command in enumerate(commands):
            kind, name = command.get("type", 1), command.get("name", "")
            if kind == 1 and (not _COMMAND_NAME.match(name) or name != name.lower()):
                errors.add((index, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
            if (kind, name) in seen:
                errors.add(
                    (index, "name"),
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    "Application command names must be unique",
                )
            seen.add((kind, name))
            if kind == 1 and not 1 <= len(command.get("description", "")) <= 100:
                errors.add((index, "description"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
            options = command.get("options") or []
            if len(options) > 25:
                errors.add((index, "options"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
            optional_seen = False
            for number, option in enumerate(options):
                if not _COMMAND_NAME.match(option.get("name", "")) or option["name"] != option["name"].lower():
                    errors.add((index, "options", number, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Invalid name")
                if option.get("type") not in (1, 2) and not 1 <= len(option.get("description", "")) <= 100:
                    errors.add(
                        (index, "options", number, "description"),
                        "BASE_TYPE_BAD_LENGTH",
                        "Must be between 1 and 100 in length.",
                    )
                if option.get("required") and optional_seen:
                    errors.add(
                        (index, "options", number, "required"),
                        "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                        "Required options must be placed before non-required options",
                    )
                optional_seen |= not option.get("required", False)
        if len([c for c in commands if c.get("type", 1) == 1]) > 100:
            errors.add((), "APPLICATION_COMMAND_TOO_MANY", "Maximum number of application commands reached (100)")
        return errors.response()

    def _registered_command(self, name: str, guild_id: int | None) -> dict[str, Any]:
        scopes = [guild_id, None] if guild_id is not None else [None]
        for scope in scopes:
            for command in self.commands.get(scope, []):
                if command["name"] == name and command["type"] == 1:
                    return command
        raise LookupError(f"/{name} is not registered {'in the guild or ' if guild_id else ''}globally; sync first")

    def _command_options(self, command: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        """The ``options`` of a command invocation, typed by the registered command (string, integer, …)."""
        schema = {option["name"]: option for option in command.get("options", [])}
        missing = [name for name, option in schema.items() if option.get("required") and name not in values]
        unknown = [name for name in values if name not in schema]
        if missing or unknown:
            raise ValueError(f"/{command['name']}: missing options {missing}, unknown options {unknown}")
        options = [{"name": name, "type": schema[name]["type"], "value": value} for name, value in values.items()]
        return {"options": options} if options else {}

    # ----------------------------------------------------------------------------------------------- REST: channels

    async def _get_channel(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["channel_id"])
        if channel := self.channels.get(channel_id) or self.threads.get(channel_id):
            return _json(channel.payload(self.guild_id))
        for user_id, dm_id in self.dm_channels.items():
            if dm_id == channel_id:
                return _json(self._dm_channel_payload(user_id))
        return _error(404, 10003, "Unknown Channel")

    async def _typing(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["channel_id"])
        if not self._in_guild(channel_id) and channel_id not in self.dm_channels.values():
            return _error(404, 10003, "Unknown Channel")
        return _no_content()

    async def _post_channel_message(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["channel_id"])
        if not self._in_guild(channel_id) and channel_id not in self.dm_channels.values():
            return _error(404, 10003, "Unknown Channel")
        needed = THREAD_SEND_PERMISSIONS if channel_id in self.threads else SEND_PERMISSIONS
        if self._in_guild(channel_id) and self.permissions_of(self.bot.id) & needed != needed:
            return _error(403, 50013, "Missing Permissions")
        body = self._body(request) or {}
        message = self._create_message(channel_id, self.bot, body)
        if isinstance(message, web.Response):
            return message
        await self._publish("MESSAGE_CREATE", message)
        return _json(message)

    async def _start_thread(self, request: web.Request) -> web.Response:
        """Start a public thread on a message (the thread takes the message's id) and announce THREAD_CREATE."""
        channel_id, message_id = int(request.match_info["channel_id"]), int(request.match_info["message_id"])
        channel = self.channels.get(channel_id)
        message = self.messages.get(message_id)
        if channel is None:
            return _error(404, 10003, "Unknown Channel")
        if channel.type != CHANNEL_GUILD_TEXT:
            return _error(400, 50024, "Cannot execute action on this channel type")
        if message is None or message["channel_id"] != str(channel_id):
            return _error(404, 10008, "Unknown Message")
        if self.permissions_of(self.bot.id) & THREAD_CREATE_PERMISSIONS != THREAD_CREATE_PERMISSIONS:
            return _error(403, 50013, "Missing Permissions")
        if message_id in self.threads:
            return _error(400, 160004, "A thread has already been created for this message")
        body = self._body(request) or {}
        name = body.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            return _form_error(("name",), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        thread = Thread(
            message_id,
            name,
            channel_id,
            self.bot.id,
            snowflake_timestamp(self.snowflake()),
            body.get("auto_archive_duration") or 1440,
        )
        self.threads[message_id] = thread
        message["flags"] |= FLAG_HAS_THREAD
        message["thread"] = thread.payload(self.guild_id)
        session = self._session_for(self.guild_id)
        if session is not None and session.intents & INTENT_GUILDS:
            await session.dispatch("THREAD_CREATE", thread.payload(self.guild_id) | {"newly_created": True})
        return _json(thread.payload(self.guild_id))

    def _in_guild(self, channel_id: int) -> bool:
        """Whether a channel id is one of the guild's channels or threads (not a DM)."""
        return channel_id in self.channels or channel_id in self.threads

    async def _channel_message(self, request: web.Request) -> web.Response:
        channel_id, message_id = int(request.match_info["channel_id"]), int(request.match_info["message_id"])
        message = self.messages.get(message_id)
        if message is None or message["channel_id"] != str(channel_id):
            return _error(404, 10008, "Unknown Message")
        if request.method == "GET":
            return _json(message)
        if message["author"]["id"] != str(self.bot.id):
            if request.method == "PATCH":
                return _error(403, 50005, "Cannot edit a message authored by another user")
            if not self.permissions_of(self.bot.id) & discord.Permissions(manage_messages=True).value:
                return _error(403, 50013, "Missing Permissions")
        if request.method == "DELETE":
            return await self._delete_message(message)
        return await self._edit_message(message, self._body(request) or {})

    # ----------------------------------------------------------------------------------------------- REST: interactions

    async def _interaction_callback(self, request: web.Request) -> web.Response:
        interaction = self.interactions.get(int(request.match_info["interaction_id"]))
        if interaction is None or interaction.token != request.match_info["token"]:
            return _error(404, 10062, "Unknown interaction")
        request[_RECORD].interaction_id = interaction.id
        if interaction.response_type is not None:
            return _error(400, 40060, "Interaction has already been acknowledged.")
        late = time.monotonic() - interaction.created
        if self.interaction_ack_timeout is not None and late > self.interaction_ack_timeout:
            return _error(404, 10062, "Unknown interaction")
        body = self._body(request) or {}
        kind, data = body.get("type"), body.get("data") or {}
        message: dict[str, Any] | None = None
        if kind == CALLBACK_CHANNEL_MESSAGE:
            created = self._interaction_message(interaction, data)
            if isinstance(created, web.Response):
                return created
            message = created
        elif kind == CALLBACK_DEFERRED_CHANNEL_MESSAGE:  # the "Bot is thinking..." message
            loading = {"content": "", "allow_empty": True}
            flags = FLAG_LOADING | (data.get("flags", 0) & FLAG_EPHEMERAL)
            created = self._create_message(
                int(interaction.payload["channel_id"]),
                self.bot,
                loading,
                interaction=interaction,
                flags=flags,
            )
            assert not isinstance(created, web.Response)
            message, interaction.loading = created, True
        elif kind == CALLBACK_MODAL:
            if invalid := self._modal_errors(data):
                return invalid
            interaction.modal = data
        elif kind not in (CALLBACK_PONG, 6, 7, 8, 10, 12):
            return _form_error(("type",), "BASE_TYPE_CHOICES", "Value must be one of {1, 4, 5, 6, 7, 8, 9, 10, 12}.")
        interaction.response_type = kind
        answer: dict[str, Any] = {"interaction": {"id": str(interaction.id), "type": interaction.payload["type"]}}
        if message is not None:
            interaction.original_message_id = int(message["id"])
            answer["interaction"] |= {
                "response_message_id": message["id"],
                "response_message_loading": interaction.loading,
                "response_message_ephemeral": bool(message["flags"] & FLAG_EPHEMERAL),
            }
            answer["resource"] = {"type": kind, "message": message}
            await self._publish("MESSAGE_CREATE", message)
        return _json(answer) if request.query.get("with_response") in ("1", "true", "True") else _no_content()

    @staticmethod
    def _modal_errors(data: dict[str, Any]) -> web.Response | None:
        """Discord's checks of a modal: a custom id, a title of 1-45 characters, 1-5 rows of one text input."""
        if not data.get("custom_id") or not 1 <= len(data.get("title") or "") <= 45:
            return _form_error(("data", "title"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 45 in length.")
        rows = data.get("components") or []
        if not 1 <= len(rows) <= 5 or any(
            len(row.get("components", [])) != 1 or row["components"][0].get("type") != COMPONENT_TEXT_INPUT
            for row in rows
        ):
            return _form_error(("data", "components"), "MODAL_INVALID", "A modal holds 1-5 rows of one text input.")
        return None

    def _interaction_message(
        self, interaction: EmulatedInteraction, body: dict[str, Any]
    ) -> dict[str, Any] | web.Response:
        """A message the bot sends in answer to an interaction, in its channel, ephemeral if the body says so."""
        flags = body.get("flags", 0) & (SETTABLE_FLAGS | FLAG_EPHEMERAL)
        channel_id = int(interaction.payload["channel_id"])
        return self._create_message(channel_id, self.bot, body, interaction=interaction, flags=flags)

    def _webhook_interaction(self, request: web.Request) -> EmulatedInteraction | None:
        interaction = self._interactions_by_token.get(request.match_info["token"])
        if interaction is None or int(request.match_info["application_id"]) != self.application_id:
            return None
        request[_RECORD].interaction_id = interaction.id
        return interaction

    async def _followup(self, request: web.Request) -> web.Response:
        """Create a follow-up message; the first one after a defer resolves the "thinking" message instead."""
        interaction = self._webhook_interaction(request)
        if interaction is None or interaction.response_type is None:
            return _error(404, 10015, "Unknown Webhook")
        body = self._body(request) or {}
        if interaction.loading and interaction.original_message_id in self.messages:
            # "If you send a followup without resolving the loading state, we interpret your followup as you
            # resolving the loading state": same message, its ephemerality fixed by the defer.
            response = await self._edit_message(self.messages[interaction.original_message_id], body)
        else:
            message = self._interaction_message(interaction, body)
            if isinstance(message, web.Response):
                return message
            interaction.followup_message_ids.append(int(message["id"]))
            await self._publish("MESSAGE_CREATE", message)
            response = _json(message)
        if request.query.get("wait") in ("1", "true", "True") or not response.status < 300:
            return response
        return _no_content()

    async def _webhook_message(self, request: web.Request) -> web.Response:
        """GET/PATCH/DELETE of an interaction's original response (``@original``) or of a follow-up."""
        interaction = self._webhook_interaction(request)
        if interaction is None:
            return _error(404, 10015, "Unknown Webhook")
        wanted = request.match_info["message_id"]
        message_id = interaction.original_message_id if wanted == "@original" else int(wanted)
        owned = {interaction.original_message_id, *interaction.followup_message_ids}
        message = self.messages.get(message_id) if message_id in owned else None
        if message is None:
            return _error(404, 10008, "Unknown Message")
        if request.method == "GET":
            return _json(message)
        if request.method == "DELETE":
            return await self._delete_message(message)
        return await self._edit_message(message, self._body(request) or {})

    # ----------------------------------------------------------------------------------------------- messages

    def _create_message(
        self,
        channel_id: int,
        author: User,
        body: dict[str, Any],
        *,
        interaction: EmulatedInteraction | None = None,
        flags: int | None = None,
    ) -> dict[str, Any] | web.Response:
        """Build, validate and store a message as Discord returns it; an error response if Discord would refuse."""
        message_id = self.snowflake()
        message: dict[str, Any] = {
            "id": str(message_id),
            "type": 0,
            "channel_id": str(channel_id),
            "author": author.payload(),
            "content": body.get("content") or "",
            "embeds": [{"type": "rich", **embed} for embed in body.get("embeds") or []],
            "attachments": [self._attachment(upload) for upload in body.get("_uploads", [])],
            "components": body.get("components") or [],
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "pinned": False,
            "tts": bool(body.get("tts")),
            "timestamp": snowflake_timestamp(message_id),
            "edited_timestamp": None,
            "flags": (body.get("flags", 0) & SETTABLE_FLAGS) if flags is None else flags,
        }
        if "nonce" in body:
            message["nonce"] = body["nonce"]
        replied_author: str | None = None
        if reference := body.get("message_reference"):
            referenced = self.messages.get(int(reference.get("message_id") or 0))
            if referenced is None or referenced["channel_id"] != str(channel_id):
                if reference.get("fail_if_not_exists", True):
                    return _form_error(("message_reference",), "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")
            else:
                message["type"] = 19  # REPLY
                message["message_reference"] = {
                    "type": 0,
                    "channel_id": str(channel_id),
                    "message_id": referenced["id"],
                }
                if self._in_guild(channel_id):
                    message["message_reference"]["guild_id"] = str(self.guild_id)
                message["referenced_message"] = {k: v for k, v in referenced.items() if k != "referenced_message"}
                replied_author = referenced["author"]["id"]
        if interaction is not None:
            message |= self._interaction_fields(interaction)
        if invalid := self._message_errors(message, body):
            return invalid
        self._set_mentions(message, body.get("allowed_mentions"), replied_author)
        self.messages[message_id] = message
        return message

    def _attachment(self, upload: dict[str, Any]) -> dict[str, Any]:
        """An uploaded file as a message attachment; its bytes are kept in ``uploads`` by attachment id."""
        attachment_id = self.snowflake()
        self.uploads[attachment_id] = upload["data"]
        url = f"{self.base_url}/attachments/{attachment_id}/{upload['filename']}"
        return {
            "id": str(attachment_id),
            "filename": upload["filename"],
            "size": len(upload["data"]),
            "url": url,
            "proxy_url": url,
            # Discord names the type from the file name, whatever the upload's part said.
            "content_type": mimetypes.guess_type(upload["filename"])[0] or upload["content_type"],
        }

    def _interaction_fields(self, interaction: EmulatedInteraction) -> dict[str, Any]:
        user = self.users[interaction.user_id].payload()
        metadata: dict[str, Any] = {
            "id": str(interaction.id),
            "type": 2,
            "user": user,
            "authorizing_integration_owners": interaction.payload["authorizing_integration_owners"],
            "name": interaction.name,
            "command_type": 1,
        }
        if interaction.original_message_id is not None:
            metadata["original_response_message_id"] = str(interaction.original_message_id)
        return {
            "type": 20,  # CHAT_INPUT_COMMAND
            "webhook_id": str(self.application_id),
            "application_id": str(self.application_id),
            "interaction_metadata": metadata,
            "interaction": {"id": str(interaction.id), "type": 2, "name": interaction.name, "user": user},
        }

    @staticmethod
    def _message_errors(message: dict[str, Any], body: dict[str, Any]) -> web.Response | None:
        """Discord's message limits: 2000 characters, 10 embeds, the embed field limits and 6000 in total."""
        if not (message["content"] or message["embeds"] or message["components"] or body.get("allow_empty")):
            return _error(400, 50006, "Cannot send an empty message")
        errors = _FormErrors()
        if len(message["content"]) > 2000:
            errors.add(("content",), "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
        if len(message["embeds"]) > 10:
            errors.add(("embeds",), "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        total = 0
        for index, embed in enumerate(message["embeds"]):
            limits = {
                ("title",): 256,
                ("description",): 4096,
                ("footer", "text"): 2048,
                ("author", "name"): 256,
            }
            for path, limit in limits.items():
                value = embed.get(path[0]) if len(path) == 1 else (embed.get(path[0]) or {}).get(path[1])
                total += len(value or "")
                if len(value or "") > limit:
                    errors.add(
                        ("embeds", index, *path),
                        "BASE_TYPE_MAX_LENGTH",
                        f"Must be {limit} or fewer in length.",
                    )
            fields = embed.get("fields") or []
            if len(fields) > 25:
                errors.add(("embeds", index, "fields"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
            for number, embed_field in enumerate(fields):
                for key, limit in (("name", 256), ("value", 1024)):
                    text = str(embed_field.get(key) or "")
                    total += len(text)
                    if not text:
                        errors.add(
                            ("embeds", index, "fields", number, key),
                            "BASE_TYPE_REQUIRED",
                            "This field is required",
                        )
                    elif len(text) > limit:
                        errors.add(
                            ("embeds", index, "fields", number, key),
                            "BASE_TYPE_MAX_LENGTH",
                            f"Must be {limit} or fewer in length.",
                        )
        if total > 6000:
            errors.add(("embeds",), "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")
        allowed = body.get("allowed_mentions") or {}
        for kind in ("users", "roles"):
            if kind in (allowed.get("parse") or []) and kind in allowed:
                errors.add(("allowed_mentions", kind), "SET_TYPE_ALREADY_CONTAINS_VALUE", f"parse contains {kind}")
        return errors.response()

    def _set_mentions(
        self, message: dict[str, Any], allowed: dict[str, Any] | None, replied_author: str | None
    ) -> None:
        """Fill ``mentions``/``mention_roles``/``mention_everyone`` with who is actually pinged.

        Without ``allowed_mentions`` everything in the content pings (and a reply pings the replied-to author);
        with it, only what ``parse``/``users``/``roles``/``replied_user`` allow.
        """
        content = message["content"]
        parse = set(allowed.get("parse") or []) if allowed is not None else {"users", "roles", "everyone"}
        user_ids = [int(i) for i in dict.fromkeys(_USER_MENTION.findall(content)) if int(i) in self.users]
        role_ids = [int(i) for i in dict.fromkeys(_ROLE_MENTION.findall(content)) if int(i) in self.roles]
        if allowed is not None and "users" not in parse:
            user_ids = [i for i in user_ids if str(i) in {str(u) for u in allowed.get("users") or []}]
        if allowed is not None and "roles" not in parse:
            role_ids = [i for i in role_ids if str(i) in {str(r) for r in allowed.get("roles") or []}]
        reply_pings = allowed is None or allowed.get("replied_user", False)
        if replied_author is not None and reply_pings and int(replied_author) not in user_ids:
            user_ids.append(int(replied_author))
        message["mentions"] = [self.users[i].payload() for i in user_ids]
        message["mention_roles"] = [str(i) for i in role_ids]
        author_id = int(message["author"]["id"])
        may_ping_everyone = author_id not in self.members or bool(
            self.permissions_of(author_id) & discord.Permissions(mention_everyone=True).value
        )
        everyone_in_text = "@everyone" in content or "@here" in content
        message["mention_everyone"] = everyone_in_text and "everyone" in parse and may_ping_everyone

    async def _edit_message(self, message: dict[str, Any], body: dict[str, Any]) -> web.Response:
        edited = dict(message)
        for key in ("content", "embeds", "components"):
            if key in body:
                edited[key] = body[key] or ("" if key == "content" else [])
        edited["embeds"] = [{"type": "rich", **embed} for embed in edited["embeds"]]
        if "attachments" in body or "_uploads" in body:  # listed attachments are kept, uploads are added
            kept = {str(a.get("id")) for a in body.get("attachments", [])}
            edited["attachments"] = [a for a in message["attachments"] if a["id"] in kept]
            edited["attachments"] += [self._attachment(upload) for upload in body.get("_uploads", [])]
        if "flags" in body:
            edited["flags"] = (message["flags"] & ~FLAG_SUPPRESS_EMBEDS) | (body["flags"] & FLAG_SUPPRESS_EMBEDS)
        resolving = bool(message["flags"] & FLAG_LOADING)
        if resolving:
            edited["flags"] &= ~FLAG_LOADING
        else:
            edited["edited_timestamp"] = datetime.now(UTC).isoformat(timespec="microseconds")
        if invalid := self._message_errors(edited, body):
            return invalid
        replied = (message.get("referenced_message") or {}).get("author", {}).get("id")
        if "content" in body or "allowed_mentions" in body:
            self._set_mentions(edited, body.get("allowed_mentions"), replied)
        self.messages[int(message["id"])] = edited
        for interaction in self.interactions.values():
            if interaction.original_message_id == int(message["id"]):
                interaction.loading = False
        await self._publish("MESSAGE_UPDATE", edited)
        return _json(edited)

    async def _delete_message(self, message: dict[str, Any]) -> web.Response:
        del self.messages[int(message["id"])]
        deletion = {"id": message["id"], "channel_id": message["channel_id"]}
        if self._in_guild(int(message["channel_id"])):
            deletion["guild_id"] = str(self.guild_id)
        if not message["flags"] & FLAG_EPHEMERAL:
            await self._dispatch_message_event("MESSAGE_DELETE", deletion, int(message["channel_id"]))
        return _no_content()

    async def _publish(self, event: str, message: dict[str, Any], *, required: bool = False) -> None:
        """Dispatch MESSAGE_CREATE/UPDATE for a (non-ephemeral) message as the bot's session would see it."""
        if message["flags"] & FLAG_EPHEMERAL:
            return
        channel_id = int(message["channel_id"])
        data = dict(message)
        in_guild = self._in_guild(channel_id)
        author_id = int(message["author"]["id"])
        if in_guild:
            data["guild_id"] = str(self.guild_id)
            if author_id in self.members:
                data["member"] = self.members[author_id].payload(with_user=False)
            data["mentions"] = [
                mention | {"member": self.members[int(mention["id"])].payload(with_user=False)}
                if int(mention["id"]) in self.members
                else mention
                for mention in data["mentions"]
            ]
        session = self._session_for(self.guild_id if in_guild else None)
        if session is not None:
            # Without the message content intent, content is withheld unless the bot wrote or is mentioned in
            # the message, or it is a DM.
            visible = (
                session.intents & INTENT_MESSAGE_CONTENT
                or not in_guild
                or author_id == self.bot.id
                or any(int(m["id"]) == self.bot.id for m in message["mentions"])
            )
            if not visible:
                data |= {"content": "", "embeds": [], "attachments": [], "components": []}
        await self._dispatch_message_event(event, data, channel_id, required=required)

    async def _dispatch_message_event(
        self, event: str, data: dict[str, Any], channel_id: int, *, required: bool = False
    ) -> None:
        in_guild = self._in_guild(channel_id)
        session = self._session_for(self.guild_id if in_guild else None)
        if session is None:
            if required:
                raise RuntimeError("the bot is not connected to the gateway")
            return
        if session.intents & (INTENT_GUILD_MESSAGES if in_guild else INTENT_DIRECT_MESSAGES):
            await session.dispatch(event, data)
