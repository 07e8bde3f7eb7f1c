"""The installed `articlebot` command, run as a user would: JSON schema, batches, bad input, idempotent builds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ARTICLEBOT = str(Path(sys.executable).parent / "articlebot")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment with its own index folder, run from an empty folder so no developer `.env` is read."""
    home = tmp_path_factory.mktemp("cli")
    clean = {k: v for k, v in os.environ.items() if k not in {"DISCORD_TOKEN", "CORPUS_DIR"}}
    return {**clean, "INDEX_DIR": str(home / "index"), "CLI_HOME": str(home)}


def articlebot(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ARTICLEBOT, *args], env=env, cwd=env["CLI_HOME"], input=stdin, capture_output=True, text=True, timeout=120
    )


def test_build_twice_is_idempotent(env: dict[str, str]) -> None:
    first, second = articlebot(env, "build"), articlebot(env, "build")
    assert first.returncode == 0 and "Index built: 1 documents, 12 passages" in first.stdout
    assert second.returncode == 0 and "Index up to date: 1 documents, 12 passages" in second.stdout


def test_ask_json_matches_the_schema(env: dict[str, str]) -> None:
    run = articlebot(env, "ask", "--json", "Who heads WeGO's secretariat?")
    data = json.loads(run.stdout)
    assert {"question", "answer", "short_answer", "abstained", "citations", "confidence", "timings_ms"} <= set(data)
    assert data["abstained"] is False and "Park Jung-sook" in data["answer"] and "[1]" in data["answer"]
    assert "Park Jung-sook" in data["short_answer"] and 0 < data["confidence"] <= 1
    assert all(c["text"] for c in data["citations"])
    citation = data["citations"][0]
    assert {"n", "document", "title", "paragraph", "text", "score"} <= set(citation)
    assert citation["n"] == 1 and citation["paragraph"] == 11 and "Park Jung-sook" in citation["text"]


def test_batch_answers_one_line_per_question(env: dict[str, str]) -> None:
    run = articlebot(
        env, "ask", "--json", "--batch", "-", stdin="Where is Rubinstein based?\n\nWhat is the capital of France?\n"
    )
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(lines) == 3
    assert "Stockholm" in lines[0]["answer"]
    assert "error" in lines[1]
    assert lines[2]["abstained"] is True and lines[2]["citations"] == []


def test_bad_questions_get_hints_not_tracebacks(env: dict[str, str]) -> None:
    empty = articlebot(env, "ask", "   ")
    assert empty.returncode == 2 and "Ask a question about the article" in empty.stderr
    long = articlebot({**env, "MAX_QUESTION_CHARS": "20"}, "ask", "x" * 50)
    assert long.returncode == 2 and "under 20" in long.stderr
    invalid = articlebot({**env, "MAX_QUESTION_CHARS": "abc"}, "ask", "hi")
    assert invalid.returncode == 1 and invalid.stderr.startswith("error: invalid configuration: MAX_QUESTION_CHARS")
    assert "Traceback" not in empty.stderr + long.stderr + invalid.stderr


def test_chat_and_run_without_token(env: dict[str, str]) -> None:
    chat = articlebot(env, "chat", stdin="Who heads WeGO's secretariat?\nquit\n")
    assert chat.returncode == 0 and "Park Jung-sook" in chat.stdout
    run = articlebot(env, "run")
    assert run.returncode == 1
    assert run.stderr.strip().count("\n") == 0 and "DISCORD_TOKEN is not set" in run.stderr
