"""The question log on real SQLite files: migrations, votes, stats, privacy, retention, concurrent writers, and a
broken database that never stops answering."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from bot.engine import Engine
from bot.logdb import SQLite
from bot.questionlog import COMMENT_CHARS, MIGRATIONS, SALT_FILE, LogError, Origin, QuestionLog, open_log
from bot.replies import Answer
from bot.settings import Settings

pytestmark = pytest.mark.slow

USER = 424242424242424242


@pytest.fixture(scope="module")
def answers(engine: Engine) -> dict[str, Answer]:
    """Real answers: two answered questions and one the article does not answer."""
    questions = ("Who heads WeGO's secretariat?", "Where is Joanna Rubinstein based?", "What is the capital of France?")
    return {q: engine.ask(q) for q in questions}


def fresh(tmp_path: Path) -> QuestionLog:
    return QuestionLog.open(f"sqlite:///{tmp_path / 'log.db'}", None, 90)


def test_an_empty_file_is_migrated_to_the_latest_schema(tmp_path: Path) -> None:
    log = fresh(tmp_path)
    assert log.version == len(MIGRATIONS) == 3
    tables = {r[0] for r in sqlite3.connect(log.path).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"questions", "votes"} <= tables
    assert sqlite3.connect(log.path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_previous_schema_is_migrated_keeping_its_rows(tmp_path: Path, answers: dict[str, Answer]) -> None:
    path = tmp_path / "log.db"
    old = sqlite3.connect(path)
    old.executescript(SQLite(path).sql(MIGRATIONS[0]) + "PRAGMA user_version = 1;")
    old.execute(
        "INSERT INTO questions VALUES (NULL, '2026-11-01T10:00:00.000+00:00', 'ask', NULL, NULL, NULL, "
        "'Who heads the secretariat?', 'Park Jung-sook', NULL, 0, 0.5, '[]', 80.0)"
    )
    old.commit()
    old.close()
    log = QuestionLog.open(f"sqlite:///{path}", "salt", 3650)
    assert log.version == len(MIGRATIONS)
    [row] = list(log.rows(days=3650))
    assert row["question"] == "Who heads the secretariat?"
    assert log.vote(row["id"], USER, up=True) and log.stats(days=3650)["votes"] == {"up": 1, "down": 0}


def test_a_newer_schema_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    sqlite3.connect(path).execute("PRAGMA user_version = 99")
    with pytest.raises(LogError, match="newer than this articlebot"):
        QuestionLog.open(f"sqlite:///{path}", "salt", 90)


def test_stats_count_answers_votes_and_gaps(tmp_path: Path, answers: dict[str, Answer]) -> None:
    log = fresh(tmp_path)
    ids = {q: log.record(a, Origin("discord", 1, 2, USER), 100.0 + n) for n, (q, a) in enumerate(answers.items())}
    log.record(answers["What is the capital of France?"], Origin("ask"), 90.0)
    secretariat = ids["Who heads WeGO's secretariat?"]
    assert log.vote(secretariat, USER, up=True)
    assert log.vote(secretariat, USER, up=False, comment="It should say where the secretariat is")
    assert log.vote(secretariat, USER + 1, up=True)
    assert not log.vote(10_000, USER, up=True), "no such question"

    stats = log.stats(days=7)
    assert (stats["questions"], stats["answered"], stats["abstained"]) == (4, 2, 2)
    assert stats["votes"] == {"up": 1, "down": 1}, "a second vote changes the first"
    assert stats["median_latency_ms"] == 100.5 and stats["abstention_rate"] == 0.5
    [today] = stats["per_day"]
    assert today["questions"] == 4 and today["abstained"] == 2
    assert [(g["question"], g["count"], g["abstained"], g["down"]) for g in stats["gaps"]] == [
        ("What is the capital of France?", 2, 2, 0),
        ("Who heads WeGO's secretariat?", 1, 0, 1),
    ]
    comments = {r["question"]: r["comments"] for r in log.rows(days=7)}
    assert comments["Who heads WeGO's secretariat?"] == "It should say where the secretariat is"


def test_user_ids_are_stored_only_as_keyed_hashes(tmp_path: Path, answers: dict[str, Answer]) -> None:
    log = fresh(tmp_path)
    log.record(answers["What is the capital of France?"], Origin("discord", 1, 2, USER), 50.0)
    log.close()
    salt = tmp_path / SALT_FILE
    assert salt.stat().st_mode & 0o777 == 0o600 and len(salt.read_text()) == 64
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("log.db*"))
    assert str(USER).encode() not in stored
    [row] = list(fresh(tmp_path).rows(days=1))
    assert row["user_hash"] and row["user_hash"] != str(USER)
    other = QuestionLog.open(f"sqlite:///{tmp_path / 'other.db'}", "another salt", 90)
    other.record(answers["What is the capital of France?"], Origin("discord", 1, 2, USER), 50.0)
    assert next(other.rows(days=1))["user_hash"] != row["user_hash"], "the hash depends on the salt"


def test_old_rows_are_deleted_when_the_log_opens_and_by_expire(tmp_path: Path, answers: dict[str, Answer]) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    log = QuestionLog.open(url, "salt", retention_days=30)
    answer = answers["What is the capital of France?"]
    old, kept = (log.record(answer, Origin("discord", 1, 2, USER), 50.0) for _ in range(2))
    assert old is not None and log.vote(old, USER, up=False, comment="stale")
    backdate(log.path, old)
    log.close()

    reopened = QuestionLog.open(url, "salt", retention_days=30)  # no new question needed
    assert [r["id"] for r in reopened.rows(days=10_000)] == [kept]
    assert sqlite3.connect(reopened.path).execute("SELECT count(*) FROM votes").fetchone()[0] == 0, "votes go too"
    backdate(reopened.path, kept)
    assert reopened.expire() == 1 and list(reopened.rows(days=10_000)) == []


def backdate(path: Path, question_id: int | None) -> None:
    """Make a logged question six years old."""
    db = sqlite3.connect(path)
    db.execute("UPDATE questions SET asked_at = '2020-01-01T00:00:00.000+00:00' WHERE id = ?", (question_id,))
    db.commit()
    db.close()


def test_the_database_and_the_salt_are_created_readable_by_the_owner_only(
    tmp_path: Path, answers: dict[str, Answer]
) -> None:
    previous = os.umask(0o022)  # a default umask: files would otherwise be created 0644
    try:
        log = QuestionLog.open(f"sqlite:///{tmp_path / 'data' / 'log.db'}", None, 90)
        log.record(answers["What is the capital of France?"], Origin("ask"), 5.0)
        files = sorted(p.name for p in (tmp_path / "data").iterdir())
        assert files == [SALT_FILE, "log.db", "log.db-shm", "log.db-wal"], "no temporary salt left behind"
        modes = {name: (tmp_path / "data" / name).stat().st_mode & 0o777 for name in files}
        assert modes == dict.fromkeys(files, 0o600)
    finally:
        os.umask(previous)


def test_logs_opened_at_once_share_one_salt_and_one_schema(tmp_path: Path) -> None:
    def open_all(urls: list[str]) -> list[QuestionLog]:
        opened: list[QuestionLog] = []
        threads = [threading.Thread(target=lambda u=url: opened.append(QuestionLog.open(u, None, 90))) for url in urls]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return opened

    apart = open_all([f"sqlite:///{tmp_path / f'log-{n}.db'}" for n in range(8)])  # one folder: one salt
    salts = {log._salt for log in apart}
    assert len(apart) == 8 and len(salts) == 1 and len(salts.pop()) == 64
    assert sorted(p.name for p in tmp_path.iterdir() if "salt" in p.name) == [SALT_FILE]
    shared = open_all([f"sqlite:///{tmp_path / 'shared.db'}"] * 4)
    assert len(shared) == 4 and {log.version for log in shared} == {len(MIGRATIONS)}


def test_every_members_comment_is_kept_and_cut_to_the_limit(tmp_path: Path, answers: dict[str, Answer]) -> None:
    log = fresh(tmp_path)
    question = log.record(answers["Who heads WeGO's secretariat?"], Origin("discord", 1, 2, USER), 50.0)
    assert question is not None
    assert log.vote(question, USER, up=False, comment="It should say where.")
    assert log.vote(question, USER + 1, up=False, comment="x" * 5000)
    [row] = list(log.rows(days=1))
    assert row["down"] == 2 and sorted(row["comments"].split(" | ")) == ["It should say where.", "x" * COMMENT_CHARS]


def test_concurrent_writers_lose_nothing(tmp_path: Path, answers: dict[str, Answer]) -> None:
    log = fresh(tmp_path)
    answer = answers["Where is Joanna Rubinstein based?"]
    ids: list[int | None] = []

    def write(user: int) -> None:
        ids.extend(log.record(answer, Origin("discord", 1, 2, user), 10.0) for _ in range(25))

    threads = [threading.Thread(target=write, args=(u,)) for u in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 200 and None not in ids
    assert log.stats(days=1)["questions"] == 200


def test_a_locked_database_logs_one_error_and_answering_goes_on(
    tmp_path: Path, answers: dict[str, Answer], caplog: pytest.LogCaptureFixture
) -> None:
    log = fresh(tmp_path)
    blocker = sqlite3.connect(log.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    with caplog.at_level(logging.ERROR, logger="bot.questionlog"):
        assert log.record(answers["What is the capital of France?"], Origin("ask"), 5.0) is None
        assert log.record(answers["What is the capital of France?"], Origin("ask"), 5.0) is None
    assert len([r for r in caplog.records if "could not record" in r.message]) == 1
    blocker.execute("ROLLBACK")
    assert log.record(answers["What is the capital of France?"], Origin("ask"), 5.0) is not None


def test_a_corrupt_file_disables_the_log_with_one_error(
    tmp_path: Path, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "log.db"
    path.write_bytes(b"this is not a database" * 100)
    with caplog.at_level(logging.ERROR, logger="bot.questionlog"):
        assert open_log(settings.model_copy(update={"database_url": f"sqlite:///{path}"})) is None
    assert "question log disabled" in caplog.text and "LOG_QUESTIONS=false" in caplog.text
    assert open_log(settings.model_copy(update={"log_questions": False})) is None
