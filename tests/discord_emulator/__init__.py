"""A small, faithful emulator of the Discord API (REST v10 and the Gateway) for end-to-end tests of a real bot.

The real discord.py client talks real HTTP and a real WebSocket to an aiohttp server on 127.0.0.1; nothing inside
discord.py is mocked. The emulator plays guilds with text channels, roles and members (the first one, made at
start, is the default of every call; ``add_guild`` invites the bot to more, ``remove_bot`` kicks it out), records
every REST request and every gateway payload it receives, and lets a test play the users: send messages, invoke
slash commands (attaching files, typing into options with autocomplete), click buttons, submit modals, force a
gateway reconnect.

The tests get an emulator from the ``emu`` fixture of conftest.py (``async with DiscordEmulator() as emulator``:
start() and install() on entry, uninstall() and stop() on exit) and start bots with ``run_bot``, which runs
``bot.start(emu.token)`` until the bot is ready and, on teardown, closes it and checks nothing leaked;
test_discord_bot.py wraps it as ``start_bot(**settings)`` for the article bot::

    async def test_a_question(emu: DiscordEmulator, start_bot: StartBot) -> None:
        user = emu.add_member("bob")      # also add_member("ann", admin=True) or roles=(emu.add_role(...),)
        await start_bot(allow_dms=True)   # GET /users/@me, command sync, IDENTIFY, READY, GUILD_CREATE

        message = await emu.send_message(user, "Who?", mention_bot=True)   # also dm=True, channel_id=, reply_to=
        [reply] = await emu.wait_for(lambda: emu.replies_to(message), timeout=30)   # a RecordedRequest
        assert reply.response["type"] == 19 and reply.body["allowed_mentions"]["parse"] == []
        thread = await emu.wait_for(lambda: emu.threads.get(int(reply.response["id"])))
        await emu.send_message(user, "And where?", channel_id=thread.id)

        interaction = await emu.send_slash_command(user, "ask", {"question": "Who?"})
        defer, followup = await emu.wait_for_responses(interaction.id, 2, timeout=60)   # callback, follow-up
        [answer] = emu.interaction_messages(interaction.id)   # the messages in their current state
        assert defer.body["type"] == 5 and not answer["flags"] & FLAG_EPHEMERAL
        # and emu.click_button(user, message_id, custom_id), emu.submit_modal(user, shown_by, values)

        pdf = UserFile("report.pdf", data, "application/pdf")   # or a (filename, data[, content_type]) tuple
        interaction = await emu.send_slash_command(admin, "add", {"file": pdf})   # served by the emulator's CDN
        choices = await emu.autocomplete(admin, "remove", {"document": "rep"}, focused="document")
        assert emu.failed_requests == []

        other = await emu.add_guild("Other")     # the bot is invited: GUILD_CREATE, on_guild_join
        emu.join(user, other)                    # the same user, a member there too (admin=, roles= of that guild)
        carl = emu.add_member("carl", admin=True, guild_id=other)   # an administrator of that guild only
        await emu.send_message(carl, "Who?", guild_id=other)        # or channel_id= of one of its channels
        await emu.send_slash_command(carl, "ask", {"question": "Who?"}, guild_id=other)
        await emu.remove_bot(other)              # kicked: GUILD_DELETE {"id"}, on_guild_remove; guild_outage() too

Every REST request is a :class:`RecordedRequest` in ``emu.requests`` (``body`` as sent, ``response`` as answered);
``emu.messages``, ``emu.threads``, ``emu.interactions`` and ``emu.uploads`` hold what the bot made, and
``emu.dispatched(event)`` / ``emu.gateway_received(op)`` what went over the gateway; ``emu.attachments`` the files
users attached (with how often each was downloaded).

What Discord does and the emulator reproduces: JSON bodies served as exactly ``application/json``; zlib-stream
gateway compression; READY listing the shard's guilds unavailable, then one GUILD_CREATE each; RESUME replaying
missed events then RESUMED; shards, each receiving its guilds' events (DMs on shard 0); roles, channels, members
and their permissions per guild, each interaction and message carrying its channel's guild; the bot joining a guild
(GUILD_CREATE without ``unavailable``), being removed or leaving it (``DELETE /users/@me/guilds/{id}``: 204 and
GUILD_DELETE ``{"id"}``, or 10004 Unknown Guild), an outage (GUILD_DELETE ``"unavailable": true``, then
GUILD_CREATE ``"unavailable": false``); members in GUILD_CREATE only with the presences intent (otherwise only the
bot), message content hidden without the message-content intent unless the bot is mentioned, it is a DM or the bot
wrote it; MESSAGE_CREATE/UPDATE/DELETE echoed for the bot's own (non-ephemeral) messages; the 3-second deadline to
acknowledge an interaction; the first follow-up after a defer resolving the "thinking" message; message, embed
and command limits answered with Discord's error bodies; attachment options sent as an id with the attachment in
``data.resolved.attachments``, downloadable at its signed CDN URL without a token; autocomplete interactions
(type 4, the option being typed ``"focused": true``) answered only with at most 25 choices of 1-100 characters;
``mentions`` of created messages honouring ``allowed_mentions``.

The package: ``state`` (the world: guilds and everything in them, the records), ``models`` (users, roles,
members, channels, threads, guilds and their payloads), ``gateway``, ``guilds`` (the bot joining and leaving guilds,
outages), ``messages`` (building, editing, announcing messages), ``server`` (HTTP, recording),
``rest``/``rest_messages``/``rest_interactions`` (the routes), ``validation`` (limits and error bodies), ``cdn``
(the users' attachments), ``actions`` (the users) and ``constants``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, Self, TypeVar, Unpack

import discord
import yarl

from .actions import Actions
from .cdn import Cdn, UserFile
from .constants import FLAG_EPHEMERAL
from .gateway import Gateway, GatewayConnection, GatewaySession
from .guilds import GuildEvents
from .messages import Messages
from .models import Guild, Thread
from .rest import routes
from .server import Server
from .state import CommandSync, EmulatedInteraction, RecordedRequest, World, WorldOptions

__all__ = [
    "FLAG_EPHEMERAL",
    "CommandSync",
    "DiscordEmulator",
    "EmulatedInteraction",
    "GatewayConnection",
    "GatewaySession",
    "Guild",
    "RecordedRequest",
    "Thread",
    "UserFile",
]

T = TypeVar("T")
POLL_SECONDS = 0.01
WAIT_SECONDS = 5.0  # how long wait_for waits by default
RECENT_REQUESTS = 10  # shown when a wait times out


class DiscordEmulator(World):
    """An emulated Discord: the world of :class:`World` (guilds, their channels, roles and members, the bot user),
    served over REST and the gateway, with the users' actions, the guilds the bot joins and leaves, and what the
    tests wait for and inspect."""

    def __init__(self, **options: Unpack[WorldOptions]) -> None:
        super().__init__(**options)
        self.gateway = Gateway(self)
        messages = Messages(self, self.gateway)
        cdn = Cdn(self)
        guilds = GuildEvents(self, self.gateway)
        self._server = Server(self, self.gateway, routes(self, self.gateway, messages, guilds), cdn)
        self._saved: tuple[str, yarl.URL] | None = None  # what install() replaced in discord.py

        # Playing the users.
        actions = Actions(self, self.gateway, messages, cdn)
        self._actions = actions
        self.send_message = actions.send_message
        self.send_slash_command = actions.send_slash_command
        self.click_button = actions.click_button
        self.submit_modal = actions.submit_modal
        # The bot's guilds, changing while it is connected (or before).
        self.add_guild = guilds.add_guild
        self.add_bot = guilds.add_bot
        self.remove_bot = guilds.remove_bot
        self.guild_outage = guilds.outage
        self.end_guild_outage = guilds.end_outage
        # The gateway, seen from the tests.
        self.force_reconnect = self.gateway.force_reconnect
        self.dispatched = self.gateway.dispatched
        self.gateway_received = self.gateway.received

    @property
    def gateway_connections(self) -> list[GatewayConnection]:
        """Every WebSocket connection to the gateway, in order."""
        return self.gateway.connections

    # ----------------------------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Serve REST and the gateway on a free port of 127.0.0.1 (after a stop, on the same port again)."""
        await self._server.start()

    async def stop(self) -> None:
        """Close the gateway connections (1001, going away) and the server."""
        await self._server.stop()

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

    async def wait_for(self, predicate: Callable[[], T], timeout: float = WAIT_SECONDS) -> T:
        """Poll until ``predicate()`` is truthy and return its value; TimeoutError (with context) otherwise."""
        deadline = time.monotonic() + timeout
        while not (value := predicate()):
            if time.monotonic() > deadline:
                recent = [f"{r.method} {r.path} -> {r.status}" for r in self.requests[-RECENT_REQUESTS:]]
                raise TimeoutError(f"condition not met within {timeout}s; last requests: {recent}")
            await asyncio.sleep(POLL_SECONDS)
        return value

    async def wait_for_responses(
        self, interaction_id: int, count: int, timeout: float = WAIT_SECONDS
    ) -> list[RecordedRequest]:
        """Wait until the bot made ``count`` requests answering an interaction (callback, follow-ups, edits);
        return those first ``count``."""

        def first() -> list[RecordedRequest]:
            made = self.interaction_responses(interaction_id)
            return made[:count] if len(made) >= count else []

        return await self.wait_for(first, timeout)

    async def autocomplete(
        self,
        user_id: int,
        name: str,
        options: dict[str, Any],
        *,
        focused: str,
        channel_id: int | None = None,
        guild_id: int | None = None,
        timeout: float = WAIT_SECONDS,
    ) -> list[dict[str, Any]]:
        """Have a member type into option ``focused`` of ``/name`` (in ``channel_id``, or the first channel of
        ``guild_id``, of the first guild if None) and return the choices the bot answers with
        (``{"name": …, "value": …}``); ValueError with Discord's error body if the answer was refused."""
        interaction = await self._actions.autocomplete(
            user_id, name, options, focused=focused, channel_id=channel_id, guild_id=guild_id
        )
        [answer] = await self.wait_for_responses(interaction.id, 1, timeout)
        if not answer.ok or interaction.choices is None:
            raise ValueError(f"the autocomplete answer was refused ({answer.status}): {answer.response}")
        return interaction.choices

    # ----------------------------------------------------------------------------------------------- inspection

    @property
    def failed_requests(self) -> list[RecordedRequest]:
        """Requests answered with an error status (unknown routes included)."""
        return [r for r in self.requests if r.status >= HTTPStatus.BAD_REQUEST]

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
