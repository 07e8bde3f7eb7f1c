"""The pure rules, tested directly: no model, no index, no emulator (`make test-fast`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.calibration import Calibrator
from bot.cogs.ask import Cooldown
from bot.history import Conversations, Turn, follow_up_query, given_answers
from bot.logdb import LogError, PostgreSQL, SQLite, from_url
from bot.question import same_answer
from bot.stats import chart_png, summary
from index.documents import load_corpus, paragraph_spans
from index.lexical import tokenize
from index.passages import Chunking, chunk, sentence_windows
from index.vectors import factory_string


def test_factory_string_is_exact_up_to_the_threshold_then_ivf() -> None:
    assert factory_string("auto", 200_000, 200_000) == "Flat"
    assert factory_string("auto", 1_000_000, 200_000) == "IVF4096,SQ8"
    assert factory_string("auto", 300, 100) == "IVF64,SQ8"
    assert factory_string("HNSW32,Flat", 10, 100) == "HNSW32,Flat", "an explicit factory string is kept"


def test_sentence_windows_fill_up_to_the_limit_and_share_the_overlap() -> None:
    assert list(sentence_windows([10, 10, 10, 10], Chunking(max_chars=21, overlap=1))) == [(0, 2), (1, 3), (2, 4)]
    assert list(sentence_windows([10, 10, 10], Chunking(max_chars=100, overlap=1))) == [(0, 3)]
    assert list(sentence_windows([50, 50], Chunking(max_chars=20, overlap=3))) == [(0, 1), (1, 2)], "always moves"


def test_paragraph_spans_split_on_blank_lines_and_drop_a_line_repeated_at_once() -> None:
    text = "Title\n\nCaption.\nCaption.\nBody one\ncontinues.\n\n\nLast."
    assert [text[a:b] for a, b in paragraph_spans(text, 0)] == ["Title", "Caption.", "Body one\ncontinues.", "Last."]
    assert [text[a:b] for a, b in paragraph_spans(text, 7)] == ["Caption.", "Body one\ncontinues.", "Last."]


def test_a_hard_wrapped_paragraph_stays_one_paragraph_of_whole_sentences(tmp_path: Path) -> None:
    (tmp_path / "doc.md").write_text(
        "# Wrapped\n\nThe league opens in Bergen and its head\ncoach is Maria Lindqvist. Twelve clubs race\nthis year."
        "\n\nSecond paragraph.\n",
        encoding="utf-8",
    )
    [doc] = load_corpus(tmp_path)
    _, sentences = chunk([doc], Chunking())
    assert [(s.paragraph, s.text) for s in sentences] == [
        (1, "The league opens in Bergen and its head coach is Maria Lindqvist."),
        (1, "Twelve clubs race this year."),
        (2, "Second paragraph."),
    ]


def test_tokens_meet_across_inflections_and_drop_question_words() -> None:
    assert tokenize("What did Rubinstein say about the cities?") == tokenize("Rubinstein said about a city")
    assert tokenize("Where was it held? Who heads WeGO's office?") == ["hold", "head", "wego", "offic"]


def test_same_answer_ignores_case_punctuation_articles_and_extra_words() -> None:
    assert same_answer("Secretary-General Park Jung-sook", "Park Jung-sook")
    assert same_answer("the Bryggen waterfront", "Bryggen Waterfront.")
    assert not same_answer("Seoul", "Stockholm")


def test_a_follow_up_is_searched_with_the_answer_it_follows() -> None:
    history = [Turn("Who gave the keynote address?", "Rubinstein")]
    assert follow_up_query("Where is she based?", history) == "Rubinstein Where is she based?"
    assert follow_up_query("And when?", [Turn("Where was it held?")]) == "And when?", "an abstention adds nothing"
    assert follow_up_query("Who founded WeGO?", []) == "Who founded WeGO?"
    assert given_answers([Turn("a", "Seoul"), Turn("b"), Turn("c", "Stockholm")]) == ("Seoul", "Stockholm")


def test_conversations_keep_the_last_turns_apart_and_forget_idle_ones() -> None:
    now = [0.0]
    memory = Conversations(turns=2, ttl_seconds=60, clock=lambda: now[0])
    for n in range(3):
        memory.record("thread", Turn(f"q{n}"))
    memory.record("dm", Turn("other"))
    assert [t.question for t in memory.history("thread")] == ["q1", "q2"]
    assert memory.history("dm") == (Turn("other"),) and memory.history("new") == ()
    now[0] = 50.0
    memory.record("dm", Turn("again"))
    now[0] = 70.0
    assert memory.history("thread") == () and len(memory.history("dm")) == 2 and len(memory) == 1


def test_no_history_is_kept_when_turns_is_zero() -> None:
    memory = Conversations(turns=0, ttl_seconds=60)
    memory.record("thread", Turn("q"))
    assert memory.history("thread") == ()


def test_cooldown_counts_from_the_last_accepted_question(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr("bot.cogs.ask.time.monotonic", lambda: now[0])
    cooldown = Cooldown(3.0)
    assert cooldown.retry_after(1) == 0.0 and cooldown.retry_after(2) == 0.0
    now[0] = 101.0
    assert cooldown.retry_after(1) == pytest.approx(2.0)
    now[0] = 103.0
    assert cooldown.retry_after(1) == 0.0
    assert Cooldown(0).retry_after(1) == 0.0 and Cooldown(0).retry_after(1) == 0.0


def test_cooldown_forgets_users_whose_wait_is_over_and_refuses_each_once_per_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [100.0]
    monkeypatch.setattr("bot.cogs.ask.time.monotonic", lambda: now[0])
    cooldown = Cooldown(3.0)
    for user in range(1000):
        assert cooldown.retry_after(user) == 0.0
    assert len(cooldown) == 1000 and not cooldown.told_to_wait(7)
    assert cooldown.retry_after(7) > 0 and cooldown.told_to_wait(7), "refused once: later messages get no reply"
    now[0] = 102.0
    assert cooldown.retry_after(5000) == 0.0 and len(cooldown) == 1001
    now[0] = 103.0
    assert not cooldown.told_to_wait(7) and len(cooldown) == 1, "only the user still waiting is remembered"
    assert cooldown.retry_after(7) == 0.0 and len(cooldown) == 2
    silent = Cooldown(0)
    assert all(silent.retry_after(user) == 0.0 for user in (1, 1, 2)) and len(silent) <= 1


def test_calibrator_probability_and_json_round_trip() -> None:
    calibrator = Calibrator(("margin", "rank"), (0.0, 1.0), (2.0, 1.0), (1.0, -1.0), 0.0, 0.5)
    assert calibrator.probability({"margin": 0.0, "rank": 1.0}) == pytest.approx(0.5)
    assert calibrator.probability({"margin": 4.0, "rank": 0.0}) == pytest.approx(1 / (1 + np.exp(-3.0)))
    assert Calibrator.from_json(calibrator.to_json()) == calibrator


def test_database_urls() -> None:
    assert from_url("sqlite:////srv/articlebot/log.db").path == Path("/srv/articlebot/log.db")
    assert from_url("sqlite:///data/articlebot.db").path == Path("data/articlebot.db")
    assert isinstance(from_url("sqlite:///data/articlebot.db"), SQLite)
    postgres = from_url("postgresql://bot:s3cret@db.example:5432/articlebot?password=s3cret")
    assert isinstance(postgres, PostgreSQL) and postgres.path is None
    assert postgres.name == "postgresql://bot:***@db.example:5432/articlebot?password=***"
    assert postgres.scrub('in "postgresql://bot:s3cret@db"') == 'in "postgresql://bot:***@db"'
    with pytest.raises(LogError, match=r"sqlite:///.*postgresql://") as refused:
        from_url("mysql://bot:s3cret@db/articlebot")
    assert "s3cret" not in str(refused.value)


def test_stats_summary_and_chart() -> None:
    stats = {
        "days": 7,
        "questions": 4,
        "answered": 3,
        "abstained": 1,
        "abstention_rate": 0.25,
        "votes": {"up": 2, "down": 1},
        "median_latency_ms": 81.4,
        "per_day": [{"date": "2026-11-24", "questions": 4, "abstained": 1}],
        "gaps": [{"question": "Who founded WeGO?", "count": 1, "abstained": 1, "down": 0}],
    }
    text = summary(stats)
    assert text.startswith(
        "Last 7 days: 4 questions, 3 answered, 1 not answered (25%); 2 👍, 1 👎; median latency 81 ms"
    )
    assert text.endswith("1 × Who founded WeGO?")
    assert chart_png(stats).startswith(b"\x89PNG")


def test_stats_summary_lists_the_most_active_servers_when_there_are_several() -> None:
    one = {"guild_id": 7, "questions": 4, "answered": 3}
    stats = {"days": 7, "questions": 4, "answered": 3, "abstained": 1, "abstention_rate": 0.25}
    stats |= {"votes": {"up": 0, "down": 0}, "median_latency_ms": 80.0, "per_day": [], "gaps": [], "servers": [one]}
    assert "server" not in summary(stats), "one place: the totals say it all"
    stats["servers"] = [one] + [{"guild_id": n, "questions": 1, "answered": 0} for n in range(10, 16)]
    stats["servers"].append({"guild_id": None, "questions": 1, "answered": 1})
    lines = summary(stats).splitlines()
    assert lines[1:5] == [
        "",
        "Most active servers:",
        "   4 asked, 3 answered · server 7",
        "   1 asked, 0 answered · server 10",
    ]
    assert lines[-1] == "     … and 3 more" and len(lines) == 9
