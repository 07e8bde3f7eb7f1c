"""The tests playing the users: posting messages, invoking slash commands (attaching files, typing into options
with autocomplete), clicking buttons, submitting modals - each in a guild (a channel's, or the first guild's first
channel) or a DM, delivered to the bot over the gateway as a Discord client's action would be."""

from __future__ import annotations

import secrets
import time
from typing import Any

from aiohttp import web

from .cdn import Cdn
from .constants import (
    ATTACHMENT_SIZE_LIMIT,
    BOT_PERMISSIONS,
    COMMAND_CHAT_INPUT,
    COMPONENT_ACTION_ROW,
    COMPONENT_BUTTON,
    COMPONENT_TEXT_INPUT,
    CONTEXT_BOT_DM,
    CONTEXT_GUILD,
    INTEGRATION_GUILD_INSTALL,
    INTERACTION_AUTOCOMPLETE,
    INTERACTION_COMMAND,
    INTERACTION_COMPONENT,
    INTERACTION_MODAL_SUBMIT,
    INTERACTION_VERSION,
    OPTION_ATTACHMENT,
)
from .gateway import Gateway
from .messages import Messages
from .models import Guild
from .state import EmulatedInteraction, World

INTERACTION_TOKEN_PREFIX = "aW50ZXJhY3Rpb246"  # base64("interaction:"), as Discord's tokens start
INTERACTION_TOKEN_BYTES = 96
GUILD_INSTALL = str(INTEGRATION_GUILD_INSTALL)  # the key of ``authorizing_integration_owners``
DM_APP_PERMISSIONS = BOT_PERMISSIONS  # what ``app_permissions`` says in a DM with the bot


class Actions:
    """What the users of the emulated guilds do."""

    def __init__(self, world: World, gateway: Gateway, messages: Messages, cdn: Cdn) -> None:
        self.world = world
        self.gateway = gateway
        self.messages = messages
        self.cdn = cdn

    async def send_message(
        self,
        author_id: int,
        content: str,
        *,
        channel_id: int | None = None,
        guild_id: int | None = None,
        mention_bot: bool = False,
        dm: bool = False,
        reply_to: int | None = None,
    ) -> int:
        """Have a user post a message (MESSAGE_CREATE) and return its id.

        It goes to ``channel_id``, or the first channel of ``guild_id`` (of the first guild if None); ``dm`` posts
        in the user's DM channel with the bot instead. ``mention_bot`` prefixes ``<@bot_id> `` as Discord clients
        do; ``reply_to`` makes it a reply. The bot sees the content only if it has the message content intent, is
        mentioned, or the message is a DM - as on Discord.
        """
        world = self.world
        author = world.users[author_id]
        channel_id = world.dm_channel(author_id) if dm else self._place(author_id, channel_id, guild_id)[1]
        if mention_bot:
            content = f"<@{world.bot.id}> {content}"
        body: dict[str, Any] = {"content": content, "nonce": str(world.snowflake())}
        if reply_to is not None:
            body["message_reference"] = {"message_id": reply_to}
        message = self.messages.create(channel_id, author, body)
        if isinstance(message, web.Response):
            raise ValueError(f"invalid message: {message.text}")
        await self.messages.publish("MESSAGE_CREATE", message, required=True)
        return int(message["id"])

    async def send_slash_command(
        self,
        user_id: int,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        channel_id: int | None = None,
        guild_id: int | None = None,
        guild: bool = True,
        locale: str = "en-US",
    ) -> EmulatedInteraction:
        """Have a user invoke a chat-input command (INTERACTION_CREATE, type 2) and return the interaction.

        It is invoked in ``channel_id``, or the first channel of ``guild_id`` (of the first guild if None), or in
        the user's DM with the bot if ``guild=False``. The command must have been synced (that guild's commands
        first, then global; only global ones in DMs), as a Discord client only offers registered commands. Option
        types come from the registered command. The value of an ATTACHMENT option is a file,
        ``UserFile(filename, data, content_type)`` or a plain tuple: it is put on the CDN and sent as Discord sends
        it, its id as the value and the attachment in ``resolved``.
        """
        world = self.world
        where, in_channel = self._place(user_id, channel_id, guild_id) if guild else (None, world.dm_channel(user_id))
        command = world.registered_command(name, where.id if where else None)
        data = _command_data(command)
        options = dict(options or {})
        attachment_options = [n for n, o in _schema(command).items() if o["type"] == OPTION_ATTACHMENT]
        resolved = {}
        for option in attachment_options:
            if option in options:
                attachment = self.cdn.attach(in_channel, options[option])
                options[option] = attachment["id"]
                resolved[attachment["id"]] = attachment
        data.update(_command_options(command, options))
        if resolved:
            data["resolved"] = {"attachments": resolved}
        return await self._interact(user_id, INTERACTION_COMMAND, name, data, in_channel, locale=locale)

    async def autocomplete(
        self,
        user_id: int,
        name: str,
        options: dict[str, Any],
        *,
        focused: str,
        channel_id: int | None = None,
        guild_id: int | None = None,
    ) -> EmulatedInteraction:
        """Have a guild member type into an option with autocomplete (INTERACTION_CREATE, type 4), in
        ``channel_id`` or the first channel of ``guild_id`` (of the first guild if None).

        As on Discord, the options typed so far are sent (required ones may be missing), the ``focused`` one
        marked ``"focused": true`` with its value as the string typed; the bot answers with callback type 8.
        """
        guild, channel_id = self._place(user_id, channel_id, guild_id)
        command = self.world.registered_command(name, guild.id)
        schema = _schema(command)
        if not schema.get(focused, {}).get("autocomplete"):
            raise ValueError(f"/{name} has no option {focused!r} with autocomplete")
        if unknown := [n for n in options if n not in schema or schema[n]["type"] == OPTION_ATTACHMENT]:
            raise ValueError(f"/{name}: options {unknown} cannot be sent with an autocomplete")
        typed = {**options, focused: str(options.get(focused, ""))}
        values = [
            {"name": n, "type": schema[n]["type"], "value": v} | ({"focused": True} if n == focused else {})
            for n, v in typed.items()
        ]
        data = _command_data(command) | {"options": values}
        return await self._interact(user_id, INTERACTION_AUTOCOMPLETE, name, data, channel_id)

    async def click_button(self, user_id: int, message_id: int, custom_id: str) -> EmulatedInteraction:
        """Have a guild member click a button of a message (INTERACTION_CREATE, type 3) and return the interaction.

        Like a Discord client, only a button the message shows can be clicked.
        """
        message = self.world.messages[message_id]
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
        origin = self.world.interactions[shown_by]
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

    def _place(self, user_id: int, channel_id: int | None, guild_id: int | None) -> tuple[Guild, int]:
        """The guild and channel a member acts in: ``channel_id``'s guild, or the first channel of ``guild_id``
        (of the first guild if None). Refused where no Discord client could act: a guild the user is not a member
        of, one the bot is not in (nothing would reach it) or one in an outage."""
        world = self.world
        if channel_id is None:
            guild = world.guild(guild_id)
            channel_id = guild.channel_id
        elif (found := world.guild_of(channel_id)) is None:
            raise ValueError(f"channel {channel_id} is no guild channel (use dm=True / guild=False for a DM)")
        elif guild_id is not None and found.id != guild_id:
            raise ValueError(f"channel {channel_id} is in guild {found.id}, not {guild_id}")
        else:
            guild = found
        if user_id not in guild.members:
            raise ValueError(f"user {user_id} is not a member of guild {guild.id}")
        if not guild.has_bot:
            raise RuntimeError(f"the bot is not in guild {guild.id}")
        if guild.unavailable:
            raise RuntimeError(f"guild {guild.id} is unavailable (an outage)")
        return guild, channel_id

    async def _interact(
        self,
        user_id: int,
        kind: int,
        name: str,
        data: dict[str, Any],
        channel_id: int,
        *,
        locale: str = "en-US",
        extra: dict[str, Any] | None = None,
    ) -> EmulatedInteraction:
        """Dispatch an INTERACTION_CREATE of a user in a channel: a guild's (as a member of that guild) or their DM
        with the bot."""
        world = self.world
        user = world.users[user_id]
        guild = world.guild_of(channel_id)
        if guild is not None:
            self._place(user_id, channel_id, guild.id)  # a member, the bot there, no outage
        interaction_id = world.snowflake()
        token = INTERACTION_TOKEN_PREFIX + secrets.token_urlsafe(INTERACTION_TOKEN_BYTES)
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(world.application_id),
            "type": kind,
            "data": data,
            "token": token,
            "version": INTERACTION_VERSION,
            "locale": locale,
            "entitlements": [],
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
            **(extra or {}),
        }
        if guild is not None:
            permissions = guild.permissions_of(user_id)
            channel = world.guild_channel(channel_id)
            assert channel is not None
            payload |= {
                "guild_id": str(guild.id),
                "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
                "guild_locale": "en-US",
                "channel_id": str(channel_id),
                "channel": channel.payload(guild.id) | {"permissions": str(permissions)},
                "member": guild.members[user_id].payload(permissions=permissions),
                "app_permissions": str(guild.permissions_of(world.bot.id)),
                "authorizing_integration_owners": {GUILD_INSTALL: str(guild.id)},
                "context": CONTEXT_GUILD,
            }
        else:
            channel_id = world.dm_channel(user_id)
            payload |= {
                "channel_id": str(channel_id),
                "channel": world.dm_channel_payload(user_id),
                "user": user.payload(),
                "app_permissions": str(DM_APP_PERMISSIONS),
                "authorizing_integration_owners": {GUILD_INSTALL: "0"},
                "context": CONTEXT_BOT_DM,
            }
        interaction = EmulatedInteraction(interaction_id, token, name, user_id, payload, time.monotonic())
        world.interactions[interaction_id] = interaction
        world.interactions_by_token[token] = interaction
        session = self.gateway.session_for(guild.id if guild else None)
        if session is None:
            raise RuntimeError("the bot is not connected to the gateway")
        await session.dispatch("INTERACTION_CREATE", payload)
        return interaction


def _command_data(command: dict[str, Any]) -> dict[str, Any]:
    """The ``data`` of an interaction with a registered command, before its options."""
    data: dict[str, Any] = {"id": command["id"], "name": command["name"], "type": COMMAND_CHAT_INPUT}
    if "guild_id" in command:
        data["guild_id"] = command["guild_id"]
    return data


def _schema(command: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A registered command's options, by name."""
    return {option["name"]: option for option in command.get("options", [])}


def _command_options(command: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The ``options`` of a command invocation, typed by the registered command (string, integer, …)."""
    schema = _schema(command)
    missing = [name for name, option in schema.items() if option.get("required") and name not in values]
    unknown = [name for name in values if name not in schema]
    if missing or unknown:
        raise ValueError(f"/{command['name']}: missing options {missing}, unknown options {unknown}")
    options = [{"name": name, "type": schema[name]["type"], "value": value} for name, value in values.items()]
    return {"options": options} if options else {}


def _text_input(component: dict[str, Any]) -> dict[str, Any]:
    """A submitted text input as Discord sends it back: its type and custom id (the value is added)."""
    return {"type": COMPONENT_TEXT_INPUT, "custom_id": component["custom_id"]}
