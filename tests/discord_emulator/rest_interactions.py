"""The REST routes of interactions: the callback (with Discord's 3-second deadline; autocomplete answered with
choices only), follow-ups, and fetching, editing and deleting an interaction's messages through its webhook
token."""

from __future__ import annotations

import time
from http import HTTPStatus
from typing import Any

from aiohttp import web

from .constants import (
    CALLBACK_AUTOCOMPLETE_RESULT,
    CALLBACK_CHANNEL_MESSAGE,
    CALLBACK_DEFERRED_CHANNEL_MESSAGE,
    CALLBACK_MODAL,
    CALLBACK_TYPES,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    INTERACTION_AUTOCOMPLETE,
    SETTABLE_FLAGS,
)
from .messages import Messages
from .state import EmulatedInteraction, World, recorded
from .validation import (
    ALREADY_ACKNOWLEDGED,
    UNKNOWN_INTERACTION,
    UNKNOWN_MESSAGE,
    UNKNOWN_WEBHOOK,
    autocomplete_errors,
    form_error,
    json_response,
    modal_errors,
    no_content,
)

TRUE_QUERY_VALUES = ("1", "true", "True")  # how a client may spell a true boolean in a query string


class InteractionRoutes:
    """How the bot answers interactions: one callback, then follow-ups and edits with the interaction's token."""

    def __init__(self, world: World, messages: Messages) -> None:
        self.world = world
        self.messages = messages

    async def callback(self, request: web.Request) -> web.Response:
        world = self.world
        interaction = world.interactions.get(int(request.match_info["interaction_id"]))
        if interaction is None or interaction.token != request.match_info["token"]:
            return UNKNOWN_INTERACTION.response()
        recorded(request).interaction_id = interaction.id
        if interaction.response_type is not None:
            return ALREADY_ACKNOWLEDGED.response()
        late = time.monotonic() - interaction.created
        if world.interaction_ack_timeout is not None and late > world.interaction_ack_timeout:
            return UNKNOWN_INTERACTION.response()
        body = recorded(request).body or {}
        kind, data = body.get("type"), body.get("data") or {}
        message: dict[str, Any] | None = None
        if (kind == CALLBACK_AUTOCOMPLETE_RESULT) != (interaction.payload["type"] == INTERACTION_AUTOCOMPLETE):
            # An autocomplete is answered with choices and nothing else; choices answer nothing else.
            return form_error(("type",), "INTERACTION_RESPONSE_TYPE_INVALID", "Invalid interaction response type")
        if kind == CALLBACK_AUTOCOMPLETE_RESULT:
            if invalid := autocomplete_errors(data):
                return invalid
            interaction.choices = data["choices"]
        elif kind == CALLBACK_CHANNEL_MESSAGE:
            created = self._interaction_message(interaction, data)
            if isinstance(created, web.Response):
                return created
            message = created
        elif kind == CALLBACK_DEFERRED_CHANNEL_MESSAGE:  # the "Bot is thinking..." message
            loading = {"content": "", "allow_empty": True}
            flags = FLAG_LOADING | (data.get("flags", 0) & FLAG_EPHEMERAL)
            created = self.messages.create(
                int(interaction.payload["channel_id"]),
                world.bot,
                loading,
                interaction=interaction,
                flags=flags,
            )
            assert not isinstance(created, web.Response)
            message, interaction.loading = created, True
        elif kind == CALLBACK_MODAL:
            if invalid := modal_errors(data):
                return invalid
            interaction.modal = data
        elif kind not in CALLBACK_TYPES:
            choices = ", ".join(str(choice) for choice in CALLBACK_TYPES)
            return form_error(("type",), "BASE_TYPE_CHOICES", f"Value must be one of {{{choices}}}.")
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
            await self.messages.publish("MESSAGE_CREATE", message)
        return json_response(answer) if request.query.get("with_response") in TRUE_QUERY_VALUES else no_content()

    async def followup(self, request: web.Request) -> web.Response:
        """Create a follow-up message; the first one after a defer resolves the "thinking" message instead."""
        interaction = self._webhook_interaction(request)
        if interaction is None or interaction.response_type is None:
            return UNKNOWN_WEBHOOK.response()
        body = recorded(request).body or {}
        if interaction.loading and interaction.original_message_id in self.world.messages:
            # "If you send a followup without resolving the loading state, we interpret your followup as you
            # resolving the loading state": same message, its ephemerality fixed by the defer.
            response = await self.messages.edit(self.world.messages[interaction.original_message_id], body)
        else:
            message = self._interaction_message(interaction, body)
            if isinstance(message, web.Response):
                return message
            interaction.followup_message_ids.append(int(message["id"]))
            await self.messages.publish("MESSAGE_CREATE", message)
            response = json_response(message)
        if request.query.get("wait") in TRUE_QUERY_VALUES or response.status >= HTTPStatus.MULTIPLE_CHOICES:
            return response  # errors are answered whether the client waits or not
        return no_content()

    async def webhook_message(self, request: web.Request) -> web.Response:
        """GET/PATCH/DELETE of an interaction's original response (``@original``) or of a follow-up."""
        interaction = self._webhook_interaction(request)
        if interaction is None:
            return UNKNOWN_WEBHOOK.response()
        wanted = request.match_info["message_id"]
        message_id = interaction.original_message_id if wanted == "@original" else int(wanted)
        owned = {interaction.original_message_id, *interaction.followup_message_ids}
        message = self.world.messages.get(message_id) if message_id in owned else None  # type: ignore[arg-type]
        if message is None:
            return UNKNOWN_MESSAGE.response()
        if request.method == "GET":
            return json_response(message)
        if request.method == "DELETE":
            return await self.messages.delete(message)
        return await self.messages.edit(message, recorded(request).body or {})

    def _interaction_message(
        self, interaction: EmulatedInteraction, body: dict[str, Any]
    ) -> dict[str, Any] | web.Response:
        """A message the bot sends in answer to an interaction, in its channel, ephemeral if the body says so."""
        flags = body.get("flags", 0) & (SETTABLE_FLAGS | FLAG_EPHEMERAL)
        channel_id = int(interaction.payload["channel_id"])
        return self.messages.create(channel_id, self.world.bot, body, interaction=interaction, flags=flags)

    def _webhook_interaction(self, request: web.Request) -> EmulatedInteraction | None:
        interaction = self.world.interactions_by_token.get(request.match_info["token"])
        if interaction is None or int(request.match_info["application_id"]) != self.world.application_id:
            return None
        recorded(request).interaction_id = interaction.id
        return interaction
