"""The bot joining and leaving guilds, and guild outages, announced over the gateway as Discord does: GUILD_CREATE
(without ``unavailable``) when the bot joins a guild, GUILD_DELETE ``{"id"}`` when it is removed or leaves,
GUILD_DELETE ``{"id", "unavailable": true}`` in an outage and GUILD_CREATE (``"unavailable": false``) after it.

Each goes to the ready session of the guild's shard, if the bot is connected, and only with the GUILDS intent; a
bot that connects later learns the guilds from READY.
"""

from __future__ import annotations

from typing import Any

from .constants import BOT_PERMISSIONS, INTENT_GUILDS
from .gateway import Gateway
from .models import Guild
from .state import World


class GuildEvents:
    """Guilds changing for the bot: joined, left (kicked, or leaving itself), unavailable and back."""

    def __init__(self, world: World, gateway: Gateway) -> None:
        self.world = world
        self.gateway = gateway

    async def add_guild(
        self,
        name: str = "Another Guild",
        *,
        channel_names: tuple[str, ...] = ("general",),
        owner_id: int | None = None,
        bot_permissions: int = BOT_PERMISSIONS,
        shard: tuple[int, int] | None = None,
    ) -> int:
        """A new guild the bot is invited to (see ``World.create_guild``): GUILD_CREATE if the bot is connected.
        Returns the guild's id."""
        guild_id = self.world.create_guild(
            name, channel_names=channel_names, owner_id=owner_id, bot_permissions=bot_permissions, shard=shard
        )
        await self._created(guild_id, joined=True)
        return guild_id

    async def add_bot(self, guild_id: int) -> None:
        """The bot is invited again to a guild it was removed from: a new managed role, GUILD_CREATE."""
        self.world.bot_joins(guild_id)
        await self._created(guild_id, joined=True)

    async def remove_bot(self, guild_id: int) -> None:
        """The bot is kicked from a guild (or leaves it): GUILD_DELETE without ``unavailable``; discord.py then
        calls ``on_guild_remove``."""
        self.world.bot_leaves(guild_id)
        await self._dispatch(guild_id, "GUILD_DELETE", {"id": str(guild_id)})

    async def outage(self, guild_id: int) -> None:
        """A guild becomes unavailable: GUILD_DELETE ``"unavailable": true`` (discord.py calls
        ``on_guild_unavailable``, not ``on_guild_remove``); its users can do nothing in it until :meth:`end_outage`."""
        guild = self._bot_guild(guild_id)
        guild.unavailable = True
        await self._dispatch(guild_id, "GUILD_DELETE", {"id": str(guild_id), "unavailable": True})

    async def end_outage(self, guild_id: int) -> None:
        """The guild is back: GUILD_CREATE ``"unavailable": false`` (discord.py calls ``on_guild_available``)."""
        guild = self._bot_guild(guild_id)
        if not guild.unavailable:
            raise ValueError(f"guild {guild_id} is not in an outage")
        guild.unavailable = False
        await self._created(guild_id, joined=False)

    def _bot_guild(self, guild_id: int) -> Guild:
        guild = self.world.guild(guild_id)
        if not guild.has_bot:
            raise LookupError(f"the bot is not in guild {guild_id}")
        return guild

    async def _created(self, guild_id: int, *, joined: bool) -> None:
        session = self.gateway.session_for(guild_id)
        if session is not None and session.intents & INTENT_GUILDS:
            payload = self.world.guild_create_payload(self.world.guild(guild_id), session.intents, joined=joined)
            await session.dispatch("GUILD_CREATE", payload)

    async def _dispatch(self, guild_id: int, event: str, data: dict[str, Any]) -> None:
        session = self.gateway.session_for(guild_id)
        if session is not None and session.intents & INTENT_GUILDS:
            await session.dispatch(event, data)
