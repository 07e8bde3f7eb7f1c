"""Generative answers against the OpenAI-compatible API emulator, with the real engine, model and FAISS index: a
checked draft becomes the answer; adversarial drafts lose the sentences their passages do not support; a failing
server, a refusal or an empty check give the extractive answer; nothing but the question and passages is sent."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from discord.ext import commands
from discord_emulator import DiscordEmulator
from openai_emulator import ModelServer, numbered_passages
from pydantic import SecretStr

from bot.engine import Engine
from bot.replies import Answer
from index.embedder import Embedder

pytestmark = pytest.mark.timeout(120)

SECRETARIAT = "Who heads WeGO's secretariat?"
OFF_TOPIC = "What is the capital of Australia?"
PARK = "WeGO's secretariat in Seoul is headed by Secretary-General Park Jung-sook"
KEY = "sk-test-3f9a1c"
ARTICLEBOT = str(Path(sys.executable).parent / "articlebot")
StartBot = Callable[..., Awaitable[commands.Bot]]


@pytest.fixture
async def server() -> AsyncIterator[ModelServer]:
    async with ModelServer(models=("local-model",), api_key=KEY) as model_server:
        yield model_server


@pytest.fixture
def writer(engine: Engine, embedder: Embedder, server: ModelServer) -> Engine:
    """The session's engine with a generator on the emulated model server."""
    return with_generator(engine, embedder, server)


def with_generator(engine: Engine, embedder: Embedder, server: ModelServer, **settings: Any) -> Engine:
    update = {
        "generator_url": server.base_url,
        "generator_model": "local-model",
        "generator_api_key": SecretStr(KEY),
        "generator_timeout_seconds": 5.0,
        "generator_max_per_minute": 6,
        **settings,
    }
    return Engine(engine.settings.model_copy(update=update), embedder, engine.answerer)


def holding(request: dict[str, Any], text: str) -> int:
    """The number the prompt gives the passage that holds `text`."""
    return next(n for n, passage in numbered_passages(request).items() if text in passage)


def footer(messages: list[dict[str, Any]]) -> str:
    """The footer of the one message's embed ("" while there is none)."""
    embeds = messages[0]["embeds"] if len(messages) == 1 else []
    return embeds[0].get("footer", {}).get("text", "") if embeds else ""


def other_than(request: dict[str, Any], n: int) -> int:
    return next(m for m in numbered_passages(request) if m != n)


async def write(engine: Engine, question: str = SECRETARIAT) -> tuple[Answer, Answer]:
    """The extractive answer and what the generator made of it."""
    extractive = await asyncio.to_thread(engine.ask, question)
    assert engine.generator is not None
    return extractive, await engine.generator.write(extractive)


async def test_a_checked_draft_becomes_the_answer_and_only_question_and_passages_are_sent(
    writer: Engine, server: ModelServer
) -> None:
    server.script(
        lambda r: f"{PARK} [{holding(r, 'Park Jung-sook')}]. The secretariat is based in Seoul [{holding(r, 'Seoul')}]."
    )
    extractive, answer = await write(writer)

    assert answer.generated and not answer.abstained and answer.answer_type == "evidence"
    assert [s.text for s in answer.sentences] == [f"{PARK}.", "The secretariat is based in Seoul."]
    assert answer.sentences[0].citations == [1] and answer.dropped == []
    assert "Park Jung-sook" in answer.citations[0].text and answer.text.startswith(f"{PARK}. [1]")
    assert answer.confidence == extractive.confidence and {"generate", "check"} <= set(answer.timings_ms)
    [request] = server.chat_requests
    body = request.body
    assert request.has_bearer(KEY) and body["model"] == "local-model" and body["stream"] is True
    assert set(body) <= {"model", "messages", "stream", "temperature", "max_tokens"}, "no user or other fields"
    assert [m["role"] for m in body["messages"]] == ["system", "user"] and SECRETARIAT in body["messages"][1]["content"]
    assert sorted(numbered_passages(body)) == [c.n for c in extractive.passages]


@pytest.mark.parametrize(
    ("draft", "reason"),
    [
        (lambda r: f"WeGO's secretariat has 40 staff [{holding(r, 'Park Jung-sook')}].", "the number 40 is not in"),
        (lambda r: f"{PARK} [9].", "cites [9], a passage it was not given"),
        (lambda r: f"{PARK} [{other_than(r, holding(r, 'Park Jung-sook'))}].", "is not in"),
        (lambda r: f"{PARK}.", "cites no passage"),
    ],
    ids=["number not in the passage", "passage not given", "true sentence, wrong passage", "no citation"],
)
async def test_an_unsupported_sentence_is_dropped_with_its_reason(
    writer: Engine, server: ModelServer, draft: Callable[[dict], str], reason: str
) -> None:
    good = "Its secretary-general is Park Jung-sook"
    server.script(lambda r: f"{good} [{holding(r, 'Park Jung-sook')}]. {draft(r)}")
    _, answer = await write(writer)
    assert answer.generated and [s.text for s in answer.sentences] == [f"{good}."]
    [dropped] = answer.dropped
    assert reason in dropped.reason and dropped.text not in answer.text

    server.script(draft)  # the bad sentence alone: nothing left, so the extractive answer
    extractive, alone = await write(writer)
    assert not alone.generated and alone.text == extractive.text and len(alone.dropped) == 1


async def test_a_refusal_gives_the_extractive_answer(writer: Engine, server: ModelServer) -> None:
    server.script("NOT IN THE SOURCES")
    extractive, answer = await write(writer)
    assert not answer.generated and answer.text == extractive.text
    assert answer.dropped[0].reason == "the model says the passages do not answer the question"


async def test_a_refused_question_is_never_sent(writer: Engine, server: ModelServer) -> None:
    extractive, answer = await write(writer, OFF_TOPIC)
    assert extractive.abstained and answer == extractive and server.chat_requests == []


@pytest.mark.parametrize(
    ("fault", "logged"),
    [
        (lambda s: s.fail_next(500), "answered 500"),
        (lambda s: s.rate_limit_next(retry_after=2), "answered 429, retry after 2 s"),
        (lambda s: s.hang_next(30), "TimeoutError"),
        (lambda s: s.drop_stream_after(3), "failed"),
        (lambda s: s.error_in_stream_after(2, "out of memory"), "failed mid-reply: out of memory"),
    ],
    ids=["500", "429", "timeout", "stream cut", "error event"],
)
async def test_a_failing_model_server_gives_the_extractive_answer_and_one_log_line(
    engine: Engine, embedder: Embedder, server: ModelServer, caplog, fault: Callable, logged: str
) -> None:
    writer = with_generator(engine, embedder, server, generator_timeout_seconds=1.5)
    fault(server)
    with caplog.at_level(logging.INFO, logger="bot"):
        extractive, answer = await write(writer)
    assert not answer.generated and answer.text == extractive.text and "Park Jung-sook" in answer.text
    [line] = [r for r in caplog.records if r.name == "bot.generator"]
    assert line.levelno == logging.WARNING and logged in line.getMessage() and KEY not in caplog.text


async def test_a_wrong_key_is_reported_without_the_key(
    engine: Engine, embedder: Embedder, server: ModelServer, caplog
) -> None:
    writer = with_generator(engine, embedder, server, generator_api_key=SecretStr("sk-wrong-key-77"))
    with caplog.at_level(logging.INFO, logger="bot"):
        _, answer = await write(writer)
    assert not answer.generated and "refused GENERATOR_API_KEY" in caplog.text and "wrong-key" not in caplog.text


async def test_ask_json_reports_the_generated_sentences_and_what_was_dropped(
    engine: Engine, server: ModelServer, tmp_path: Path
) -> None:
    server.script(lambda r: f"{PARK} [{holding(r, 'Park Jung-sook')}]. It has 40 staff [1].")
    settings = engine.settings
    env = {k: v for k, v in os.environ.items() if k.lower() not in type(settings).model_fields}
    env |= {
        "INDEX_DIR": str(settings.index_dir),
        "SERVERS_DIR": str(tmp_path / "servers"),
        "LOG_QUESTIONS": "false",
        "GENERATOR_URL": server.base_url,
        "GENERATOR_MODEL": "local-model",
        "GENERATOR_API_KEY": KEY,
        "HF_HUB_OFFLINE": "1",
    }
    process = await asyncio.create_subprocess_exec(
        ARTICLEBOT, "ask", "--json", SECRETARIAT, env=env, cwd=tmp_path, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=100)
    answer = json.loads(out)
    assert process.returncode == 0 and answer["generated"] is True and answer["answer_type"] == "evidence"
    assert answer["sentences"] == [{"text": f"{PARK}.", "citations": [1], "support": answer["sentences"][0]["support"]}]
    assert answer["dropped"] == [{"text": "It has 40 staff.", "reason": "the number 40 is not in [1]"}]
    assert "passages" not in answer and answer["citations"][0]["n"] == 1


async def test_ask_in_discord_streams_the_draft_then_shows_the_checked_answer(
    emu: DiscordEmulator, start_bot: StartBot, writer: Engine, server: ModelServer
) -> None:
    user = emu.add_member("gwen")
    await start_bot(writer)
    server.chunk_delay = 0.12  # about 3 s of writing: a few draft edits
    server.script(lambda r: f"{PARK} [{holding(r, 'Park Jung-sook')}]. It has 40 staff [1].")

    interaction = await emu.send_slash_command(user, "ask", {"question": SECRETARIAT})
    await emu.wait_for(lambda: footer(emu.interaction_messages(interaction.id)).startswith("Written by"), timeout=60)
    [message] = emu.interaction_messages(interaction.id)
    [final] = emu.interaction_messages(interaction.id)
    embed = final["embeds"][0]
    assert embed["description"].startswith("WeGO") and "Park Jung" in embed["description"]
    assert "40 staff" not in embed["description"] and embed["footer"]["text"].endswith("1 dropped as unsupported.")
    assert final["components"], "the vote buttons come with the checked answer"
    edits = [r for r in emu.requests if r.method == "PATCH" and r.path.endswith(f"/messages/{message['id']}")]
    drafts = [r for r in edits if "Writing" in json.dumps(r.body)]
    assert drafts, "the draft was shown while it was written"
    times = [r.at for r in drafts]
    assert all(b - a >= 0.9 for a, b in itertools.pairwise(times)), "at most one draft edit a second"
    assert emu.failed_requests == []


async def test_a_failing_model_server_gives_members_the_extractive_answer(
    emu: DiscordEmulator, start_bot: StartBot, writer: Engine, server: ModelServer
) -> None:
    user = emu.add_member("hugo")
    await start_bot(writer)
    server.fail_next(503)
    message = await emu.send_message(user, SECRETARIAT, mention_bot=True)
    [reply] = await emu.wait_for(lambda: emu.replies_to(message), timeout=60)
    embed = reply.body["embeds"][0]
    assert "Park Jung-sook" in embed["description"] and "footer" not in embed and "Sorry" not in json.dumps(reply.body)


async def test_generated_answers_are_limited_per_member(
    emu: DiscordEmulator, start_bot: StartBot, engine: Engine, embedder: Embedder, server: ModelServer
) -> None:
    user = emu.add_member("iris")
    await start_bot(with_generator(engine, embedder, server, generator_max_per_minute=1))
    server.script(*[lambda r: f"{PARK} [{holding(r, 'Park Jung-sook')}]."] * 2)
    footers = []
    for _ in range(2):
        message = await emu.send_message(user, SECRETARIAT, mention_bot=True)
        [reply] = await emu.wait_for(lambda m=message: emu.replies_to(m), timeout=60)
        await asyncio.sleep(0.5)
        [current] = [m for m in emu.messages.values() if m["id"] == reply.response["id"]]
        footers.append(current["embeds"][0].get("footer", {}).get("text", ""))
    assert footers[0].startswith("Written by") and footers[1] == "" and len(server.chat_requests) == 1
