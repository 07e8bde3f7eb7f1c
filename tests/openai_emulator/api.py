"""The wire format of the OpenAI chat-completions API, as documented: error bodies, request validation, the
``chat.completion`` object, the ``chat.completion.chunk`` stream events and the "tokens" the emulator counts.

Error bodies are always ``{"error": {"message", "type", "param", "code"}}`` (the four keys present, ``null`` when
unset), with the messages and codes the real API answers (wording taken from its answers as quoted in public code,
for the cases a client can run into: a body that is not JSON, a missing or invalid parameter, an unknown model, a
missing or wrong key, a rate limit, a server error).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from aiohttp import web

JSON_CONTENT_TYPE = "application/json"
SSE_CONTENT_TYPE = "text/event-stream"
DONE = "[DONE]"
SYSTEM_FINGERPRINT = "fp_emulator"
ROLES = ("system", "developer", "user", "assistant", "tool")
MAX_STOP_SEQUENCES = 4
MAX_TEMPERATURE = 2.0
# Every documented top-level parameter of POST /v1/chat/completions: OpenAI refuses any other name with a 400
# ("Unrecognized request argument supplied: …"), which catches a client's misspelt parameter.
KNOWN_PARAMETERS = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "temperature",
        "top_p",
        "n",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "user",
        "seed",
        "response_format",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "functions",
        "function_call",
        "service_tier",
        "store",
        "metadata",
        "modalities",
        "audio",
        "prediction",
        "reasoning_effort",
        "web_search_options",
        "safety_identifier",
        "prompt_cache_key",
        "verbosity",
    }
)
# What the emulator counts as a token: a word with the whitespace before it (or a run of whitespace at the end).
# Real tokenizers cut finer; the counts only need to be consistent (usage, max_tokens) and the pieces to join back
# to the text exactly.
_TOKEN = re.compile(r"\s*\S+|\s+")


@dataclass(eq=False)
class ApiError(Exception):
    """An error answer of the API: HTTP status and the ``{"error": {...}}`` body (plus extra headers)."""

    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self, request_id: str) -> web.Response:
        headers = {"x-request-id": request_id, **self.headers}
        return web.json_response(self.body(), status=self.status, headers=headers)


# ----------------------------------------------------------------------------------------------- the errors


def invalid_json() -> ApiError:
    return ApiError(
        400,
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
        "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you "
        "have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
    )


def missing_api_key() -> ApiError:
    """No ``Authorization: Bearer`` header at all: 401 with ``code`` null, as OpenAI answers it."""
    return ApiError(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer "
        "auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're "
        "accessing the API from your browser and are prompted for a username and password. You can obtain an API "
        "key from https://platform.openai.com/account/api-keys.",
    )


def incorrect_api_key(given: str) -> ApiError:
    """A bearer token that is not the key: 401 ``invalid_api_key``, the key shown masked as OpenAI does."""
    masked = f"{given[:3]}{'*' * max(len(given) - 7, 3)}{given[-4:]}" if len(given) > 8 else "*" * len(given)
    return ApiError(
        401,
        f"Incorrect API key provided: {masked}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        code="invalid_api_key",
    )


def model_not_found(model: str) -> ApiError:
    message = f"The model `{model}` does not exist or you do not have access to it."
    return ApiError(404, message, param="model", code="model_not_found")


def invalid_url(method: str, path: str) -> ApiError:
    """A path the API does not serve (for instance a client that forgot the ``/v1`` of the base URL)."""
    return ApiError(404, f"Invalid URL ({method} {path})")


def rate_limited(model: str, retry_after: int) -> ApiError:
    """429 ``rate_limit_exceeded`` with ``Retry-After`` (seconds) and the ``x-ratelimit-*`` headers OpenAI sends."""
    return ApiError(
        429,
        f"Rate limit reached for {model} in organization org-emulator on requests per min (RPM): Limit 3, Used 3, "
        f"Requested 1. Please try again in {retry_after}s. Visit https://platform.openai.com/account/rate-limits "
        "to learn more.",
        type="requests",
        code="rate_limit_exceeded",
        headers={
            "Retry-After": str(retry_after),
            "x-ratelimit-limit-requests": "3",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": f"{retry_after}s",
        },
    )


def server_error(status: int) -> ApiError:
    """The body of a 5xx: OpenAI's ``server_error`` wording for 500 and 503, the status phrase otherwise."""
    messages = {
        500: "The server had an error while processing your request. Sorry about that!",
        503: "The engine is currently overloaded, please try again later.",
    }
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    return ApiError(status, messages.get(status, phrase), type="server_error")


def stream_error(message: str) -> dict[str, Any]:
    """The event an OpenAI-compatible server (vLLM, SGLang, Ollama) sends when generation fails mid-stream, the
    200 status being already sent: ``data: {"error": {...}}``."""
    return ApiError(500, message, type="server_error").body()


# ----------------------------------------------------------------------------------------------- validation


def _json_type(value: object) -> str:
    """The name OpenAI's messages give a JSON value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "decimal"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _invalid_type(param: str, expected: str, value: object) -> ApiError:
    got = _json_type(value)
    article = "an" if got[0] in "aeiou" else "a"
    return ApiError(
        400,
        f"Invalid type for '{param}': expected {expected}, but got {article} {got} instead.",
        param=param,
        code="invalid_type",
    )


def _missing(param: str) -> ApiError:
    return ApiError(400, f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_content(index: int, message: Mapping[str, Any]) -> None:
    """``content``: a string or an array of text parts; only an assistant message with tool calls may omit it."""
    param = f"messages[{index}].content"
    content = message.get("content")
    if content is None:
        if message["role"] == "assistant" and message.get("tool_calls"):
            return
        raise _missing(param)
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _invalid_type(param, "one of a string or array of objects", content)
    for part_index, part in enumerate(content):
        part_param = f"{param}[{part_index}]"
        if not isinstance(part, dict):
            raise _invalid_type(part_param, "an object", part)
        if part.get("type") == "text" and not isinstance(part.get("text"), str):
            raise _missing(f"{part_param}.text")


def _check_messages(messages: object) -> None:
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list):
        raise _invalid_type("messages", "an array of objects", messages)
    if not messages:
        raise ApiError(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _invalid_type(f"messages[{index}]", "an object", message)
        role = message.get("role")
        if role is None:
            raise _missing(f"messages[{index}].role")
        if role not in ROLES:
            supported = ", ".join(f"'{r}'" for r in ROLES[:-1]) + f", and '{ROLES[-1]}'"
            raise ApiError(
                400,
                f"Invalid value: {json.dumps(role)}. Supported values are: {supported}.",
                param=f"messages[{index}].role",
                code="invalid_value",
            )
        _check_content(index, message)
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            raise _missing(f"messages[{index}].tool_call_id")


def _check_range(body: Mapping[str, Any], name: str, low: float, high: float | None, integer: bool) -> None:
    value = body.get(name)
    if value is None:
        return
    kind = "integer" if integer else "decimal"
    if not _is_number(value) or (integer and not isinstance(value, int)):
        raise _invalid_type(name, "an integer" if integer else "a decimal", value)
    if value < low:
        raise ApiError(
            400,
            f"Invalid '{name}': {kind} below minimum value. Expected a value >= {low:g}, but got {value} instead.",
            param=name,
            code=f"{kind}_below_min_value",
        )
    if high is not None and value > high:
        raise ApiError(
            400,
            f"Invalid '{name}': {kind} above maximum value. Expected a value <= {high:g}, but got {value} instead.",
            param=name,
            code=f"{kind}_above_max_value",
        )


def _check_stop(stop: object) -> None:
    if stop is None or isinstance(stop, str):
        return
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise _invalid_type("stop", "one of a string or array of strings", stop)
    if len(stop) > MAX_STOP_SEQUENCES:
        raise ApiError(
            400,
            f"Invalid 'stop': array too long. Expected an array with maximum length {MAX_STOP_SEQUENCES}, but got an "
            f"array with length {len(stop)} instead.",
            param="stop",
            code="array_above_max_length",
        )


def _check_streaming(body: Mapping[str, Any]) -> None:
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _invalid_type("stream", "a boolean", stream)
    options = body.get("stream_options")
    if options is None:
        return
    if not stream:
        raise ApiError(
            400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.", param="stream_options"
        )
    if not isinstance(options, dict):
        raise _invalid_type("stream_options", "an object", options)
    include_usage = options.get("include_usage")
    if include_usage is not None and not isinstance(include_usage, bool):
        raise _invalid_type("stream_options.include_usage", "a boolean", include_usage)


def validate_chat_request(body: object, models: Sequence[str]) -> dict[str, Any]:
    """The request body if OpenAI would accept it for one of ``models``; raises the :class:`ApiError` it would
    answer otherwise (the parameters first, then whether the model exists)."""
    if not isinstance(body, dict):
        raise _invalid_type("body", "an object", body)
    for name in body:
        if name not in KNOWN_PARAMETERS:
            raise ApiError(400, f"Unrecognized request argument supplied: {name}")
    model = body.get("model")
    if model is None:
        raise ApiError(400, "you must provide a model parameter")
    if not isinstance(model, str):
        raise _invalid_type("model", "a string", model)
    _check_messages(body.get("messages"))
    _check_streaming(body)
    _check_range(body, "temperature", 0, MAX_TEMPERATURE, integer=False)
    _check_range(body, "top_p", 0, 1, integer=False)
    _check_range(body, "max_tokens", 1, None, integer=True)
    _check_range(body, "max_completion_tokens", 1, None, integer=True)
    _check_range(body, "n", 1, 1, integer=True)  # the emulator answers one choice (what a local server does)
    _check_stop(body.get("stop"))
    if model not in models:
        raise model_not_found(model)
    return body


# ----------------------------------------------------------------------------------------------- the answers


def tokens(text: str) -> list[str]:
    """The text cut into the pieces the emulator counts and streams as tokens; they join back to ``text``."""
    return _TOKEN.findall(text)


def message_text(message: Mapping[str, Any]) -> str:
    """The text of a message's content, a string or the text parts of an array."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def prompt_tokens(body: Mapping[str, Any]) -> int:
    return sum(len(tokens(message_text(m))) for m in body["messages"])


def max_completion_tokens(body: Mapping[str, Any]) -> int | None:
    """``max_completion_tokens``, or the older ``max_tokens`` it replaces."""
    value = body.get("max_completion_tokens")
    return value if value is not None else body.get("max_tokens")


def stop_sequences(body: Mapping[str, Any]) -> list[str]:
    stop = body.get("stop")
    return [stop] if isinstance(stop, str) else list(stop or [])


def apply_limits(pieces: Sequence[str], body: Mapping[str, Any]) -> tuple[list[str], str]:
    """What the model sends of its reply's pieces, and why it stopped: cut before the first stop sequence
    (``"stop"``, the sequence itself not sent) or after ``max_tokens`` pieces (``"length"``)."""
    text = "".join(pieces)
    cut = min((i for s in stop_sequences(body) if s and (i := text.find(s)) >= 0), default=None)
    kept: list[str] = []
    length = 0
    for piece in pieces:
        if cut is not None and length + len(piece) > cut:
            if rest := piece[: cut - length]:
                kept.append(rest)
            break
        kept.append(piece)
        length += len(piece)
    limit = max_completion_tokens(body)
    if limit is not None and len(kept) > limit:
        return kept[:limit], "length"
    return kept, "stop"


def usage(body: Mapping[str, Any], completion_tokens: int) -> dict[str, int]:
    prompt = prompt_tokens(body)
    return {"prompt_tokens": prompt, "completion_tokens": completion_tokens, "total_tokens": prompt + completion_tokens}


def completion(completion_id: str, created: int, body: Mapping[str, Any], pieces: list[str], finish: str) -> dict:
    """A ``chat.completion`` object (the non-streaming answer)."""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": body["model"],
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(pieces), "refusal": None},
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
        "usage": usage(body, len(pieces)),
    }


def chunks(completion_id: str, created: int, body: Mapping[str, Any], pieces: list[str], finish: str) -> list[dict]:
    """The ``chat.completion.chunk`` events of a streamed answer, as OpenAI sends them: the role first (with an
    empty content), one per piece, an empty delta with the finish reason, and, with ``stream_options.include_usage``,
    a last chunk with empty ``choices`` and the usage (every other chunk then carries ``"usage": null``)."""
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def chunk(delta: dict[str, str], finish_reason: str | None) -> dict[str, Any]:
        event: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": body["model"],
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if include_usage:
            event["usage"] = None
        return event

    events = [chunk({"role": "assistant", "content": ""}, None)]
    events += [chunk({"content": piece}, None) for piece in pieces]
    events.append(chunk({}, finish))
    if include_usage:
        last = chunk({}, None)
        last["choices"] = []
        last["usage"] = usage(body, len(pieces))
        events.append(last)
    return events


def compact(value: object) -> str:
    """JSON without spaces, as the API writes its stream events."""
    return json.dumps(value, separators=(",", ":"))


def sse(data: str) -> bytes:
    """One Server-Sent Event carrying ``data`` (a JSON text or ``[DONE]``)."""
    return f"data: {data}\n\n".encode()


def models_list(models: Sequence[str], created: int) -> dict[str, Any]:
    """The answer of ``GET /v1/models``."""
    return {
        "object": "list",
        "data": [{"id": m, "object": "model", "created": created, "owned_by": "emulator"} for m in models],
    }
