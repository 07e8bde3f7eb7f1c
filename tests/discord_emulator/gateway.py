"""The gateway: WebSocket connections with zlib-stream compression, IDENTIFY and RESUME, sessions per shard, and the
dispatch of events to the session that receives them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import zlib
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from .constants import (
    API_VERSION,
    CLOSE_AUTHENTICATION_FAILED,
    CLOSE_DISALLOWED_INTENTS,
    CLOSE_GOING_AWAY,
    CLOSE_INVALID_API_VERSION,
    CLOSE_INVALID_INTENTS,
    CLOSE_INVALID_SHARD,
    CLOSE_UNKNOWN_ERROR,
    CLOSE_UNKNOWN_OPCODE,
    GATEWAY_COMPRESSION,
    INTENT_GUILDS,
    OP_DISPATCH,
    OP_HEARTBEAT,
    OP_HEARTBEAT_ACK,
    OP_HELLO,
    OP_IDENTIFY,
    OP_INVALID_SESSION,
    OP_PRESENCE_UPDATE,
    OP_RECONNECT,
    OP_RESUME,
    OP_VOICE_STATE_UPDATE,
    PRIVILEGED_INTENTS,
    SNOWFLAKE_TIMESTAMP_SHIFT,
)
from .state import World

TRACE = ['["gateway-emulator",{"micros":0.0}]']
NO_SHARDING = (0, 1)  # shard 0 of 1, when IDENTIFY names no shard
SESSION_ID_BYTES = 16
RESUME_PATH = "/resume"  # READY's resume_gateway_url, to tell resumes apart


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
        self._zlib = zlib.compressobj() if query.get("compress") == GATEWAY_COMPRESSION else None
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

    async def send_op(self, op: int, data: Any = None) -> None:
        """Send a payload that is not a DISPATCH (no sequence number, no event name)."""
        await self.send({"op": op, "d": data, "s": None, "t": None})

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
        frame = {"op": OP_DISPATCH, "t": event, "s": self.seq, "d": data}
        self.sent.append(frame)
        if self.connection is not None:
            await self.connection.send(frame)

    def owns(self, guild_id: int | None) -> bool:
        """Whether the session's shard receives a guild's events (DMs go to shard 0)."""
        shard_id, shard_count = self.shard
        return (0 if guild_id is None else (guild_id >> SNOWFLAKE_TIMESTAMP_SHIFT) % shard_count) == shard_id


class Gateway:
    """Serves the gateway WebSocket and keeps the sessions, one per shard the client identified."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.connections: list[GatewayConnection] = []
        self.sessions: dict[str, GatewaySession] = {}

    def session_for(self, guild_id: int | None) -> GatewaySession | None:
        """The newest ready session whose shard receives the guild's events (DMs go to shard 0)."""
        sessions = [s for s in self.sessions.values() if s.ready and s.owns(guild_id)]
        return sessions[-1] if sessions else None

    def dispatched(self, event: str, shard: int | None = None) -> list[dict[str, Any]]:
        """The ``d`` of every DISPATCH of ``event`` sent, over all sessions (or those of shard ``shard``)."""
        sessions = [s for s in self.sessions.values() if shard is None or s.shard[0] == shard]
        return [f["d"] for s in sessions for f in s.sent if f["t"] == event]

    def received(self, op: int | None = None) -> list[dict[str, Any]]:
        """Every payload the client sent over the gateway (optionally only opcode ``op``)."""
        return [p for c in self.connections for p in c.received if op is None or p.get("op") == op]

    async def force_reconnect(self) -> None:
        """Send op 7 RECONNECT on every live connection: discord.py reconnects and RESUMEs."""
        for session in list(self.sessions.values()):
            if session.connection is not None:
                await session.connection.send_op(OP_RECONNECT)

    async def close(self) -> None:
        """Close every connection (1001, going away)."""
        for connection in self.connections:
            await connection.close(CLOSE_GOING_AWAY)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """One WebSocket connection: check its query, say HELLO, then answer its payloads until it closes."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        connection = GatewayConnection(ws, request.path, dict(request.query))
        self.connections.append(connection)
        query = connection.query
        if query.get("v") != str(API_VERSION) or query.get("encoding") != "json":
            connection.error = f"unsupported gateway query {query} (only v={API_VERSION}, encoding=json)"
            await connection.close(CLOSE_INVALID_API_VERSION, "Invalid API version")
            return ws
        if query.get("compress") not in (None, GATEWAY_COMPRESSION):
            connection.error = f"unsupported transport compression {query['compress']!r} (only {GATEWAY_COMPRESSION})"
            await connection.close(CLOSE_UNKNOWN_ERROR, "Unknown error")
            return ws
        await connection.send_op(OP_HELLO, {"heartbeat_interval": self.world.heartbeat_interval_ms, "_trace": TRACE})
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    await self._on_payload(connection, json.loads(message.data))
        finally:
            if connection.session is not None and connection.session.connection is connection:
                connection.session.connection = None
        return ws

    async def _on_payload(self, connection: GatewayConnection, payload: dict[str, Any]) -> None:
        connection.received.append(payload)
        op, data = payload.get("op"), payload.get("d")
        if op == OP_HEARTBEAT:
            await connection.send_op(OP_HEARTBEAT_ACK)
        elif op == OP_IDENTIFY:
            await self._identify(connection, data)
        elif op == OP_RESUME:
            await self._resume(connection, data)
        elif op not in (OP_PRESENCE_UPDATE, OP_VOICE_STATE_UPDATE):  # these are only recorded
            await connection.close(CLOSE_UNKNOWN_OPCODE, "Unknown opcode.")

    async def _identify(self, connection: GatewayConnection, data: dict[str, Any]) -> None:
        world = self.world
        if data.get("token") != world.token:
            await connection.close(CLOSE_AUTHENTICATION_FAILED, "Authentication failed.")
            return
        intents = data.get("intents")
        if not isinstance(intents, int):
            await connection.close(CLOSE_INVALID_INTENTS, "Invalid intent(s).")
            return
        if intents & PRIVILEGED_INTENTS & ~world.allowed_privileged_intents:
            await connection.close(CLOSE_DISALLOWED_INTENTS, "Disallowed intent(s).")
            return
        shard_id, shard_count = data.get("shard") or NO_SHARDING
        if not 0 <= shard_id < shard_count:
            await connection.close(CLOSE_INVALID_SHARD, "Invalid shard.")
            return
        session = GatewaySession(secrets.token_hex(SESSION_ID_BYTES), intents, (shard_id, shard_count), connection)
        connection.session = session
        self.sessions[session.id] = session
        # Every guild of the shard is announced unavailable in READY, then one GUILD_CREATE each (not while in an
        # outage: Discord sends it once the guild is back).
        guilds = [guild for guild in world.guilds.values() if guild.has_bot and session.owns(guild.id)]
        ready: dict[str, Any] = {
            "v": API_VERSION,
            "user": world.current_user_payload(),
            "guilds": [{"id": str(guild.id), "unavailable": True} for guild in guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": world.gateway_url + RESUME_PATH,
            "application": {"id": str(world.application_id), "flags": world.application_flags()},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "user_settings": {},
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["emulated"],
            "auth": {},
            "_trace": TRACE,
        }
        if "shard" in data:
            ready["shard"] = [shard_id, shard_count]
        await session.dispatch("READY", ready)
        if intents & INTENT_GUILDS:
            for guild in guilds:
                if not guild.unavailable:
                    await session.dispatch("GUILD_CREATE", world.guild_create_payload(guild, intents))
        session.ready = True

    async def _resume(self, connection: GatewayConnection, data: dict[str, Any]) -> None:
        session = self.sessions.get(data.get("session_id", ""))
        if session is None or data.get("token") != self.world.token:
            await connection.send_op(OP_INVALID_SESSION, False)  # not resumable
            return
        if session.connection is not None and session.connection is not connection:
            await session.connection.close(CLOSE_UNKNOWN_ERROR, "Session resumed elsewhere")
        session.connection = connection
        connection.session = session
        missed = [frame for frame in session.sent if frame["s"] > (data.get("seq") or 0)]
        for frame in missed:
            await connection.send(frame)
        await session.dispatch("RESUMED", {"_trace": TRACE})
