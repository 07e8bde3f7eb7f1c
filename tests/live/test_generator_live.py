"""Generated answers from a real model server (named by GENERATOR_URL: see conftest.py), with the real engine,
model and index of the bundled article: what tests/test_generator.py checks with a scripted emulator, where the
draft is now the model's own and so only its properties can be checked.

A well-answered question gets a generated answer naming Park Jung-sook whose every kept sentence cites passages
of the answer that hold its numbers and names, or the extractive answer with what was dropped; the draft is
shown as it streams; an off-topic question is never sent; a server that does not answer in time gives the
extractive answer and one log line; `articlebot ask --json` does the same from the environment.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import pytest

from bot.engine import Engine
from bot.grounding import SUPPORT_THRESHOLD, names
from bot.history import Turn
from bot.question import numbers
from bot.replies import Answer
from index.embedder import Embedder

pytestmark = pytest.mark.timeout(600)  # a model on a CPU may take a minute an answer

SECRETARIAT = "Who heads WeGO's secretariat?"
OFF_TOPIC = ("What is the capital of Australia?", "how do i reset my wifi router")
PARK = "Park Jung-sook"
TIMEOUT_SECONDS = 0.01  # no model answers a whole prompt in 10 ms
ARTICLEBOT = str(Path(sys.executable).parent / "articlebot")


async def write(engine: Engine, question: str, history: Sequence[Turn] = ()) -> tuple[Answer, Answer, list[str]]:
    """The extractive answer, what the generator made of it, and the drafts it showed while the model wrote."""
    drafts: list[str] = []

    async def show(draft: str) -> None:
        drafts.append(draft)

    extractive = await asyncio.to_thread(engine.ask, question, history)
    assert engine.generator is not None
    return extractive, await engine.generator.write(extractive, history, show), drafts


def assert_checked(answer: Answer) -> None:
    """The check's invariant on a generated answer: every sentence cites passages of the answer, numbered 1…n in
    order of first use, that state its numbers and names and support it; each is in the text with its markers."""
    cited = {c.n: c.text for c in answer.citations}
    first_use = list(dict.fromkeys(n for s in answer.sentences for n in s.citations))
    assert answer.sentences and first_use == list(cited) == list(range(1, len(cited) + 1))
    for sentence in answer.sentences:
        sources = " ".join(cited[n] for n in sentence.citations)
        assert numbers(sentence.text) <= numbers(sources), (sentence, sources)
        assert all(name.casefold() in sources.casefold() for name in names(sentence.text)), (sentence, sources)
        assert sentence.support >= SUPPORT_THRESHOLD
        assert sentence.text + " " + "".join(f"[{n}]" for n in sentence.citations) in answer.text
    assert all(d.text and d.reason for d in answer.dropped)


async def test_a_well_answered_question_gets_checked_sentences_or_the_extractive_answer(live: Engine, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.generator"):
        extractive, answer, drafts = await write(live, SECRETARIAT)

    assert not extractive.abstained and PARK in extractive.text
    assert "generate" in answer.timings_ms and "check" in answer.timings_ms, f"the server failed: {caplog.text}"
    written = [d for d in drafts if d]
    assert written, "the model streamed no text (a reasoning model may spend its tokens elsewhere)"
    assert all(b.startswith(a) for a, b in itertools.pairwise(drafts)), "each draft shown extends the last"
    if answer.generated:
        assert_checked(answer)
        assert PARK.casefold() in answer.text.casefold() and not answer.abstained
        assert answer.confidence == extractive.confidence and answer.answer_type == "evidence"
    else:
        assert answer.text == extractive.text and answer.citations == extractive.citations and answer.dropped
        warnings.warn(f"nothing the model wrote survived the check: {answer.dropped}", stacklevel=1)


async def test_a_follow_up_is_written_with_its_conversation(live: Engine) -> None:
    first = await asyncio.to_thread(live.ask, SECRETARIAT)
    extractive, answer, _ = await write(live, "Where is it based?", [Turn.of(first)])
    if answer.generated:
        assert_checked(answer)
    else:
        assert answer.text == extractive.text


@pytest.mark.parametrize("question", OFF_TOPIC)
async def test_an_off_topic_question_is_never_sent(live: Engine, caplog, question: str) -> None:
    with caplog.at_level(logging.INFO, logger="bot.generator"):
        extractive, answer, drafts = await write(live, question)
    assert extractive.abstained and answer is extractive and drafts == []
    assert "generate" not in answer.timings_ms and [r for r in caplog.records if r.name == "bot.generator"] == []


async def test_a_server_that_does_not_answer_in_time_gives_the_extractive_answer_and_one_log_line(
    live: Engine, embedder: Embedder, caplog
) -> None:
    settings = live.settings.model_copy(update={"generator_timeout_seconds": TIMEOUT_SECONDS})
    hurried = Engine(settings, embedder, live.answerer)
    with caplog.at_level(logging.INFO, logger="bot"):
        extractive, answer, _ = await write(hurried, SECRETARIAT)
    assert not answer.generated and answer.text == extractive.text and PARK in answer.text
    [line] = [r for r in caplog.records if r.name == "bot.generator"]
    assert line.levelno == logging.WARNING and "TimeoutError" in line.getMessage()
    key = live.settings.generator_api_key
    assert key is None or key.get_secret_value() not in caplog.text


async def test_ask_json_writes_from_the_environment(
    live: Engine, server_environment: dict[str, str], tmp_path: Path
) -> None:
    settings = live.settings
    env = {k: v for k, v in os.environ.items() if k.lower() not in type(settings).model_fields}
    env |= server_environment | {
        "INDEX_DIR": str(settings.index_dir),
        "SERVERS_DIR": str(tmp_path / "servers"),
        "LOG_QUESTIONS": "false",
        "HF_HUB_OFFLINE": "1",
    }
    process = await asyncio.create_subprocess_exec(
        ARTICLEBOT,
        "ask",
        "--json",
        SECRETARIAT,
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=500)
    assert process.returncode == 0, err.decode()
    answer = json.loads(out)
    assert answer["generated"] or answer["dropped"], f"the model server failed: {err.decode()[-500:]}"
    assert PARK.casefold() in answer["answer"].casefold()
    given = [c["n"] for c in answer["citations"]]
    assert all(s["citations"] and set(s["citations"]) <= set(given) for s in answer["sentences"])
