"""Self-test of the OpenAI-compatible model server emulator: a real client, aiohttp (what the bot's generator uses),
talks real HTTP to it on 127.0.0.1 and gets what the documented API answers: ``chat.completion`` objects,
Server-Sent Event streams of ``chat.completion.chunk`` ending with ``data: [DONE]``, and OpenAI's error bodies for
a bad key, an unknown model, malformed requests, rate limits and server errors; the faults (hangs, dropped
streams) break the connection the way a real server or network does. The official ``openai`` SDK, when
installed, must accept the same answers and raise its own exceptions on the error bodies: the proof that the
emulator speaks the protocol and not only what our own parser expects."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from openai_emulator import DONE, ModelServer, numbered_passages, tokens

pytestmark = pytest.mark.timeout(30)

KEY = "sk-emulator-test-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
SDK_MISSING = "the official openai SDK is not installed (optional, not a dependency: `pip install openai` runs these)"
QUESTION = [{"role": "user", "content": "Who won the race?"}]
PROMPT = """Answer from the passages, citing them as [n].

[1] Oxford won the 1877 race in a dead heat.
[2] Cambridge won in 1836.

Question: who won in 1836?"""


@pytest.fixture
async def server() -> AsyncIterator[ModelServer]:
    """A server that requires the key, as a hosted API or a local server started with one does."""
    async with ModelServer(api_key=KEY, models=("local-model", "other-model")) as emulated:
        yield emulated


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def chat(server: ModelServer, **fields: Any) -> dict[str, Any]:
    """A valid request body for the server's model, with ``fields`` added or replaced."""
    return {"model": server.model, "messages": QUESTION, **fields}


async def sse_data(response: aiohttp.ClientResponse) -> list[str]:
    """The ``data`` of each Server-Sent Event, parsed as the SSE spec says (lines ``field: value``, events ended by
    a blank line, several ``data`` lines joined by newlines, comments ignored): what a client of the stream does."""
    events: list[str] = []
    data: list[str] = []
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if not line:
            if data:
                events.append("\n".join(data))
                data = []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value.removeprefix(" "))
    return events


async def post_stream(
    http: aiohttp.ClientSession, server: ModelServer, body: dict[str, Any]
) -> tuple[aiohttp.ClientResponse, list[str]]:
    async with http.post(server.chat_url, json=body, headers=AUTH) as response:
        return response, await sse_data(response)


# ----------------------------------------------------------------------------------------------- answers


async def test_a_completion_is_a_chat_completion_object(server: ModelServer, http: aiohttp.ClientSession) -> None:
    """Non-streaming: one ``chat.completion`` JSON object with the scripted text, finish reason and token usage; the
    request is recorded with its body and with the key masked (checked by ``has_bearer``)."""
    server.script("Cambridge won in 1836 [2].")
    async with http.post(f"{server.base_url}/chat/completions", json=chat(server, temperature=0.2), headers=AUTH) as r:
        assert r.status == 200 and r.content_type == "application/json"
        assert r.headers["x-request-id"].startswith("req_")
        answer = await r.json()
    assert answer["object"] == "chat.completion" and answer["id"].startswith("chatcmpl-")
    assert answer["model"] == server.model and isinstance(answer["created"], int)
    [choice] = answer["choices"]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"] == "Cambridge won in 1836 [2]."
    assert answer["usage"] == {"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9}

    [request] = server.chat_requests
    assert request.body == chat(server, temperature=0.2) and request.status == 200
    assert request.headers["Authorization"] == "Bearer ***" and KEY not in json.dumps(request.headers)
    assert request.has_bearer(KEY) and not request.has_bearer("sk-other")
    assert request.reply == "Cambridge won in 1836 [2]." and request.response == answer


async def test_stream_chunks_join_to_the_scripted_text_and_end_with_done(
    server: ModelServer, http: aiohttp.ClientSession
) -> None:
    """Streaming: ``text/event-stream``, a role chunk, one content delta per piece, an empty delta carrying
    ``finish_reason: "stop"``, then ``data: [DONE]``; all chunks of one completion share its id."""
    text = "Cambridge won the race in 1836 [2]."
    server.script(text)
    response, events = await post_stream(http, server, chat(server, stream=True))
    assert response.status == 200 and response.content_type == "text/event-stream"
    assert events[-1] == DONE and DONE not in events[:-1]
    chunks = [json.loads(e) for e in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"} and len({c["id"] for c in chunks}) == 1
    assert all("usage" not in c for c in chunks)  # only with stream_options.include_usage
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert deltas[-1] == {} and chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    assert "".join(d.get("content", "") for d in deltas) == text
    assert [d["content"] for d in deltas[1:-1]] == tokens(text) and len(deltas) == len(tokens(text)) + 2
    assert server.chat_requests[0].events == events


async def test_include_usage_adds_a_last_chunk_with_the_usage(server: ModelServer, http: aiohttp.ClientSession) -> None:
    """``stream_options.include_usage``: every chunk carries ``usage: null`` but a last one with empty ``choices``
    and the counts, sent before ``[DONE]``."""
    server.script("One two three.")
    _, events = await post_stream(http, server, chat(server, stream=True, stream_options={"include_usage": True}))
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


async def test_scripts_are_used_in_order_then_the_default_reply(
    server: ModelServer, http: aiohttp.ClientSession
) -> None:
    """A script queues replies: a text, the exact pieces to stream (a citation marker split across chunks), a
    function of the request (here reading the numbered passages of the prompt); then the server's default."""

    def cite_the_last_passage(request: dict[str, Any]) -> str:
        passages = numbered_passages(request)
        last = max(passages)
        return f"{passages[last]} [{last}]"

    server.script("First.", ["In 1836", " [", "2", "]", "."], cite_the_last_passage)
    assert server.pending_replies == 3
    prompt = [{"role": "system", "content": "Cite."}, {"role": "user", "content": PROMPT}]
    texts = []
    for _ in range(4):
        _, events = await post_stream(http, server, chat(server, messages=prompt, stream=True))
        texts.append([json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1]])
    assert "".join(texts[0]) == "First."
    assert texts[1][1:-1] == ["In 1836", " [", "2", "]", "."]
    assert "".join(texts[2]) == "Cambridge won in 1836. [2]"
    assert "".join(texts[3]) == "This is the emulated model's answer." and server.pending_replies == 0
    assert numbered_passages(server.chat_requests[0].body) == {
        1: "Oxford won the 1877 race in a dead heat.",
        2: "Cambridge won in 1836.",
    }


async def test_stop_sequences_and_max_tokens_cut_the_answer(server: ModelServer, http: aiohttp.ClientSession) -> None:
    """``stop`` ends the answer before the sequence (``finish_reason`` "stop"); ``max_tokens`` (or
    ``max_completion_tokens``) truncates it (``"length"``), streamed or not."""
    server.script("Oxford won. END of answer.", "one two three four five", "one two three four five")
    async with http.post(server.chat_url, json=chat(server, stop=["END", "\n\n"]), headers=AUTH) as r:
        choice = (await r.json())["choices"][0]
    assert choice["message"]["content"] == "Oxford won. " and choice["finish_reason"] == "stop"
    async with http.post(server.chat_url, json=chat(server, max_tokens=2), headers=AUTH) as r:
        answer = await r.json()
    assert answer["choices"][0] == {
        "index": 0,
        "message": {"role": "assistant", "content": "one two", "refusal": None},
        "logprobs": None,
        "finish_reason": "length",
    }
    assert answer["usage"]["completion_tokens"] == 2
    _, events = await post_stream(http, server, chat(server, stream=True, max_completion_tokens=3))
    last = json.loads(events[-2])["choices"][0]
    assert last["finish_reason"] == "length" and len(events) == 1 + 3 + 1 + 1


async def test_models_are_listed_and_other_paths_are_invalid_urls(
    server: ModelServer, http: aiohttp.ClientSession
) -> None:
    """``GET /v1/models`` lists the served models; a URL without ``/v1`` (a client configured with the root URL)
    answers OpenAI's 404 ``Invalid URL``, key or not, and is recorded."""
    async with http.get(f"{server.base_url}/models", headers=AUTH) as r:
        listing = await r.json()
    assert listing["object"] == "list" and [m["id"] for m in listing["data"]] == ["local-model", "other-model"]
    async with http.post(f"{server.root_url}/chat/completions", json=chat(server)) as r:
        assert r.status == 404
        assert (await r.json())["error"]["message"] == "Invalid URL (POST /chat/completions)"
    async with http.get(server.chat_url, headers=AUTH) as r:
        assert r.status == 404
    assert [r.status for r in server.failed_requests] == [404, 404]


async def test_delays_set_the_time_to_first_token_and_between_chunks(http: aiohttp.ClientSession) -> None:
    """``first_token_delay`` holds the whole answer back (no status line yet); ``chunk_delay`` spaces the pieces."""
    async with ModelServer(first_token_delay=0.2, chunk_delay=0.05) as server:
        server.script("a b c")
        started = time.monotonic()
        arrivals: list[float] = []
        async with http.post(server.chat_url, json=chat(server, stream=True)) as response:
            async for line in response.content:
                if line.startswith(b"data:"):
                    arrivals.append(time.monotonic() - started)
    assert 0.2 <= arrivals[0] < 0.4
    assert arrivals[-1] - arrivals[0] >= 3 * 0.05  # two more pieces and the finish chunk, each after a delay


# ----------------------------------------------------------------------------------------------- errors


async def test_a_missing_or_wrong_key_is_401(server: ModelServer, http: aiohttp.ClientSession) -> None:
    """No bearer token: 401 with ``code`` null (OpenAI's "You didn't provide an API key"); a wrong one: 401
    ``invalid_api_key`` showing the key masked; nothing is generated for either."""
    server.script("never sent")
    async with http.post(server.chat_url, json=chat(server)) as r:
        assert r.status == 401
        missing = (await r.json())["error"]
    assert missing["code"] is None and missing["type"] == "invalid_request_error"
    assert missing["message"].startswith("You didn't provide an API key.")
    wrong_key = "sk-wrong-key-abcdefgh"
    async with http.post(server.chat_url, json=chat(server), headers={"Authorization": f"Bearer {wrong_key}"}) as r:
        assert r.status == 401
        wrong = (await r.json())["error"]
    assert wrong["code"] == "invalid_api_key" and wrong["message"].startswith("Incorrect API key provided: sk-")
    assert wrong_key not in wrong["message"] and wrong["message"].count("efgh") == 1
    assert server.pending_replies == 1 and not server.chat_requests[0].has_authorization


async def test_a_server_without_key_accepts_any_authorization(http: aiohttp.ClientSession) -> None:
    """A local server started without a key (Ollama, llama-server without ``--api-key``) ignores the header."""
    async with ModelServer() as server:
        for headers in ({}, {"Authorization": "Bearer anything"}):
            async with http.post(server.chat_url, json=chat(server), headers=headers) as r:
                assert r.status == 200


async def test_an_unknown_model_is_404_model_not_found(server: ModelServer, http: aiohttp.ClientSession) -> None:
    async with http.post(server.chat_url, json=chat(server, model="gpt-nonexistent"), headers=AUTH) as r:
        assert r.status == 404
        body = await r.json()
    assert body == {
        "error": {
            "message": "The model `gpt-nonexistent` does not exist or you do not have access to it.",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        }
    }


@pytest.mark.parametrize(
    ("change", "param", "code"),
    [
        ({"messages": None}, "messages", "missing_required_parameter"),
        ({"messages": []}, "messages", "empty_array"),
        ({"messages": "Who won?"}, "messages", "invalid_type"),
        ({"messages": ["Who won?"]}, "messages[0]", "invalid_type"),
        ({"messages": [{"content": "Who won?"}]}, "messages[0].role", "missing_required_parameter"),
        ({"messages": [{"role": "bot", "content": "Who won?"}]}, "messages[0].role", "invalid_value"),
        ({"messages": [{"role": "user"}]}, "messages[0].content", "missing_required_parameter"),
        ({"messages": [{"role": "user", "content": 42}]}, "messages[0].content", "invalid_type"),
        ({"messages": [{"role": "tool", "content": "42"}]}, "messages[0].tool_call_id", "missing_required_parameter"),
        ({"model": None}, None, None),
        ({"model": 7}, "model", "invalid_type"),
        ({"stream": "yes"}, "stream", "invalid_type"),
        ({"stream_options": {"include_usage": True}}, "stream_options", None),
        ({"temperature": 3}, "temperature", "decimal_above_max_value"),
        ({"max_tokens": 0}, "max_tokens", "integer_below_min_value"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "array_above_max_length"),
        ({"user_id": 1234}, None, None),
    ],
)
async def test_a_malformed_request_is_400_with_the_param_at_fault(
    server: ModelServer, http: aiohttp.ClientSession, change: dict[str, Any], param: str | None, code: str | None
) -> None:
    """Each malformed request gets a 400 ``invalid_request_error`` naming the parameter and the reason, as OpenAI
    answers (an unrecognized parameter, like a user id the bot must not send, is refused too)."""
    body = {k: v for k, v in {**chat(server), **change}.items() if v is not None}
    async with http.post(server.chat_url, json=body, headers=AUTH) as r:
        assert r.status == 400, await r.text()
        error = (await r.json())["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    assert (error["param"], error["code"]) == (param, code), error["message"]


async def test_a_body_that_is_not_json_is_400(server: ModelServer, http: aiohttp.ClientSession) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    async with http.post(server.chat_url, data=b"{'model': 'local-model'", headers=headers) as r:
        assert r.status == 400
        error = (await r.json())["error"]
    assert error["message"].startswith("We could not parse the JSON body of your request.")
    assert server.chat_requests[0].body == "{'model': 'local-model'"


async def test_rate_limit_is_429_with_retry_after_then_the_reply(
    server: ModelServer, http: aiohttp.ClientSession
) -> None:
    """``rate_limit_next``: 429, ``Retry-After`` in seconds, OpenAI's ``rate_limit_exceeded`` body; the scripted
    reply is kept for the retry."""
    server.script("After the wait.")
    server.rate_limit_next(retry_after=2)
    async with http.post(server.chat_url, json=chat(server), headers=AUTH) as r:
        assert r.status == 429 and r.headers["Retry-After"] == "2"
        assert r.headers["x-ratelimit-remaining-requests"] == "0"
        error = (await r.json())["error"]
    assert error["code"] == "rate_limit_exceeded" and "try again in 2s" in error["message"]
    async with http.post(server.chat_url, json=chat(server), headers=AUTH) as r:
        assert (await r.json())["choices"][0]["message"]["content"] == "After the wait."
    assert [(r.status, r.fault) for r in server.chat_requests] == [(429, "rate_limit"), (200, None)]


async def test_server_errors_have_openai_bodies_or_the_given_one(
    server: ModelServer, http: aiohttp.ClientSession
) -> None:
    """``fail_next``: 500 and 503 with OpenAI's ``server_error`` bodies, or any body given (a proxy's text page)."""
    server.fail_next(500)
    server.fail_next(503)
    server.fail_next(502, body="<html>Bad Gateway</html>")
    answers = []
    for _ in range(3):
        async with http.post(server.chat_url, json=chat(server), headers=AUTH) as r:
            answers.append((r.status, r.content_type, await r.text()))
    assert answers[0][0] == 500 and json.loads(answers[0][2])["error"]["type"] == "server_error"
    assert answers[1][0] == 503 and "overloaded" in json.loads(answers[1][2])["error"]["message"]
    assert answers[2] == (502, "text/plain", "<html>Bad Gateway</html>")


# ----------------------------------------------------------------------------------------------- broken connections


async def test_a_hang_makes_the_client_time_out(server: ModelServer, http: aiohttp.ClientSession) -> None:
    """``hang_next``: no status line at all, so the client's own timeout fires; the server sees the client leave
    and keeps the scripted reply for the next request."""
    server.script("Second try.")
    server.hang_next(10)
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        await http.post(server.chat_url, json=chat(server), headers=AUTH, timeout=aiohttp.ClientTimeout(total=0.2))
    assert time.monotonic() - started < 1
    [hung] = await server.wait_for_requests(1)
    assert hung.fault == "hang" and hung.client_disconnected and hung.status == 0
    async with http.post(server.chat_url, json=chat(server), headers=AUTH) as r:
        assert (await r.json())["choices"][0]["message"]["content"] == "Second try."


async def test_a_short_hang_then_answers(server: ModelServer, http: aiohttp.ClientSession) -> None:
    """A patient client gets the answer after the hang."""
    server.hang_next(0.2)
    started = time.monotonic()
    async with http.post(server.chat_url, json=chat(server), headers=AUTH) as r:
        assert r.status == 200
    assert time.monotonic() - started >= 0.2


async def test_stopping_the_server_ends_a_hang(http: aiohttp.ClientSession) -> None:
    """A hang does not hold the test's teardown: stopping the server closes the waiting connection."""
    server = ModelServer()
    await server.start()
    server.hang_next(30)
    request = asyncio.create_task(http.post(server.chat_url, json=chat(server)))
    await server.wait_for(lambda: server.chat_requests)
    started = time.monotonic()
    await server.stop()
    with pytest.raises(aiohttp.ClientError):
        await request
    assert time.monotonic() - started < 2


async def test_a_dropped_stream_breaks_off_without_done(server: ModelServer, http: aiohttp.ClientSession) -> None:
    """``drop_stream_after(n)``: a 200, n events, then the connection closes mid-body (no finish chunk, no
    ``[DONE]``): aiohttp raises ``ClientPayloadError`` after the events that arrived."""
    server.script("one two three four five")
    server.drop_stream_after(3)
    events: list[str] = []
    async with http.post(server.chat_url, json=chat(server, stream=True), headers=AUTH) as response:
        assert response.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            async for line in response.content:
                if line.startswith(b"data: "):
                    events.append(line.decode().removeprefix("data: ").strip())
    assert len(events) == 3 and DONE not in events
    assert "".join(json.loads(e)["choices"][0]["delta"].get("content", "") for e in events) == "one two"
    assert server.chat_requests[0].events == events


async def test_a_dropped_request_gets_no_answer(server: ModelServer, http: aiohttp.ClientSession) -> None:
    """A non-streaming request meeting ``drop_stream_after``: the connection closes with no status line."""
    server.drop_stream_after(0)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await http.post(server.chat_url, json=chat(server), headers=AUTH)
    assert server.chat_requests[0].status == 0


async def test_an_error_in_the_stream_is_an_error_event(server: ModelServer, http: aiohttp.ClientSession) -> None:
    """``error_in_stream_after``: after n events, ``data: {"error": …}`` then ``[DONE]``, as vLLM sends a failure
    once the 200 is out."""
    server.error_in_stream_after(2, "CUDA out of memory")
    _, events = await post_stream(http, server, chat(server, stream=True))
    assert len(events) == 4 and events[-1] == DONE
    assert json.loads(events[2])["error"]["message"] == "CUDA out of memory"


# ----------------------------------------------------------------------------------------------- the official SDK


async def test_the_openai_sdk_accepts_the_answers(server: ModelServer) -> None:
    """The official SDK parses the completion and the stream into its own types and lists the models."""
    openai = pytest.importorskip("openai", reason=SDK_MISSING)
    server.script("Cambridge won [2].", "Cambridge won [2].")
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key=KEY, max_retries=0) as client:
        completion = await client.chat.completions.create(model=server.model, messages=QUESTION)
        assert completion.choices[0].message.content == "Cambridge won [2]."
        assert completion.choices[0].finish_reason == "stop" and completion.usage is not None
        stream = await client.chat.completions.create(
            model=server.model, messages=QUESTION, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Cambridge won [2]."
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
        models = await client.models.list()
        assert [m.id for m in models.data] == ["local-model", "other-model"]
    assert all(r.has_bearer(KEY) for r in server.requests)


async def test_the_openai_sdk_raises_its_errors(server: ModelServer) -> None:
    """The SDK maps the emulator's error answers to its exceptions, with the body's ``code``: 429
    ``RateLimitError``, 401 ``AuthenticationError``, 404 ``NotFoundError``, 400 ``BadRequestError``, 503
    ``InternalServerError``; a dropped stream is an ``APIConnectionError``, an error event an ``APIError``."""
    openai = pytest.importorskip("openai", reason=SDK_MISSING)
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key=KEY, max_retries=0) as client:

        async def ask(**fields: Any) -> str:
            request = {"model": server.model, "messages": QUESTION, **fields}
            answer = await client.chat.completions.create(**request)
            if not request.get("stream"):
                return answer.choices[0].message.content or ""
            return "".join([chunk.choices[0].delta.content or "" async for chunk in answer])

        server.rate_limit_next(retry_after=2)
        with pytest.raises(openai.RateLimitError) as limited:
            await ask()
        assert limited.value.code == "rate_limit_exceeded" and limited.value.response.headers["retry-after"] == "2"
        with pytest.raises(openai.NotFoundError) as not_found:
            await ask(model="gpt-nonexistent")
        assert not_found.value.code == "model_not_found"
        with pytest.raises(openai.BadRequestError) as bad:
            await ask(messages=[])
        assert bad.value.code == "empty_array" and bad.value.param == "messages"
        server.fail_next(503)
        with pytest.raises(openai.InternalServerError):
            await ask()
        server.drop_stream_after(2)
        with pytest.raises(openai.APIConnectionError):
            await ask(stream=True)
        server.error_in_stream_after(2, "CUDA out of memory")
        with pytest.raises(openai.APIError, match="CUDA out of memory"):
            await ask(stream=True)
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-wrong-key-0000", max_retries=0) as client:
        with pytest.raises(openai.AuthenticationError) as denied:
            await client.chat.completions.create(model=server.model, messages=QUESTION)
        assert denied.value.code == "invalid_api_key"
