"""The installed `articlebot` command, run as a user would: JSON schema, batches, bad input, idempotent builds,
adding and removing documents."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fpdf import FPDF

from bot.settings import BUNDLED_CORPUS

pytestmark = pytest.mark.slow

ARTICLEBOT = str(Path(sys.executable).parent / "articlebot")
TUNNEL = "the-harwick-railway-tunnel.md"  # the corpus file of the PDF the tests add


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment with its own index folder, run from an empty folder so no developer `.env` is read."""
    home = tmp_path_factory.mktemp("cli")
    ignored = {"DISCORD_TOKEN", "CORPUS_DIR", "ALLOW_PRIVATE_URLS", "ALLOWED_PRIVATE_HOSTS", "MAX_DOCUMENT_BYTES"}
    clean = {k: v for k, v in os.environ.items() if k not in ignored}
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


def test_chat_json_is_a_conversation_of_json_lines(env: dict[str, str]) -> None:
    turns = "Who heads WeGO's secretariat?\nIn which city is her office?\n\nWhat is the capital of France?\n"
    run = articlebot(env, "chat", "--json", stdin=turns)
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert run.returncode == 0 and len(lines) == 4
    assert "Secretary-General" in lines[0]["answer"] and lines[0]["question"] == "Who heads WeGO's secretariat?"
    assert lines[1]["short_answer"] == "Seoul" and lines[1]["citations"][0]["paragraph"] == 11
    assert "error" in lines[2] and lines[3]["abstained"] is True


def test_chat_without_history_answers_each_question_alone(env: dict[str, str]) -> None:
    turns = "Who heads WeGO's secretariat?\nIn which city is her office?\n"
    lines = articlebot({**env, "HISTORY_TURNS": "0"}, "chat", "--json", stdin=turns).stdout.splitlines()
    alone = json.loads(lines[1])
    assert alone["abstained"] or alone["citations"][0]["paragraph"] != 11, "'her' is nobody without history"


def test_stats_summarise_and_export_the_question_log(env: dict[str, str], tmp_path: Path) -> None:
    logged = {**env, "DATABASE_URL": f"sqlite:///{tmp_path / 'log.db'}"}
    articlebot(logged, "ask", "Who heads WeGO's secretariat?")
    articlebot(logged, "chat", "--json", stdin="What is the capital of France?\nWhat is the capital of France?\n")
    stats = json.loads(articlebot(logged, "stats", "--json").stdout)
    assert (stats["questions"], stats["answered"], stats["abstained"]) == (3, 1, 2)
    assert stats["votes"] == {"up": 0, "down": 0} and stats["median_latency_ms"] > 0
    assert stats["gaps"] == [{"question": "What is the capital of France?", "count": 2, "abstained": 2, "down": 0}]
    assert [d["questions"] for d in stats["per_day"]] == [3]
    export = articlebot(logged, "stats", "--csv").stdout.splitlines()
    assert export[0].startswith("id,asked_at,front_end") and len(export) == 4
    assert "3 questions, 1 answered, 2 not answered" in articlebot(logged, "stats").stdout
    articlebot({**logged, "LOG_QUESTIONS": "false"}, "ask", "Who heads WeGO's secretariat?")
    assert json.loads(articlebot(logged, "stats", "--json").stdout)["questions"] == 3


@pytest.fixture
def own_corpus(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The environment with a writable copy of the bundled corpus and its own index."""
    corpus = shutil.copytree(BUNDLED_CORPUS, tmp_path / "corpus")
    return {**env, "CORPUS_DIR": str(corpus), "INDEX_DIR": str(tmp_path / "index")}


def corpus_files(env: dict[str, str]) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(env["CORPUS_DIR"]).iterdir())}


def test_adding_a_private_address_is_refused(own_corpus: dict[str, str]) -> None:
    before = corpus_files(own_corpus)
    run = articlebot(own_corpus, "add", "http://localhost/")
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.startswith("error: http://localhost/: localhost resolves to a private address")
    assert "ALLOWED_PRIVATE_HOSTS" in run.stderr and run.stdout == ""
    assert corpus_files(own_corpus) == before


def test_a_pdf_is_added_listed_and_removed(own_corpus: dict[str, str], tmp_path: Path) -> None:
    pdf = FPDF()
    pdf.set_title("The Harwick Railway Tunnel")
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()
    pdf.multi_cell(0, 6, "The Harwick railway tunnel carries the northern line under the Pellam hills.")
    pdf.add_page()
    pdf.multi_cell(0, 6, "The Harwick tunnel is 4.2 kilometres long. It was opened to passenger trains in 1911.")
    path = tmp_path / "harwick.pdf"
    path.write_bytes(bytes(pdf.output()))

    added = articlebot(own_corpus, "add", str(path))
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith(f"Added “The Harwick Railway Tunnel” ({TUNNEL}): 2 paragraphs")
    listed = articlebot(own_corpus, "sources").stdout
    titles = [line for line in listed.splitlines() if line.startswith("- ")]
    assert len(titles) == 2 and "- The Harwick Railway Tunnel" in titles
    assert any(f"{TUNNEL} · added " in line and line.endswith("from a file") for line in listed.splitlines())

    removed = articlebot(own_corpus, "remove", TUNNEL)
    assert removed.returncode == 0 and removed.stdout.startswith("Removed “The Harwick Railway Tunnel”")
    assert sorted(corpus_files(own_corpus)) == sorted(p.name for p in BUNDLED_CORPUS.iterdir())


def test_the_bundled_article_cannot_be_changed(env: dict[str, str], tmp_path: Path) -> None:
    note = tmp_path / "note.md"
    note.write_text("# A note\n\nThe ferry to the island leaves every hour from the old harbour.\n", encoding="utf-8")
    run = articlebot(env, "add", str(note))
    assert run.returncode == 1 and "the bundled article cannot be changed: set CORPUS_DIR" in run.stderr
