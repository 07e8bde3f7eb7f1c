"""Messages as Discord builds them: created, validated, edited and deleted, with their mentions and attachments, and
announced over the gateway (MESSAGE_CREATE/UPDATE/DELETE) as the bot's session would see them."""

from __future__ import annotations

import mimetypes
import re
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from .constants import (
    COMMAND_CHAT_INPUT,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    FLAG_SUPPRESS_EMBEDS,
    INTENT_DIRECT_MESSAGES,
    INTENT_GUILD_MESSAGES,
    INTENT_MESSAGE_CONTENT,
    INTERACTION_COMMAND,
    MENTION_EVERYONE,
    MESSAGE_CHAT_INPUT_COMMAND,
    MESSAGE_DEFAULT,
    MESSAGE_REPLY,
    REFERENCE_DEFAULT,
    SETTABLE_FLAGS,
)
from .gateway import Gateway
from .models import User
from .state import EmulatedInteraction, World, snowflake_timestamp
from .validation import form_error, json_response, message_errors, no_content

USER_MENTION = re.compile(r"<@!?(\d+)>")
ROLE_MENTION = re.compile(r"<@&(\d+)>")


class Messages:
    """Every message of the world, in its current state (``world.messages``), and what changes them."""

    def __init__(self, world: World, gateway: Gateway) -> None:
        self.world = world
        self.gateway = gateway

    def create(
        self,
        channel_id: int,
        author: User,
        body: dict[str, Any],
        *,
        interaction: EmulatedInteraction | None = None,
        flags: int | None = None,
    ) -> dict[str, Any] | web.Response:
        """Build, validate and store a message as Discord returns it; an error response if Discord would refuse."""
        world = self.world
        message_id = world.snowflake()
        message: dict[str, Any] = {
            "id": str(message_id),
            "type": MESSAGE_DEFAULT,
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
            referenced = world.messages.get(int(reference.get("message_id") or 0))
            if referenced is None or referenced["channel_id"] != str(channel_id):
                if reference.get("fail_if_not_exists", True):
                    return form_error(("message_reference",), "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")
            else:
                message["type"] = MESSAGE_REPLY
                message["message_reference"] = {
                    "type": REFERENCE_DEFAULT,
                    "channel_id": str(channel_id),
                    "message_id": referenced["id"],
                }
                if guild := world.guild_of(channel_id):
                    message["message_reference"]["guild_id"] = str(guild.id)
                message["referenced_message"] = {k: v for k, v in referenced.items() if k != "referenced_message"}
                replied_author = referenced["author"]["id"]
        if interaction is not None:
            message |= self._interaction_fields(interaction)
        if invalid := message_errors(message, body):
            return invalid
        self._set_mentions(message, body.get("allowed_mentions"), replied_author)
        world.messages[message_id] = message
        return message

    async def edit(self, message: dict[str, Any], body: dict[str, Any]) -> web.Response:
        """Edit a message (content, embeds, components, attachments, the suppress-embeds flag); editing a
        "thinking" message resolves it instead of marking it edited. Announces MESSAGE_UPDATE."""
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
        if invalid := message_errors(edited, body):
            return invalid
        replied = (message.get("referenced_message") or {}).get("author", {}).get("id")
        if "content" in body or "allowed_mentions" in body:
            self._set_mentions(edited, body.get("allowed_mentions"), replied)
        self.world.messages[int(message["id"])] = edited
        for interaction in self.world.interactions.values():
            if interaction.original_message_id == int(message["id"]):
                interaction.loading = False
        await self.publish("MESSAGE_UPDATE", edited)
        return json_response(edited)

    async def delete(self, message: dict[str, Any]) -> web.Response:
        """Delete a message and announce MESSAGE_DELETE (not for ephemeral ones)."""
        world = self.world
        del world.messages[int(message["id"])]
        deletion = {"id": message["id"], "channel_id": message["channel_id"]}
        if guild := world.guild_of(int(message["channel_id"])):
            deletion["guild_id"] = str(guild.id)
        if not message["flags"] & FLAG_EPHEMERAL:
            await self._dispatch("MESSAGE_DELETE", deletion, int(message["channel_id"]))
        return no_content()

    async def publish(self, event: str, message: dict[str, Any], *, required: bool = False) -> None:
        """Dispatch MESSAGE_CREATE/UPDATE for a (non-ephemeral) message as the bot's session would see it."""
        if message["flags"] & FLAG_EPHEMERAL:
            return
        world = self.world
        channel_id = int(message["channel_id"])
        data = dict(message)
        guild = world.guild_of(channel_id)
        author_id = int(message["author"]["id"])
        if guild is not None:
            data["guild_id"] = str(guild.id)
            if author_id in guild.members:
                data["member"] = guild.members[author_id].payload(with_user=False)
            data["mentions"] = [
                mention | {"member": guild.members[int(mention["id"])].payload(with_user=False)}
                if int(mention["id"]) in guild.members
                else mention
                for mention in data["mentions"]
            ]
        session = self.gateway.session_for(guild.id if guild else None)
        if session is not None:
            # Without the message content intent, content is withheld unless the bot wrote or is mentioned in
            # the message, or it is a DM.
            visible = (
                session.intents & INTENT_MESSAGE_CONTENT
                or guild is None
                or author_id == world.bot.id
                or any(int(m["id"]) == world.bot.id for m in message["mentions"])
            )
            if not visible:
                data |= {"content": "", "embeds": [], "attachments": [], "components": []}
        await self._dispatch(event, data, channel_id, required=required)

    async def _dispatch(self, event: str, data: dict[str, Any], channel_id: int, *, required: bool = False) -> None:
        guild = self.world.guild_of(channel_id)
        session = self.gateway.session_for(guild.id if guild else None)
        if session is None:
            if required:
                raise RuntimeError("the bot is not connected to the gateway")
            return
        if session.intents & (INTENT_GUILD_MESSAGES if guild else INTENT_DIRECT_MESSAGES):
            await session.dispatch(event, data)

    def _attachment(self, upload: dict[str, Any]) -> dict[str, Any]:
        """An uploaded file as a message attachment; its bytes are kept in ``uploads`` by attachment id."""
        attachment_id = self.world.snowflake()
        self.world.uploads[attachment_id] = upload["data"]
        url = f"{self.world.base_url}/attachments/{attachment_id}/{upload['filename']}"
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
        """What a message answering a slash command carries about it."""
        world = self.world
        user = world.users[interaction.user_id].payload()
        metadata: dict[str, Any] = {
            "id": str(interaction.id),
            "type": INTERACTION_COMMAND,
            "user": user,
            "authorizing_integration_owners": interaction.payload["authorizing_integration_owners"],
            "name": interaction.name,
            "command_type": COMMAND_CHAT_INPUT,
        }
        if interaction.original_message_id is not None:
            metadata["original_response_message_id"] = str(interaction.original_message_id)
        summary = {"id": str(interaction.id), "type": INTERACTION_COMMAND, "name": interaction.name, "user": user}
        return {
            "type": MESSAGE_CHAT_INPUT_COMMAND,
            "webhook_id": str(world.application_id),
            "application_id": str(world.application_id),
            "interaction_metadata": metadata,
            "interaction": summary,
        }

    def _set_mentions(
        self, message: dict[str, Any], allowed: dict[str, Any] | None, replied_author: str | None
    ) -> None:
        """Fill ``mentions``/``mention_roles``/``mention_everyone`` with who is actually pinged.

        Without ``allowed_mentions`` everything in the content pings (and a reply pings the replied-to author);
        with it, only what ``parse``/``users``/``roles``/``replied_user`` allow.
        """
        world = self.world
        guild = world.guild_of(int(message["channel_id"]))
        roles = guild.roles if guild else {}
        content = message["content"]
        parse = set(allowed.get("parse") or []) if allowed is not None else {"users", "roles", "everyone"}
        user_ids = [int(i) for i in dict.fromkeys(USER_MENTION.findall(content)) if int(i) in world.users]
        role_ids = [int(i) for i in dict.fromkeys(ROLE_MENTION.findall(content)) if int(i) in roles]
        if allowed is not None and "users" not in parse:
            user_ids = [i for i in user_ids if str(i) in {str(u) for u in allowed.get("users") or []}]
        if allowed is not None and "roles" not in parse:
            role_ids = [i for i in role_ids if str(i) in {str(r) for r in allowed.get("roles") or []}]
        reply_pings = allowed is None or allowed.get("replied_user", False)
        if replied_author is not None and reply_pings and int(replied_author) not in user_ids:
            user_ids.append(int(replied_author))
        message["mentions"] = [world.users[i].payload() for i in user_ids]
        message["mention_roles"] = [str(i) for i in role_ids]
        author_id = int(message["author"]["id"])
        may_ping_everyone = guild is not None and (  # nobody is pinged with @everyone in a DM
            author_id not in guild.members or bool(guild.permissions_of(author_id) & MENTION_EVERYONE)
        )
        everyone_in_text = "@everyone" in content or "@here" in content
        message["mention_everyone"] = everyone_in_text and "everyone" in parse and may_ping_everyone
