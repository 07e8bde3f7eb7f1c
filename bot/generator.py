"""Generative answers from the operator's own model server (GENERATOR_URL: Ollama, llama-server, vLLM, LM Studio or
a hosted API: anything that speaks OpenAI's `/v1/chat/completions`), kept only where our citation check agrees.

The extractive answer decides first: a question the bot would refuse is never sent. Otherwise the model gets the
question, the conversation's earlier questions and the passages the reader read, numbered [1]…[n], and is asked
to answer only from them and cite every sentence (bot.grounding checks that it did). What is sent is the question
and passages, never a user id. The client is plain aiohttp (already the bot's HTTP library): one POST, streamed
as server-sent events, parsed in a few lines, where the `openai` package would add a dependency tree for the same.

Any failure of the server (an error status, a 429, a timeout, a stream cut short) gives the extractive answer
and one log line; so does a draft the model marks as unanswerable or one the check leaves empty.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import aiohttp

from bot.grounding import REFUSAL, Checked, Embed, check
from bot.replies import Answer, Citation, Struck, Written

if TYPE_CHECKING:
    from bot.history import Turn
    from bot.settings import Settings

log = logging.getLogger(__name__)

MAX_TOKENS = 400  # a few sentences: an answer in a chat, not an essay
MAX_DRAFT_CHARS = 4000  # what is read of a reply at most, whatever the server sends
QUOTA_WINDOW_SECONDS = 60.0

INSTRUCTIONS = f"""You answer questions about documents, using only the numbered passages the user gives you.
Write at most four short sentences. End every sentence with the number of the passage that supports it, in square \
brackets, like [1] or [2][3]. Use no knowledge of your own, and never cite a passage for something it does not say.
If the passages do not answer the question, reply exactly: {REFUSAL}"""

Show = Callable[[str], Awaitable[None]]  # receives the draft so far, while it is written


class GeneratorError(Exception):
    """The model server failed; the message says how (never the key)."""


@dataclass(frozen=True)
class GeneratorConfig:
    """Where the model server is and how to use it (see the GENERATOR_* settings)."""

    url: str
    model: str
    api_key: str | None = None
    timeout_seconds: float = 60.0
    max_per_minute: int = 6


class Quota:
    """At most `limit` generations per minute for each server and each member: past it, the extractive answer."""

    def __init__(self, limit: int, window: float = QUOTA_WINDOW_SECONDS) -> None:
        self.limit, self.window = limit, window
        self._uses: defaultdict[tuple[str, int | None], deque[float]] = defaultdict(deque)

    def take(self, guild_id: int | None, user_id: int | None) -> bool:
        """Whether one more generation is allowed for this server and member now (counted if so)."""
        now = time.monotonic()
        keys = [("user", user_id)] + ([("guild", guild_id)] if guild_id is not None else [])  # DMs: per member
        for key in keys:
            uses = self._uses[key]
            while uses and uses[0] <= now - self.window:
                uses.popleft()
            if not uses:
                del self._uses[key]  # forget who has not asked lately: bounded by the members of the last minute
        if any(len(self._uses.get(key, ())) >= self.limit for key in keys):
            return False
        for key in keys:
            self._uses[key].append(now)
        return True


class Generator:
    """Writes an answer with the model server from the passages an extractive answer read, and checks it."""

    def __init__(self, config: GeneratorConfig, embed: Embed) -> None:
        self.config = config
        self.embed = embed
        self.quota = Quota(config.max_per_minute)

    @classmethod
    def configured(cls, settings: Settings, embed: Embed) -> Generator | None:
        """The generator GENERATOR_URL names, or None when it is off."""
        if settings.generator_url is None:
            return None
        key = settings.generator_api_key.get_secret_value() if settings.generator_api_key else None
        config = GeneratorConfig(
            settings.generator_url,
            settings.generator_model,
            key,
            settings.generator_timeout_seconds,
            settings.generator_max_per_minute,
        )
        return cls(config, embed)

    async def write(self, answer: Answer, history: Sequence[Turn] = (), show: Show | None = None) -> Answer:
        """The generated answer, every sentence checked; `answer` itself (with what was dropped) when the question
        was refused, the server failed, the model declined, or no sentence survived the check."""
        if answer.abstained or not answer.passages:
            return answer
        started = time.perf_counter()
        try:
            draft = await self._draft(prompt(answer.question, history, answer.passages), show)
        except GeneratorError as exc:
            log.warning("generated answer not available, answering extractively: %s", exc)
            return answer
        written = time.perf_counter()
        checked = await asyncio.to_thread(check, draft, [p.text for p in answer.passages], self.embed)
        timings = answer.timings_ms | {
            "generate": round((written - started) * 1000, 2),
            "check": round((time.perf_counter() - written) * 1000, 2),
        }
        return compose(answer, checked, timings)

    async def _draft(self, messages: list[dict[str, str]], show: Show | None) -> str:
        """The model's whole reply, shown as it arrives."""
        draft = ""
        async for piece in self._stream(messages):
            draft += piece
            if len(draft) >= MAX_DRAFT_CHARS:
                break
            if show is not None:
                await show(draft)
        return draft[:MAX_DRAFT_CHARS]

    async def _stream(self, messages: list[dict[str, str]]) -> AsyncIterator[str]:
        """The reply's text as the server streams it (`data: {chunk}` events up to `data: [DONE]`)."""
        config = self.config
        body = {"model": config.model, "messages": messages, "stream": True, "temperature": 0, "max_tokens": MAX_TOKENS}
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        timeout = aiohttp.ClientTimeout(total=config.timeout_seconds)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(f"{config.url}/chat/completions", json=body, headers=headers) as response,
            ):
                if response.status != 200:
                    raise GeneratorError(await _refusal(response))
                async for line in response.content:
                    event = line.decode("utf-8", "replace").strip()
                    if not event.startswith("data:"):
                        continue  # blank separators, comments, event names
                    data = event.removeprefix("data:").strip()
                    if data == "[DONE]":
                        return
                    for piece in _pieces(data):
                        yield piece
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise GeneratorError(f"{config.url} failed: {type(exc).__name__} {exc}".strip()) from None
        raise GeneratorError(f"{config.url} ended its reply without [DONE]")


def prompt(question: str, history: Sequence[Turn], passages: Sequence[Citation]) -> list[dict[str, str]]:
    """The chat messages: the instructions, then the numbered passages, the conversation so far and the question."""
    numbered = "\n\n".join(f"[{p.n}] ({p.title}, {p.place})\n{p.text}" for p in passages)
    earlier = "".join(
        f"Q: {turn.question}\nA: {turn.short_answer or '(answered from the passages)'}\n" for turn in history
    )
    conversation = f"Conversation so far:\n{earlier}\n" if earlier else ""
    user = f"Passages:\n\n{numbered}\n\n{conversation}Question: {question}"
    return [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": user}]


def compose(answer: Answer, checked: Checked, timings: dict[str, float]) -> Answer:
    """The answer made of the kept sentences, each cited passage numbered once in order of first use; the
    extractive `answer` when nothing was kept."""
    dropped = list(checked.dropped)
    if checked.refused:
        dropped = [Struck(REFUSAL, "the model says the passages do not answer the question")]
    if not checked.kept:
        return replace(answer, dropped=dropped, timings_ms=timings)
    given = {p.n: p for p in answer.passages}
    order = list(dict.fromkeys(n for kept in checked.kept for n in kept.citations))
    renumber = {old: new for new, old in enumerate(order, 1)}
    sentences = [Written(k.text, [renumber[n] for n in k.citations], k.support) for k in checked.kept]
    text = " ".join(f"{s.text} " + "".join(f"[{n}]" for n in s.citations) for s in sentences)
    citations = [replace(given[old], n=renumber[old]) for old in order]
    return replace(
        answer,
        text=text,
        citations=citations,
        short_answer=None,
        generated=True,
        sentences=sentences,
        dropped=dropped,
        timings_ms=timings,
    )


def _pieces(data: str) -> list[str]:
    """The text pieces of one streamed chunk; GeneratorError for an error event (vLLM reports failures so)."""
    try:
        chunk: Any = json.loads(data)
    except json.JSONDecodeError:
        raise GeneratorError("the model server sent an event that is not JSON") from None
    if not isinstance(chunk, dict):
        raise GeneratorError("the model server sent an event that is not a chunk")
    if "error" in chunk:
        raise GeneratorError(f"the model server failed mid-reply: {_message(chunk)}")
    deltas = [c.get("delta") or {} for c in chunk.get("choices") or [] if isinstance(c, dict)]
    return [d["content"] for d in deltas if isinstance(d, dict) and isinstance(d.get("content"), str)]


async def _refusal(response: aiohttp.ClientResponse) -> str:
    """Why the server refused the request: its status and its error message (OpenAI's error body)."""
    if response.status in (401, 403):
        message = "it refused GENERATOR_API_KEY (or needs one)"  # its own message may echo part of the key
    else:
        try:
            message = _message(await response.json(content_type=None))
        except (aiohttp.ClientError, ValueError):
            message = response.reason or ""
    retry = response.headers.get("Retry-After")
    after = f", retry after {retry} s" if retry and response.status == 429 else ""
    return f"{response.url.with_query(None)} answered {response.status}{after}: {message[:200]}"


def _message(body: Any) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message", ""))
    return str(error or "")
