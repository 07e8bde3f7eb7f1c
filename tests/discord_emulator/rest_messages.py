"""The REST routes of channels: fetching one, typing, sending, fetching, editing and deleting messages, and starting
a thread on a message."""

from __future__ import annotations

from aiohttp import web

from .constants import (
    CHANNEL_GUILD_TEXT,
    DEFAULT_AUTO_ARCHIVE_MINUTES,
    FLAG_HAS_THREAD,
    INTENT_GUILDS,
    MANAGE_MESSAGES,
    SEND_PERMISSIONS,
    THREAD_CREATE_PERMISSIONS,
    THREAD_SEND_PERMISSIONS,
)
from .gateway import Gateway
from .messages import Messages
from .models import Thread
from .state import World, recorded, snowflake_timestamp
from .validation import (
    MAX_THREAD_NAME,
    MIN_THREAD_NAME,
    MISSING_ACCESS,
    MISSING_PERMISSIONS,
    NOT_THE_AUTHOR,
    THREAD_ALREADY_CREATED,
    UNKNOWN_CHANNEL,
    UNKNOWN_MESSAGE,
    WRONG_CHANNEL_TYPE,
    bad_length,
    form_error,
    json_response,
    no_content,
)


class ChannelRoutes:
    """What the bot does in guild channels, threads and DMs through REST."""

    def __init__(self, world: World, gateway: Gateway, messages: Messages) -> None:
        self.world = world
        self.gateway = gateway
        self.messages = messages

    def _refused(self, channel_id: int) -> web.Response | None:
        """Discord's answer when the bot cannot reach a channel: unknown, or in a guild the bot is not in."""
        world = self.world
        guild = world.guild_of(channel_id)
        if guild is None:
            return None if channel_id in world.dm_channels.values() else UNKNOWN_CHANNEL.response()
        return None if guild.has_bot else MISSING_ACCESS.response()

    async def get_channel(self, request: web.Request) -> web.Response:
        world = self.world
        channel_id = int(request.match_info["channel_id"])
        if refused := self._refused(channel_id):
            return refused
        if (guild := world.guild_of(channel_id)) and (channel := world.guild_channel(channel_id)):
            return json_response(channel.payload(guild.id))
        user_id = next(user_id for user_id, dm_id in world.dm_channels.items() if dm_id == channel_id)
        return json_response(world.dm_channel_payload(user_id))

    async def typing(self, request: web.Request) -> web.Response:
        return self._refused(int(request.match_info["channel_id"])) or no_content()

    async def post_message(self, request: web.Request) -> web.Response:
        world = self.world
        channel_id = int(request.match_info["channel_id"])
        if refused := self._refused(channel_id):
            return refused
        needed = THREAD_SEND_PERMISSIONS if channel_id in world.threads else SEND_PERMISSIONS
        guild = world.guild_of(channel_id)
        if guild is not None and guild.permissions_of(world.bot.id) & needed != needed:
            return MISSING_PERMISSIONS.response()
        message = self.messages.create(channel_id, world.bot, recorded(request).body or {})
        if isinstance(message, web.Response):
            return message
        await self.messages.publish("MESSAGE_CREATE", message)
        return json_response(message)

    async def start_thread(self, request: web.Request) -> web.Response:
        """Start a public thread on a message (the thread takes the message's id) and announce THREAD_CREATE."""
        world = self.world
        channel_id, message_id = int(request.match_info["channel_id"]), int(request.match_info["message_id"])
        if refused := self._refused(channel_id):
            return refused
        guild = world.guild_of(channel_id)
        channel = guild.channels.get(channel_id) if guild else None
        message = world.messages.get(message_id)
        if guild is None or channel is None or channel.type != CHANNEL_GUILD_TEXT:
            return WRONG_CHANNEL_TYPE.response()  # a DM or a thread
        if message is None or message["channel_id"] != str(channel_id):
            return UNKNOWN_MESSAGE.response()
        if guild.permissions_of(world.bot.id) & THREAD_CREATE_PERMISSIONS != THREAD_CREATE_PERMISSIONS:
            return MISSING_PERMISSIONS.response()
        if message_id in world.threads:
            return THREAD_ALREADY_CREATED.response()
        body = recorded(request).body or {}
        name = body.get("name")
        if not isinstance(name, str) or not MIN_THREAD_NAME <= len(name) <= MAX_THREAD_NAME:
            return form_error(("name",), "BASE_TYPE_BAD_LENGTH", bad_length(MIN_THREAD_NAME, MAX_THREAD_NAME))
        thread = Thread(
            message_id,
            name,
            channel_id,
            world.bot.id,
            snowflake_timestamp(world.snowflake()),
            body.get("auto_archive_duration") or DEFAULT_AUTO_ARCHIVE_MINUTES,
        )
        world.threads[message_id] = thread
        message["flags"] |= FLAG_HAS_THREAD
        message["thread"] = thread.payload(guild.id)
        session = self.gateway.session_for(guild.id)
        if session is not None and session.intents & INTENT_GUILDS:
            await session.dispatch("THREAD_CREATE", thread.payload(guild.id) | {"newly_created": True})
        return json_response(thread.payload(guild.id))

    async def message(self, request: web.Request) -> web.Response:
        """GET/PATCH/DELETE of a channel message: the bot edits only its own, deletes others' with Manage Messages."""
        world = self.world
        channel_id, message_id = int(request.match_info["channel_id"]), int(request.match_info["message_id"])
        if refused := self._refused(channel_id):
            return refused
        message = world.messages.get(message_id)
        if message is None or message["channel_id"] != str(channel_id):
            return UNKNOWN_MESSAGE.response()
        if request.method == "GET":
            return json_response(message)
        if message["author"]["id"] != str(world.bot.id):
            if request.method == "PATCH":
                return NOT_THE_AUTHOR.response()
            guild = world.guild_of(channel_id)  # nobody deletes others' messages in a DM
            if guild is None or not guild.permissions_of(world.bot.id) & MANAGE_MESSAGES:
                return MISSING_PERMISSIONS.response()
        if request.method == "DELETE":
            return await self.messages.delete(message)
        return await self.messages.edit(message, recorded(request).body or {})
