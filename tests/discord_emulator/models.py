"""Discord's objects as the emulator keeps them - users, roles, members, channels, threads and guilds - and their
JSON payloads, GUILD_CREATE's included."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .constants import (
    ADMINISTRATOR,
    ALL_PERMISSIONS,
    CHANNEL_GUILD_TEXT,
    CHANNEL_PUBLIC_THREAD,
    DEFAULT_AUTO_ARCHIVE_MINUTES,
    DISCRIMINATORS,
    GUILD_AFK_TIMEOUT_SECONDS,
    GUILD_MAX_MEMBERS,
    GUILD_MAX_VIDEO_CHANNEL_USERS,
)


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
class Guild:
    """A guild: its roles (@everyone has the guild's id), text channels and members - the bot among them while it is
    in the guild, with its managed role - and whether an outage makes it unavailable."""

    id: int
    name: str
    owner_id: int
    bot_id: int
    bot_permissions: int  # what the bot's managed role grants, each time the bot joins
    roles: dict[int, Role] = field(default_factory=dict)
    channels: dict[int, Channel] = field(default_factory=dict)
    members: dict[int, Member] = field(default_factory=dict)
    admin_role_id: int = 0  # the "Administrator" role that ``add_member(admin=True)`` gives
    bot_role_id: int | None = None  # the bot's managed role, while the bot is in the guild
    unavailable: bool = False  # in an outage: announced with GUILD_DELETE ``"unavailable": true``

    @property
    def has_bot(self) -> bool:
        """Whether the bot is a member (it was not removed and did not leave)."""
        return self.bot_id in self.members

    @property
    def channel_id(self) -> int:
        """The first text channel: the default for messages and slash commands in this guild."""
        if not self.channels:
            raise LookupError(f"guild {self.id} has no channel")
        return next(iter(self.channels))

    def role_id(self, role: int | str) -> int:
        """A role's id, from its id or its name."""
        if isinstance(role, int):
            return role
        for role_id, known in self.roles.items():
            if known.name == role:
                return role_id
        raise LookupError(f"guild {self.id} has no role {role!r}")

    def permissions_of(self, user_id: int) -> int:
        """A member's permissions as Discord computes them (no channel overwrites exist here)."""
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        value = self.roles[self.id].permissions
        for role_id in self.members[user_id].role_ids:
            value |= self.roles[role_id].permissions
        return ALL_PERMISSIONS if value & ADMINISTRATOR else value

    def partial_payload(self) -> dict[str, Any]:
        """The guild as ``GET /users/@me/guilds`` lists it for the bot."""
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "banner": None,
            "owner": False,
            "permissions": str(self.permissions_of(self.bot_id)),
            "features": [],
        }

    def create_payload(self, threads: list[Thread], *, all_members: bool, joined: bool) -> dict[str, Any]:
        """GUILD_CREATE: the guild with its roles, channels, the given threads, and all members or only the bot.

        ``unavailable`` is false when a guild of READY (or one back from an outage) becomes available, and absent
        when the bot has just joined the guild (how discord.py tells ``on_guild_join`` from ``on_guild_available``).
        """
        members = self.members.values() if all_members else [self.members[self.bot_id]]
        data: dict[str, Any] = {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": GUILD_AFK_TIMEOUT_SECONDS,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "system_channel_id": str(self.channel_id) if self.channels else None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "features": [],
            "roles": [role.payload() for role in self.roles.values()],
            "emojis": [],
            "stickers": [],
            "max_members": GUILD_MAX_MEMBERS,
            "max_video_channel_users": GUILD_MAX_VIDEO_CHANNEL_USERS,
            "vanity_url_code": None,
            "application_id": None,
            # Fields only sent in GUILD_CREATE:
            "joined_at": self.members[self.bot_id].joined_at,
            "large": False,
            "member_count": len(self.members),
            "members": [member.payload() for member in members],
            "channels": [channel.payload(self.id) for channel in self.channels.values()],
            "threads": [thread.payload(self.id) for thread in threads],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }
        if not joined:
            data["unavailable"] = False
        return data
