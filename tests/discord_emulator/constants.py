"""Discord's numbers, named: gateway opcodes and close codes, intents, flags, and the types of channels, messages,
interactions, callbacks and components (https://discord.com/developers/docs)."""

from __future__ import annotations

import discord

API_VERSION = 10
API_PREFIX = f"/api/v{API_VERSION}"

# Snowflakes: milliseconds since the Discord epoch, then worker, process and increment bits.
DISCORD_EPOCH_MS = 1_420_070_400_000
SNOWFLAKE_TIMESTAMP_SHIFT = 22
SNOWFLAKE_WORKER_SHIFT = 17
SNOWFLAKE_INCREMENT_MASK = 0xFFF
EMULATOR_WORKER_ID = 1

# Gateway opcodes (https://discord.com/developers/docs/topics/opcodes-and-status-codes#gateway-gateway-opcodes).
OP_DISPATCH = 0
OP_HEARTBEAT = 1
OP_IDENTIFY = 2
OP_PRESENCE_UPDATE = 3
OP_VOICE_STATE_UPDATE = 4
OP_RESUME = 6
OP_RECONNECT = 7
OP_INVALID_SESSION = 9
OP_HELLO = 10
OP_HEARTBEAT_ACK = 11

# WebSocket close codes: the standard "going away" and Discord's gateway close event codes.
CLOSE_GOING_AWAY = 1001
CLOSE_UNKNOWN_ERROR = 4000
CLOSE_UNKNOWN_OPCODE = 4001
CLOSE_AUTHENTICATION_FAILED = 4004
CLOSE_INVALID_SHARD = 4010
CLOSE_INVALID_API_VERSION = 4012
CLOSE_INVALID_INTENTS = 4013
CLOSE_DISALLOWED_INTENTS = 4014

DEFAULT_HEARTBEAT_INTERVAL_MS = 41_250
GATEWAY_COMPRESSION = "zlib-stream"  # the only transport compression the emulator speaks

# Gateway intents (https://discord.com/developers/docs/events/gateway#gateway-intents).
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT

# Application flags: the privileged intents enabled for an unverified app (GATEWAY_*_LIMITED), and the badge.
APPLICATION_GATEWAY_PRESENCE_LIMITED = 1 << 13
APPLICATION_GATEWAY_GUILD_MEMBERS_LIMITED = 1 << 15
APPLICATION_GATEWAY_MESSAGE_CONTENT_LIMITED = 1 << 19
APPLICATION_COMMAND_BADGE = 1 << 23

# Message flags.
FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_HAS_THREAD = 1 << 5  # the message a thread was started on
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12
SETTABLE_FLAGS = FLAG_SUPPRESS_EMBEDS | FLAG_SUPPRESS_NOTIFICATIONS

# Message types, and the type of a message reference.
MESSAGE_DEFAULT = 0
MESSAGE_REPLY = 19
MESSAGE_CHAT_INPUT_COMMAND = 20
REFERENCE_DEFAULT = 0

# Four-digit discriminators, which bots keep.
DISCRIMINATORS = 10_000

# Channel types.
CHANNEL_GUILD_TEXT = 0
CHANNEL_DM = 1
CHANNEL_PUBLIC_THREAD = 11
DEFAULT_AUTO_ARCHIVE_MINUTES = 1440

# Interaction types, the context an interaction happens in, and who installed the app.
INTERACTION_COMMAND = 2
INTERACTION_COMPONENT = 3
INTERACTION_AUTOCOMPLETE = 4
INTERACTION_MODAL_SUBMIT = 5
INTERACTION_VERSION = 1
CONTEXT_GUILD = 0
CONTEXT_BOT_DM = 1
INTEGRATION_GUILD_INSTALL = 0
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024  # what an interaction says the bot may upload
INTERACTION_ACK_SECONDS = 3.0  # the deadline to acknowledge an interaction

# Interaction callback types.
CALLBACK_PONG = 1
CALLBACK_CHANNEL_MESSAGE = 4
CALLBACK_DEFERRED_CHANNEL_MESSAGE = 5
CALLBACK_DEFERRED_UPDATE_MESSAGE = 6
CALLBACK_UPDATE_MESSAGE = 7
CALLBACK_AUTOCOMPLETE_RESULT = 8
CALLBACK_MODAL = 9
CALLBACK_PREMIUM_REQUIRED = 10
CALLBACK_LAUNCH_ACTIVITY = 12
CALLBACK_TYPES = (
    CALLBACK_PONG,
    CALLBACK_CHANNEL_MESSAGE,
    CALLBACK_DEFERRED_CHANNEL_MESSAGE,
    CALLBACK_DEFERRED_UPDATE_MESSAGE,
    CALLBACK_UPDATE_MESSAGE,
    CALLBACK_AUTOCOMPLETE_RESULT,
    CALLBACK_MODAL,
    CALLBACK_PREMIUM_REQUIRED,
    CALLBACK_LAUNCH_ACTIVITY,
)

# Component types: action rows, buttons and text inputs.
COMPONENT_ACTION_ROW = 1
COMPONENT_BUTTON = 2
COMPONENT_TEXT_INPUT = 4

# Application command types, and option types (the first two need no description).
COMMAND_CHAT_INPUT = 1
OPTION_SUB_COMMAND = 1
OPTION_SUB_COMMAND_GROUP = 2
OPTION_STRING = 3
OPTION_ATTACHMENT = 11

# Where the CDN serves the files users attach to slash commands (cdn.discordapp.com and media.discordapp.net on
# Discord; the emulator's own server here), and how long their signed URLs stay valid.
CDN_ATTACHMENTS_PATH = "/ephemeral-attachments"
MEDIA_PROXY_PREFIX = "/media"
ATTACHMENT_URL_TTL_SECONDS = 24 * 60 * 60
ATTACHMENT_SIGNATURE_BYTES = 32

# Permissions.
ALL_PERMISSIONS = discord.Permissions.all().value
ADMINISTRATOR = discord.Permissions(administrator=True).value
MANAGE_MESSAGES = discord.Permissions(manage_messages=True).value
MENTION_EVERYONE = discord.Permissions(mention_everyone=True).value
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

# What the emulated guild and the gateway's session start limit say about themselves.
GUILD_AFK_TIMEOUT_SECONDS = 300
GUILD_MAX_MEMBERS = 500_000
GUILD_MAX_VIDEO_CHANNEL_USERS = 25
SESSION_START_TOTAL = 1000
SESSION_START_RESET_AFTER_MS = 4 * 60 * 60 * 1000
SESSION_MAX_CONCURRENCY = 1

MAX_REQUEST_BYTES = 25 * 1024 * 1024  # the largest request body (uploads included) the server reads
