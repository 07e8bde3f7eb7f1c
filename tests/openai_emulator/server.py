"""The model server: an aiohttp application on 127.0.0.1 serving ``POST /v1/chat/completions`` and
``GET /v1/models``, answering with what the test scripted, injecting the faults it asked for and recording every
request."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Self, TypeVar

from aiohttp import web

from . import api

# What the "model" answers: a text (streamed as word pieces), the exact pieces to stream, or a function of the
# request's JSON body returning either.
ReplyText = str | Sequence[str]
Reply = ReplyText | Callable[[dict[str, Any]], ReplyText]
T = TypeVar("T")

CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"
DEFAULT_MODEL = "local-model"
DEFAULT_REPLY = "This is the emulated model's answer."
MASKED = "Bearer ***"
MAX_REQUEST_BYTES = 16 * 1024 * 1024
SHUTDOWN_TIMEOUT_SECONDS = 0.5
POLL_SECONDS = 0.005
WAIT_SECONDS = 5.0
NO_ANSWER = 499  # returned by a handler that sent nothing (connection closed, client gone): never reaches a client


@dataclass
class Fault:
    """A fault queued for the next chat completion that passes authentication and validation."""

    kind: Literal["fail", "rate_limit", "hang", "drop", "stream_error"]
    status: int = 500
    body: dict[str, Any] | str | None = None
    retry_after: int = 0
    seconds: float = 0.0
    after_chunks: int = 0
    message: str = ""


@dataclass
class RecordedRequest:
    """One request as the server received it, and what it answered.

    ``headers`` has the ``Authorization`` value masked (``Bearer ***``); :meth:`has_bearer` checks it. ``body`` is
    the parsed JSON (the raw text if it was not JSON). ``events`` are the ``data:`` payloads of a streamed answer,
    as sent; ``reply`` the text the model answered (what was sent of it); ``fault`` the fault injected, if any;
    ``client_disconnected`` whether the client went away before the answer was complete. ``status`` stays 0 when
    no status line was sent (a hang the client gave up on, a connection dropped before any answer)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    received: float  # time.monotonic()
    status: int = 0
    response: Any = None
    events: list[str] = field(default_factory=list)
    reply: str | None = None
    finish_reason: str | None = None
    fault: str | None = None
    client_disconnected: bool = False
    finished: bool = False  # the server is done with it (answered, broke off, or saw the client leave)
    _authorization: str | None = field(default=None, repr=False)

    def has_bearer(self, key: str) -> bool:
        """Whether the request carried ``Authorization: Bearer <key>``."""
        return self._authorization == f"Bearer {key}"

    @property
    def has_authorization(self) -> bool:
        """Whether the request carried an ``Authorization`` header at all."""
        return self._authorization is not None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300 and not self.client_disconnected

    @property
    def streamed(self) -> bool:
        return isinstance(self.body, dict) and self.body.get("stream") is True

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The request's ``messages`` ([] if the body had none)."""
        messages = self.body.get("messages") if isinstance(self.body, dict) else None
        return messages if isinstance(messages, list) else []

    @property
    def chunks(self) -> list[dict[str, Any]]:
        """The streamed events decoded (``[DONE]`` left out)."""
        return [json.loads(e) for e in self.events if e != api.DONE]


RECORD = web.RequestKey("record", RecordedRequest)
IS_JSON = web.RequestKey("is_json", bool)  # whether the body parsed as JSON


class ModelServer:
    """An emulated OpenAI-compatible model server (OpenAI itself, or Ollama, llama.cpp's ``llama-server`` or vLLM
    serving their ``/v1`` endpoints) on a free port of 127.0.0.1.

    ``base_url`` is ``http://127.0.0.1:PORT/v1``: like the OpenAI SDK's ``base_url``, a client's configured URL
    includes ``/v1`` and the client appends ``/chat/completions``. Only the ``/v1`` paths are served: anything
    else answers OpenAI's 404 ``Invalid URL (…)`` (and is recorded), so a client that drops or doubles the
    ``/v1`` fails as it would against OpenAI, vLLM or Ollama.

    ``models``: the models served (the first is :attr:`model`); ``api_key``: if set, every request must carry
    ``Authorization: Bearer <api_key>`` (401 otherwise), if None any or no ``Authorization`` is accepted, as by a
    local server started without a key; ``reply``: the answer when nothing is scripted; ``first_token_delay``:
    seconds before the answer starts (the prompt being read), ``chunk_delay``: seconds before each further piece
    (a non-streaming answer waits for all of them). The two delays may be changed at any time."""

    def __init__(
        self,
        *,
        models: Sequence[str] = (DEFAULT_MODEL,),
        api_key: str | None = None,
        reply: Reply = DEFAULT_REPLY,
        first_token_delay: float = 0.0,
        chunk_delay: float = 0.0,
    ) -> None:
        if not models:
            raise ValueError("a model server serves at least one model")
        self.models = list(models)
        self.api_key = api_key
        self.default_reply = reply
        self.first_token_delay = first_token_delay
        self.chunk_delay = chunk_delay
        self.requests: list[RecordedRequest] = []
        self.port = 0
        self._replies: deque[Reply] = deque()
        self._faults: deque[Fault] = deque()
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self._ids = itertools.count(1)

    # ----------------------------------------------------------------------------------------------- lifecycle

    @property
    def model(self) -> str:
        """The first model served: the one a client should ask for."""
        return self.models[0]

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT``, without ``/v1``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: the URL a client is configured with (it appends ``/chat/completions``)."""
        return f"{self.root_url}/v1"

    @property
    def chat_url(self) -> str:
        """The full URL of the chat-completions endpoint."""
        return f"{self.root_url}{CHAT_PATH}"

    async def start(self) -> None:
        """Serve on a free port of 127.0.0.1 (after a stop, on the same port again)."""
        self._closing = asyncio.Event()
        app = web.Application(middlewares=[self._record], client_max_size=MAX_REQUEST_BYTES)
        app.router.add_post(CHAT_PATH, self._chat)
        app.router.add_get(MODELS_PATH, self._models)
        app.router.add_route("*", "/{tail:.*}", self._unknown_route)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """End the hangs still waiting and close the server."""
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ----------------------------------------------------------------------------------------------- scripting

    def script(self, *replies: Reply) -> None:
        """Queue what the model answers to the next chat completions, one each, in order: a text (streamed as word
        pieces, each with the whitespace before it), a sequence of the exact pieces to stream, or a function of the
        request's JSON body returning either. When the queue is empty, the server's ``reply`` answers."""
        self._replies.extend(replies)

    @property
    def pending_replies(self) -> int:
        """Scripted replies not yet used."""
        return len(self._replies)

    def fail_next(self, status: int = 500, body: dict[str, Any] | str | None = None, *, times: int = 1) -> None:
        """Answer the next ``times`` chat completions with ``status`` and ``body`` (a JSON object, or a text sent
        as ``text/plain``, like a proxy's error page); by default OpenAI's ``server_error`` body for the status."""
        self._queue(Fault("fail", status=status, body=body), times)

    def rate_limit_next(self, retry_after: int = 2, *, times: int = 1) -> None:
        """Answer the next ``times`` chat completions with 429, a ``Retry-After: <retry_after>`` header (seconds)
        and OpenAI's ``rate_limit_exceeded`` body."""
        self._queue(Fault("rate_limit", status=429, retry_after=retry_after), times)

    def hang_next(self, seconds: float, *, times: int = 1) -> None:
        """Accept the next ``times`` chat completions and answer nothing (not even the status line) for
        ``seconds``, then answer as usual if the client is still there. Ends early when the server stops."""
        self._queue(Fault("hang", seconds=seconds), times)

    def drop_stream_after(self, n_chunks: int, *, times: int = 1) -> None:
        """For the next ``times`` chat completions, send the status, the headers and ``n_chunks`` events (the
        role chunk is the first), then close the connection: no finish chunk, no ``[DONE]``, an unterminated
        chunked body. A non-streaming request gets the connection closed with no answer at all."""
        self._queue(Fault("drop", after_chunks=n_chunks), times)

    def error_in_stream_after(self, n_chunks: int, message: str = "Generation failed.", *, times: int = 1) -> None:
        """For the next ``times`` streaming chat completions, send ``n_chunks`` events, then the error event
        ``data: {"error": {...}}`` and ``data: [DONE]``: how vLLM, SGLang and Ollama report a failure once the 200
        is sent. A non-streaming request gets a 500 with that message."""
        self._queue(Fault("stream_error", after_chunks=n_chunks, message=message), times)

    def _queue(self, fault: Fault, times: int) -> None:
        self._faults.extend(fault for _ in range(times))

    # ----------------------------------------------------------------------------------------------- inspection

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The ``POST /v1/chat/completions`` received, in order (rejected ones included)."""
        return [r for r in self.requests if r.method == "POST" and r.path == CHAT_PATH]

    @property
    def failed_requests(self) -> list[RecordedRequest]:
        """Requests answered with an error status."""
        return [r for r in self.requests if r.status >= 400]

    async def wait_for(self, predicate: Callable[[], T], timeout: float = WAIT_SECONDS) -> T:
        """Poll until ``predicate()`` is truthy and return its value; TimeoutError (with the requests) otherwise."""
        deadline = time.monotonic() + timeout
        while not (value := predicate()):
            if time.monotonic() > deadline:
                seen = [f"{r.method} {r.path} -> {r.status}" for r in self.requests[-10:]]
                raise TimeoutError(f"condition not met within {timeout}s; last requests: {seen}")
            await asyncio.sleep(POLL_SECONDS)
        return value

    async def wait_for_requests(self, count: int, timeout: float = WAIT_SECONDS) -> list[RecordedRequest]:
        """Wait until ``count`` chat completions were answered (or abandoned); return the first ``count``."""

        def done() -> list[RecordedRequest]:
            finished = [r for r in self.chat_requests if r.finished]
            return finished[:count] if len(finished) >= count else []

        return await self.wait_for(done, timeout)

    # ----------------------------------------------------------------------------------------------- HTTP

    def _request_id(self) -> str:
        return f"req_{next(self._ids):06d}{secrets.token_hex(6)}"

    @web.middleware
    async def _record(self, request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        """Record the request (Authorization masked), check the key, and note the answer."""
        authorization = request.headers.get("Authorization")
        raw = await request.read()
        try:
            body: Any = json.loads(raw)
            request[IS_JSON] = True
        except ValueError:
            body = raw.decode(errors="replace") if raw else None
            request[IS_JSON] = False
        record = RecordedRequest(
            request.method,
            request.path,
            dict(request.query),
            mask(request.headers),
            body,
            time.monotonic(),
            _authorization=authorization,
        )
        self.requests.append(record)
        request[RECORD] = record
        try:
            if request.match_info.route.handler != self._unknown_route:  # a wrong URL: 404 Invalid URL, key or not
                self._authenticate(authorization)
            response = await handler(request)
        except api.ApiError as error:
            response = error.response(self._request_id())
        if response.status != NO_ANSWER and not record.status:
            record.status = response.status
        if isinstance(response, web.Response) and response.status != NO_ANSWER and response.text is not None:
            try:
                record.response = json.loads(response.text)
            except ValueError:
                record.response = response.text
        record.finished = True
        return response

    def _authenticate(self, authorization: str | None) -> None:
        if self.api_key is None:
            return
        if authorization is None:
            raise api.missing_api_key()
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise api.missing_api_key()
        if token.strip() != self.api_key:
            raise api.incorrect_api_key(token.strip())

    async def _unknown_route(self, request: web.Request) -> web.Response:
        raise api.invalid_url(request.method, request.path)

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(api.models_list(self.models, int(time.time())))

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        record = request[RECORD]
        if not request[IS_JSON]:
            raise api.invalid_json()
        body = api.validate_chat_request(record.body, self.models)
        fault = self._faults.popleft() if self._faults else None
        if fault is not None:
            record.fault = fault.kind
            if fault.kind == "hang":
                await self._hang(request, fault.seconds)
                if record.client_disconnected:
                    return web.Response(status=NO_ANSWER)
                if self._closing.is_set():  # the server stops: the client waiting sees the connection close
                    return await self._drop(request, None)
            elif fault.kind == "fail":
                return self._failure(fault)
            elif fault.kind == "rate_limit":
                raise api.rate_limited(body["model"], fault.retry_after)
            elif fault.kind == "stream_error" and not body.get("stream"):
                raise api.ApiError(500, fault.message, type="server_error")
        pieces, finish = api.apply_limits(self._next_reply(body), body)
        record.reply = "".join(pieces)
        record.finish_reason = finish
        completion_id = f"chatcmpl-{secrets.token_hex(12)}"
        created = int(time.time())
        if fault is not None and fault.kind == "drop" and not body.get("stream"):
            return await self._drop(request, None)
        await self._sleep(self.first_token_delay)
        if body.get("stream"):
            return await self._stream(request, record, api.chunks(completion_id, created, body, pieces, finish), fault)
        await self._sleep(self.chunk_delay * max(len(pieces) - 1, 0))
        if self._gone(request, record):
            return web.Response(status=NO_ANSWER)
        answer = api.completion(completion_id, created, body, pieces, finish)
        return web.json_response(answer, headers={"x-request-id": self._request_id()})

    def _next_reply(self, body: dict[str, Any]) -> list[str]:
        reply = self._replies.popleft() if self._replies else self.default_reply
        if callable(reply):
            reply = reply(body)
        return api.tokens(reply) if isinstance(reply, str) else list(reply)

    def _failure(self, fault: Fault) -> web.Response:
        headers = {"x-request-id": self._request_id()}
        if fault.body is None:
            return web.json_response(api.server_error(fault.status).body(), status=fault.status, headers=headers)
        if isinstance(fault.body, str):
            return web.Response(text=fault.body, status=fault.status, headers=headers)
        return web.json_response(fault.body, status=fault.status, headers=headers)

    async def _stream(
        self, request: web.Request, record: RecordedRequest, events: list[dict[str, Any]], fault: Fault | None
    ) -> web.StreamResponse:
        """Send the events as Server-Sent Events, then ``[DONE]``; or break off as the fault says."""
        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": f"{api.SSE_CONTENT_TYPE}; charset=utf-8",
                "Cache-Control": "no-cache",
                "x-request-id": self._request_id(),
            },
        )
        record.status = 200
        await response.prepare(request)
        cut = fault.after_chunks if fault is not None and fault.kind in ("drop", "stream_error") else None
        for index, event in enumerate(events):
            if index == cut:
                break
            if index > 1:  # the role chunk and the first piece come together: the first token
                await self._sleep(self.chunk_delay)
            if not await self._send(request, record, response, api.compact(event)):
                return response
        if fault is not None and fault.kind == "drop":
            return await self._drop(request, response)
        if fault is not None and fault.kind == "stream_error":
            error = api.compact(api.stream_error(fault.message))
            if not await self._send(request, record, response, error):
                return response
        if await self._send(request, record, response, api.DONE):
            await response.write_eof()
        return response

    async def _send(
        self, request: web.Request, record: RecordedRequest, response: web.StreamResponse, data: str
    ) -> bool:
        """Write one event; False (the client marked gone) if the connection is closed."""
        if self._gone(request, record):
            return False
        try:
            await response.write(api.sse(data))
        except ConnectionError:
            record.client_disconnected = True
            return False
        record.events.append(data)
        return True

    @staticmethod
    async def _drop(request: web.Request, response: web.StreamResponse | None) -> web.StreamResponse:
        """Close the connection where the answer stands (the data already written is flushed first)."""
        if request.transport is not None:
            request.transport.close()
        return response if response is not None else web.Response(status=NO_ANSWER)

    @staticmethod
    def _gone(request: web.Request, record: RecordedRequest) -> bool:
        """Whether the client closed the connection (recorded if so)."""
        if request.transport is None or request.transport.is_closing():
            record.client_disconnected = True
        return record.client_disconnected

    async def _sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a model working), unless the server stops first."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), seconds)

    async def _hang(self, request: web.Request, seconds: float) -> None:
        """Answer nothing for ``seconds``; stop early if the client goes away (recorded) or the server stops."""
        record = request[RECORD]
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self._closing.is_set():
            if self._gone(request, record):
                return
            await asyncio.sleep(min(POLL_SECONDS * 2, max(deadline - time.monotonic(), 0)))


def mask(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` with the Authorization value masked."""
    return {k: (MASKED if k.lower() == "authorization" else v) for k, v in headers.items()}
