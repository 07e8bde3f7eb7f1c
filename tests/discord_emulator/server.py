"""The HTTP server on 127.0.0.1: the gateway's WebSocket, the REST routes (every request recorded) and the CDN of the
files users attach to slash commands."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .cdn import CDN_ROUTES, Cdn, is_cdn_path
from .constants import API_PREFIX, MAX_REQUEST_BYTES
from .gateway import RESUME_PATH, Gateway
from .state import RECORD, RecordedRequest, World
from .validation import NOT_FOUND, UNAUTHORIZED

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Route = tuple[str, str, Handler]  # method, path below /api/v10, handler
GATEWAY_PATHS = ("/", RESUME_PATH)
SHUTDOWN_TIMEOUT_SECONDS = 1.0


class Server:
    """Serves the gateway, the REST routes and the CDN; after a stop it starts again on the same port."""

    def __init__(self, world: World, gateway: Gateway, routes: list[Route], cdn: Cdn) -> None:
        self.world = world
        self.gateway = gateway
        self.routes = routes
        self.cdn = cdn
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application(middlewares=[self._record], client_max_size=MAX_REQUEST_BYTES)
        for path in GATEWAY_PATHS:
            app.router.add_get(path, self.gateway.handle)
        for method, path, handler in self.routes:
            app.router.add_route(method, API_PREFIX + path, handler)
        for path in CDN_ROUTES:
            app.router.add_get(path, self.cdn.serve)
        app.router.add_route("*", "/{tail:.*}", self._unknown_route)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.world.port).start()
        self.world.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Close the gateway connections (1001, going away) and the server."""
        await self.gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Record every non-gateway request with its decoded body, and check the bot token where needed."""
        if (request.path in GATEWAY_PATHS or is_cdn_path(request.path)) and request.method == "GET":
            return await handler(request)  # not REST: no token, not recorded
        world = self.world
        route = request.match_info.route
        known = route.handler != self._unknown_route
        body = await self._read_body(request)
        path = request.path.removeprefix(API_PREFIX)
        template = route.resource.canonical.removeprefix(API_PREFIX) if known and route.resource else ""
        record = RecordedRequest(request.method, path, template, dict(request.query), dict(request.headers), body)
        request[RECORD] = record
        world.requests.append(record)
        if not known:
            world.unknown_routes.append(record)
        bot_route = not template.startswith(("/interactions/", "/webhooks/"))
        if known and bot_route and request.headers.get("Authorization") != f"Bot {world.token}":
            response: web.StreamResponse = UNAUTHORIZED.response()
        else:
            response = await handler(request)
        record.status = response.status
        if isinstance(response, web.Response) and response.body:
            record.response = json.loads(response.body)  # type: ignore[arg-type]  # always bytes here
        if delay := world.response_delays.get((request.method, template)):
            await asyncio.sleep(delay)
        return response

    @staticmethod
    async def _read_body(request: web.Request) -> Any:
        """The JSON body; of a multipart request, its `payload_json` part with the uploaded `files[n]` parts
        added under `_uploads`, in order."""
        if request.content_type == "multipart/form-data":
            form = await request.post()
            body = json.loads(str(form["payload_json"]))
            files = sorted((k, v) for k, v in form.items() if k.startswith("files[") and isinstance(v, web.FileField))
            body["_uploads"] = [
                {"filename": f.filename, "content_type": f.content_type, "data": f.file.read()} for _, f in files
            ]
            return body
        raw = await request.read()
        if request.content_type == "application/json" and raw:
            return json.loads(raw)
        return raw.decode(errors="replace") or None

    async def _unknown_route(self, request: web.Request) -> web.Response:
        return NOT_FOUND.response()
