"""A small, faithful emulator of the OpenAI-compatible chat-completions API, for tests of a real client (the bot's
generator: plain aiohttp, ``POST {GENERATOR_URL}/chat/completions``) without a model server.

The user's model server (OpenAI itself, Ollama, llama.cpp's ``llama-server``, vLLM) cannot run in the test suite,
so :class:`ModelServer` plays it: an aiohttp server on a free port of 127.0.0.1 answering ``POST
/v1/chat/completions`` (streaming or not) and ``GET /v1/models`` in the documented wire format, with what the test
scripts the "model" to say, the faults the test asks for, and every request recorded::

    async with ModelServer(api_key="sk-test", models=("llama3",)) as server:   # base_url: http://127.0.0.1:PORT/v1
        server.script("Rowing began in 1715 [1].", lambda request: f"{len(numbered_passages(request))} passages")
        server.script(["Split ", "[", "1", "]", "."])          # the exact pieces to stream
        server.rate_limit_next(retry_after=2)                  # 429, Retry-After: 2, rate_limit_exceeded
        server.fail_next(503)                                  # or body={...} / body="<html>…" as a proxy would
        server.hang_next(30)                                   # no status line for 30 s: the client must time out
        server.drop_stream_after(3)                            # 3 events, then the connection closes: no [DONE]
        server.error_in_stream_after(2, "out of memory")       # data: {"error": …} then [DONE], as vLLM does
        server.first_token_delay, server.chunk_delay = 0.5, 0.05   # a slow model (also constructor arguments)
        ...                                                    # run the client against server.base_url
        request = server.chat_requests[0]                      # RecordedRequest: body, headers (key masked), …
        assert request.has_bearer("sk-test") and "user" not in request.body
        assert list(numbered_passages(request.body)) == [1, 2, 3]   # the prompt's passages [1] … [3]

The configured URL includes ``/v1`` (the OpenAI SDK's ``base_url`` convention; the client appends
``/chat/completions``); only ``/v1`` paths are served, anything else answers OpenAI's 404 ``Invalid URL (…)``.

What OpenAI does and the emulator reproduces: with an ``api_key``, 401 for a missing ``Authorization: Bearer``
(``code`` null) or a wrong key (``invalid_api_key``, the key shown masked); 400 ``invalid_request_error`` bodies
with ``param`` and ``code`` for a body that is not JSON, an unrecognized parameter, a missing or ill-typed
``model``, a missing, empty or malformed ``messages`` (roles system, developer, user, assistant, tool; content a
string or text parts), ``stream_options`` without ``stream``, ``temperature``, ``top_p``, ``max_tokens``,
``max_completion_tokens`` or ``stop`` out of range; 404 ``model_not_found`` (``param`` "model") for a model not
served; ``chat.completion`` objects with ``usage``; streams as ``text/event-stream`` events ``data: {chunk}``:
the role first (``{"role": "assistant", "content": ""}``), one ``{"content": …}`` per piece, an empty delta with the
``finish_reason``, with ``stream_options.include_usage`` a last chunk with empty ``choices`` and the usage, then
``data: [DONE]``; ``stop`` sequences cutting the answer (``finish_reason`` "stop") and ``max_tokens`` truncating it
(``"length"``). Tokens are counted as the pieces of :func:`tokens` (a word with the whitespace before it).

Not emulated: tools and tool calls, ``n`` > 1, logprobs, images, the legacy ``/v1/completions`` and the
embeddings endpoints, and the servers' own deviations from OpenAI (Ollama repeats ``role`` in every delta,
llama-server's first delta has ``"content": null``); their different error bodies can be played with
``fail_next(status, body=…)``.

Modules: ``api`` (the wire format: errors, validation, completion objects, chunks), ``server`` (:class:`ModelServer`
and :class:`RecordedRequest`), ``prompts`` (reading a request as a scripted model does).
"""

from __future__ import annotations

from .api import DONE, ApiError, tokens
from .prompts import last_user_message, numbered_passages, prompt_text
from .server import CHAT_PATH, MODELS_PATH, ModelServer, RecordedRequest, Reply

__all__ = [
    "CHAT_PATH",
    "DONE",
    "MODELS_PATH",
    "ApiError",
    "ModelServer",
    "RecordedRequest",
    "Reply",
    "last_user_message",
    "numbered_passages",
    "prompt_text",
    "tokens",
]
