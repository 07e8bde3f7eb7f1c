"""The REST routes: the table of every route the emulator serves, and those about users, the bot's guilds, the
application, the gateway and application commands (messages and interactions have their own modules)."""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from .constants import (
    COMMAND_CHAT_INPUT,
    INTEGRATION_GUILD_INSTALL,
    SESSION_MAX_CONCURRENCY,
    SESSION_START_RESET_AFTER_MS,
    SESSION_START_TOTAL,
)
from .gateway import Gateway
from .guilds import GuildEvents
from .messages import Messages
from .models import Guild
from .rest_interactions import InteractionRoutes
from .rest_messages import ChannelRoutes
from .server import Route
from .state import CommandSync, World, recorded
from .validation import (
    INVALID_FORM_BODY,
    INVALID_RECIPIENT,
    MISSING_ACCESS,
    UNKNOWN_GUILD,
    UNKNOWN_MEMBER,
    UNKNOWN_USER,
    command_errors,
    json_response,
    no_content,
)

VERIFY_KEY_BYTES = 32
MAX_GUILDS_PAGE = 200  # GET /users/@me/guilds: the largest and default ``limit``


def routes(world: World, gateway: Gateway, messages: Messages, guilds: GuildEvents) -> list[Route]:
    """Every REST route, in the order they are matched."""
    rest = RestRoutes(world, guilds)
    channels = ChannelRoutes(world, gateway, messages)
    interactions = InteractionRoutes(world, messages)
    message = "/channels/{channel_id}/messages/{message_id}"
    webhook_message = "/webhooks/{application_id}/{token}/messages/{message_id}"  # message_id may be @original
    return [
        ("GET", "/users/@me", rest.get_current_user),
        ("GET", "/oauth2/applications/@me", rest.get_application),
        ("GET", "/gateway/bot", rest.get_gateway_bot),
        ("POST", "/users/@me/channels", rest.create_dm),
        ("GET", "/users/@me/guilds", rest.get_guilds),
        ("DELETE", "/users/@me/guilds/{guild_id}", rest.leave_guild),
        ("GET", "/users/{user_id}", rest.get_user),
        ("GET", "/applications/{application_id}/commands", rest.get_commands),
        ("PUT", "/applications/{application_id}/commands", rest.put_commands),
        ("GET", "/applications/{application_id}/guilds/{guild_id}/commands", rest.get_commands),
        ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands", rest.put_commands),
        ("GET", "/guilds/{guild_id}/members/{user_id}", rest.get_member),
        ("GET", "/channels/{channel_id}", channels.get_channel),
        ("POST", "/channels/{channel_id}/typing", channels.typing),
        ("POST", "/channels/{channel_id}/messages", channels.post_message),
        ("POST", message + "/threads", channels.start_thread),
        ("GET", message, channels.message),
        ("PATCH", message, channels.message),
        ("DELETE", message, channels.message),
        ("POST", "/interactions/{interaction_id}/{token}/callback", interactions.callback),
        ("POST", "/webhooks/{application_id}/{token}", interactions.followup),
        ("GET", webhook_message, interactions.webhook_message),
        ("PATCH", webhook_message, interactions.webhook_message),
        ("DELETE", webhook_message, interactions.webhook_message),
    ]


def _optional_str(value: Any) -> str | None:
    """Discord accepts permission bit sets as numbers or strings and always answers with strings."""
    return None if value is None else str(value)


class RestRoutes:
    """Users, the bot's guilds, the application, the gateway's address and the application commands."""

    def __init__(self, world: World, guilds: GuildEvents) -> None:
        self.world = world
        self.guilds = guilds

    def _bot_guild(self, request: web.Request) -> Guild | None:
        """The guild of the route's ``guild_id``, if the bot is in it."""
        guild = self.world.guilds.get(int(request.match_info["guild_id"]))
        return guild if guild is not None and guild.has_bot else None

    async def get_current_user(self, request: web.Request) -> web.Response:
        return json_response(self.world.current_user_payload())

    async def get_user(self, request: web.Request) -> web.Response:
        user = self.world.users.get(int(request.match_info["user_id"]))
        return json_response(user.payload()) if user else UNKNOWN_USER.response()

    async def get_application(self, request: web.Request) -> web.Response:
        world = self.world
        return json_response(
            {
                "id": str(world.application_id),
                "name": world.bot.username,
                "icon": None,
                "description": "",
                "summary": "",
                "type": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": secrets.token_hex(VERIFY_KEY_BYTES),
                "flags": world.application_flags(),
                "owner": world.owner.payload(),
                "team": None,
                "bot": world.bot.payload(),
                "redirect_uris": [],
                "interactions_endpoint_url": None,
                "tags": [],
                "approximate_guild_count": len([g for g in world.guilds.values() if g.has_bot]),
                "integration_types_config": {str(INTEGRATION_GUILD_INSTALL): {}},
            }
        )

    async def get_gateway_bot(self, request: web.Request) -> web.Response:
        limit = {
            "total": SESSION_START_TOTAL,
            "remaining": SESSION_START_TOTAL - 1,
            "reset_after": SESSION_START_RESET_AFTER_MS,
            "max_concurrency": SESSION_MAX_CONCURRENCY,
        }
        world = self.world
        return json_response({"url": world.gateway_url, "shards": world.shard_count, "session_start_limit": limit})

    async def get_member(self, request: web.Request) -> web.Response:
        guild = self._bot_guild(request)
        if guild is None:
            return UNKNOWN_GUILD.response()
        member = guild.members.get(int(request.match_info["user_id"]))
        return json_response(member.payload()) if member else UNKNOWN_MEMBER.response()

    async def get_guilds(self, request: web.Request) -> web.Response:
        """The bot's guilds by id, a page of ``limit`` after ``after`` (or before ``before``)."""
        query = request.query
        guilds = sorted((g for g in self.world.guilds.values() if g.has_bot), key=lambda g: g.id)
        if "before" in query:
            guilds = [g for g in guilds if g.id < int(query["before"])]
        if "after" in query:
            guilds = [g for g in guilds if g.id > int(query["after"])]
        limit = min(int(query.get("limit", MAX_GUILDS_PAGE)), MAX_GUILDS_PAGE)
        page = guilds[-limit:] if "before" in query and "after" not in query else guilds[:limit]
        counts = query.get("with_counts") in ("1", "true", "True")
        return json_response(
            [
                g.partial_payload()
                | ({"approximate_member_count": len(g.members), "approximate_presence_count": 0} if counts else {})
                for g in page
            ]
        )

    async def leave_guild(self, request: web.Request) -> web.Response:
        """The bot leaves a guild (``Guild.leave()``): GUILD_DELETE as for a removal, answered 204."""
        guild = self._bot_guild(request)
        if guild is None:
            return UNKNOWN_GUILD.response()
        await self.guilds.remove_bot(guild.id)
        return no_content()

    async def create_dm(self, request: web.Request) -> web.Response:
        recipient = int((recorded(request).body or {}).get("recipient_id", 0))
        if recipient not in self.world.users or recipient == self.world.bot.id:
            return INVALID_RECIPIENT.response()
        return json_response(self.world.dm_channel_payload(recipient))

    async def get_commands(self, request: web.Request) -> web.Response:
        guild_id = int(request.match_info["guild_id"]) if "guild_id" in request.match_info else None
        if guild_id is not None and self._bot_guild(request) is None:
            return MISSING_ACCESS.response()
        return json_response(self.world.commands.get(guild_id, []))

    async def put_commands(self, request: web.Request) -> web.Response:
        """Bulk overwrite (what ``CommandTree.sync`` does): validate, keep ids of existing commands, answer all."""
        world = self.world
        if int(request.match_info["application_id"]) != world.application_id:
            return MISSING_ACCESS.response()
        guild_id = int(request.match_info["guild_id"]) if "guild_id" in request.match_info else None
        if guild_id is not None and self._bot_guild(request) is None:
            return MISSING_ACCESS.response()
        body = recorded(request).body
        if not isinstance(body, list):
            return INVALID_FORM_BODY.response()
        if invalid := command_errors(body):
            return invalid
        existing = {(c["type"], c["name"]): c for c in world.commands.get(guild_id, [])}
        registered = []
        for command in body:
            kind = command.get("type", COMMAND_CHAT_INPUT)
            old = existing.get((kind, command["name"]))
            answer = {
                "id": old["id"] if old else str(world.snowflake()),
                "application_id": str(world.application_id),
                "version": str(world.snowflake()),
                "type": kind,
                "name": command["name"],
                "name_localizations": command.get("name_localizations"),
                "description": command.get("description", ""),
                "description_localizations": command.get("description_localizations"),
                "default_member_permissions": _optional_str(command.get("default_member_permissions")),
                "nsfw": command.get("nsfw", False),
                "contexts": command.get("contexts"),
                "integration_types": command.get("integration_types") or [INTEGRATION_GUILD_INSTALL],
            }
            if command.get("options"):
                answer["options"] = command["options"]
            if guild_id is not None:
                answer["guild_id"] = str(guild_id)
            else:
                answer["dm_permission"] = command.get("dm_permission", True)
            registered.append(answer)
        world.commands[guild_id] = registered
        world.command_syncs.append(CommandSync(guild_id, registered))
        return json_response(registered)
