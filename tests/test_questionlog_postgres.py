"""The question log on both of its databases, each test on a SQLite file and on a real PostgreSQL server (started
once, on 127.0.0.1, in a temporary folder): migrations from empty and from older schemas, concurrent writers in
threads and processes, per-server stats and `forget`; then PostgreSQL alone: a server stopped mid-burst, two
processes sharing one log, and a password that never shows."""

from __future__ import annotations

import json
import logging
import os
import secrets
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from postgres_server import PostgresServer, ServerUnavailable, free_port
from pydantic import SecretStr

from bot.logdb import from_url
from bot.questionlog import MIGRATIONS, LogError, Origin, QuestionLog, open_log
from bot.replies import Answer, Citation
from bot.settings import Settings

PASSWORD = f"pw-{secrets.token_hex(8)}"  # random, so that finding it anywhere means it leaked
SALT = "the same salt on every machine"
A, B = 111_111_111_111_111_111, 222_222_222_222_222_222  # two servers
USER = 424242424242424242
ROOT = Path(__file__).parent.parent

ANSWERED = Answer(
    "Who heads WeGO's secretariat?",
    "WeGO’s secretariat in Seoul is headed by Secretary-General Park Jung-sook. [1]",
    False,
    [Citation(1, "wego", "6th WeGO General Assembly", 11, "WeGO’s secretariat in Seoul is headed by …", 0.9)],
    short_answer="Secretary-General Park Jung-sook",
    confidence=0.91,
)
UNANSWERED = Answer(
    "What is the capital of France?", "The article doesn't seem to answer that.", True, [], confidence=0.1
)

# The schema as the previous articlebot created it on SQLite (version 2), written out by hand.
SQLITE_VERSION_2 = """
CREATE TABLE questions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, asked_at TEXT NOT NULL, front_end TEXT NOT NULL, guild_id TEXT,
    channel_id TEXT, user_hash TEXT, question TEXT NOT NULL, answer TEXT NOT NULL, short_answer TEXT,
    abstained INTEGER NOT NULL, confidence REAL NOT NULL, citations TEXT NOT NULL, latency_ms REAL NOT NULL
);
CREATE INDEX questions_asked_at ON questions (asked_at);
CREATE TABLE votes (
    question_id INTEGER NOT NULL REFERENCES questions (id) ON DELETE CASCADE, user_hash TEXT NOT NULL,
    vote INTEGER NOT NULL CHECK (vote IN (-1, 1)), comment TEXT, voted_at TEXT NOT NULL,
    PRIMARY KEY (question_id, user_hash)
);
PRAGMA user_version = 2;
"""
OLD_ROW = (
    "INSERT INTO questions (asked_at, front_end, guild_id, channel_id, user_hash, question, answer, short_answer, "
    "abstained, confidence, citations, latency_ms) VALUES ('2026-11-01T10:00:00.000+00:00', 'discord', '1', '2', "
    "NULL, 'Who heads the secretariat?', 'Park Jung-sook', NULL, 0, 0.5, '[]', 80.0)"
)

WRITER = """
import json, sys, threading
from bot.questionlog import Origin, QuestionLog
from bot.replies import Answer

url, salt, first_user, threads, each = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
log = QuestionLog.open(url, salt, 90)
answer = Answer("Where is Joanna Rubinstein based?", "In New York. [1]", False, [])
ids = []
def write(user):
    ids.extend(log.record(answer, Origin("discord", 1, 2, user), 10.0) for _ in range(each))
workers = [threading.Thread(target=write, args=(first_user + n,)) for n in range(threads)]
for worker in workers:
    worker.start()
for worker in workers:
    worker.join()
print(json.dumps(ids))
"""
VOTER = """
import sys
from bot.questionlog import Origin, QuestionLog
from bot.replies import Answer

url, salt, question_id, user = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
log = QuestionLog.open(url, salt, 90)
assert log.vote(question_id, user, up=False, comment="It should say where the secretariat is")
assert log.record(Answer("Who founded WeGO?", "The article doesn't seem to answer that.", True, []), Origin("ask"), 9.0)
"""


class Backend:
    """One empty database for one test: the log's URL, raw SQL for what the log itself never writes, and the logs
    opened on it (closed after the test)."""

    url: str

    def __init__(self) -> None:
        self.opened: list[QuestionLog] = []

    def open(self) -> QuestionLog:
        log = QuestionLog.open(self.url, SALT, 90)
        self.opened.append(log)
        return log

    def old_schema(self, version: int) -> None:
        """The schema as an older articlebot left it at `version`, made by hand from the numbered steps."""
        words = from_url(self.url)  # renders the steps in this database's words; opens nothing
        for step in MIGRATIONS[:version]:
            for statement in filter(str.strip, step.split(";")):
                self.execute(words.sql(statement))
        self.set_version(version)

    def execute(self, sql: str, params: tuple = ()) -> list[tuple]:
        raise NotImplementedError

    def set_version(self, version: int) -> None:
        raise NotImplementedError

    def names(self) -> set[str]:
        """The tables and indexes."""
        raise NotImplementedError


class SQLiteFile(Backend):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path, self.url = path, f"sqlite:///{path}"

    def execute(self, sql: str, params: tuple = ()) -> list[tuple]:
        db = sqlite3.connect(self.path, isolation_level=None)
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()

    def set_version(self, version: int) -> None:
        self.execute(f"PRAGMA user_version = {version}")

    def names(self) -> set[str]:
        return {name for (name,) in self.execute("SELECT name FROM sqlite_master")}


class PostgresDatabase(Backend):
    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def execute(self, sql: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(self.url, autocommit=True) as db:
            cursor = db.execute(sql.replace("?", "%s") if params else sql, params)
            return cursor.fetchall() if cursor.description else []

    def set_version(self, version: int) -> None:
        self.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        self.execute("INSERT INTO schema_version VALUES (?)", (version,))

    def names(self) -> set[str]:
        found = self.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "UNION SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
        )
        return {name for (name,) in found}


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """The tests' own PostgreSQL server, started once; the PostgreSQL tests are skipped, saying why, without it."""
    try:
        server = PostgresServer(PASSWORD)
    except ServerUnavailable as exc:
        pytest.skip(f"PostgreSQL tests skipped: {exc}")
    yield server
    server.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """An empty database of each kind."""
    if request.param == "sqlite":
        database: Backend = SQLiteFile(tmp_path / "log.db")
    else:
        database = PostgresDatabase(request.getfixturevalue("postgres").create_database())
    yield database
    for log in database.opened:
        log.close()


@pytest.fixture
def pg(postgres: PostgresServer) -> Iterator[Backend]:
    """An empty PostgreSQL database."""
    database = PostgresDatabase(postgres.create_database())
    yield database
    for log in database.opened:
        log.close()


def test_an_empty_database_is_migrated_to_the_latest_schema(backend: Backend) -> None:
    log = backend.open()
    assert log.version == len(MIGRATIONS) == 3
    assert {"questions", "votes", "questions_asked_at", "questions_guild"} <= backend.names()
    assert backend.open().version == len(MIGRATIONS), "a second process opening it finds nothing to do"


@pytest.mark.parametrize("version", [1, len(MIGRATIONS) - 1])
def test_an_older_schema_is_migrated_keeping_its_rows(backend: Backend, version: int) -> None:
    backend.old_schema(version)
    backend.execute(OLD_ROW)
    log = backend.open()
    assert log.version == len(MIGRATIONS)
    [row] = list(log.rows(days=3650))
    assert (row["question"], row["guild_id"], row["latency_ms"]) == ("Who heads the secretariat?", "1", 80.0)
    assert log.vote(row["id"], USER, up=True) and log.stats(days=3650)["votes"] == {"up": 1, "down": 0}
    assert log.record(ANSWERED, Origin("ask"), 5.0) == row["id"] + 1, "new ids follow the old ones"


def test_a_sqlite_log_of_todays_version_opens_and_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "articlebot.db"
    old = sqlite3.connect(path)
    old.executescript(SQLITE_VERSION_2)
    old.execute(OLD_ROW)
    old.commit()
    old.close()
    log = QuestionLog.open(f"sqlite:///{path}", "salt", 3650)
    assert log.version == len(MIGRATIONS)
    assert [r["question"] for r in log.rows(days=3650)] == ["Who heads the secretariat?"]
    assert log.stats(days=3650, guild_id=1)["questions"] == 1
    log.close()


def test_concurrent_writers_lose_nothing(backend: Backend) -> None:
    log = backend.open()
    ids: list[int | None] = []

    def write(user: int) -> None:
        ids.extend(log.record(ANSWERED, Origin("discord", A, 2, user), 10.0) for _ in range(25))

    threads = [threading.Thread(target=write, args=(u,)) for u in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 200 and None not in ids
    assert log.stats(days=1)["questions"] == 200


def test_per_server_stats_and_forget(backend: Backend) -> None:
    log = backend.open()
    asked_in_a = [log.record(a, Origin("discord", A, 1, USER), 50.0) for a in (ANSWERED, UNANSWERED, UNANSWERED)]
    asked_in_b = log.record(ANSWERED, Origin("discord", B, 2, USER), 70.0)
    log.record(UNANSWERED, Origin("ask"), 10.0)  # the terminal: no server
    assert asked_in_a[0] is not None and asked_in_b is not None
    assert log.vote(asked_in_a[0], USER, up=False, comment="Where is the secretariat?")
    assert log.vote(asked_in_b, USER, up=True)

    only_b = log.stats(days=1, guild_id=B)
    assert (only_b["questions"], only_b["answered"], only_b["votes"]) == (1, 1, {"up": 1, "down": 0})
    assert only_b["gaps"] == [] and "servers" not in only_b, "A's unanswered and voted-down questions are A's"
    assert [r["id"] for r in log.rows(days=1, guild_id=B)] == [asked_in_b]
    only_a = log.stats(days=1, guild_id=A)
    assert (only_a["questions"], only_a["votes"]) == (3, {"up": 0, "down": 1})
    assert [(g["question"], g["count"]) for g in only_a["gaps"]] == [
        ("What is the capital of France?", 2),
        ("Who heads WeGO's secretariat?", 1),
    ]
    everything = log.stats(days=1)
    assert everything["questions"] == 5 and everything["votes"] == {"up": 1, "down": 1}
    assert everything["servers"] == [
        {"guild_id": A, "questions": 3, "answered": 1},
        {"guild_id": B, "questions": 1, "answered": 1},
        {"guild_id": None, "questions": 1, "answered": 0},
    ]

    assert log.forget(A) == 3
    assert log.stats(days=1, guild_id=A)["questions"] == 0
    assert [r["id"] for r in log.rows(days=1, guild_id=B)] == [asked_in_b]
    assert backend.execute("SELECT question_id FROM votes") == [(asked_in_b,)], "A's votes went with A's questions"
    assert log.stats(days=1)["servers"] == [
        {"guild_id": B, "questions": 1, "answered": 1},
        {"guild_id": None, "questions": 1, "answered": 0},
    ]
    assert log.forget(A) == 0


def test_eight_writers_in_two_processes_lose_nothing(pg: Backend) -> None:
    children = [child(WRITER, pg.url, SALT, str(first_user), "4", "25") for first_user in (0, 100)]
    ids = [i for c in children for i in json.loads(finish(c))]
    assert len(ids) == 200 and len(set(ids)) == 200 and None not in ids
    assert pg.open().stats(days=1)["questions"] == 200


def test_a_vote_in_one_process_shows_in_another_ones_stats(pg: Backend) -> None:
    log = pg.open()
    question = log.record(ANSWERED, Origin("discord", A, 1, USER), 40.0)
    assert question is not None
    finish(child(VOTER, pg.url, SALT, str(question), str(USER + 1)))
    stats = log.stats(days=1)
    assert (stats["questions"], stats["votes"]) == (2, {"up": 0, "down": 1})
    assert [g["question"] for g in stats["gaps"]] == ["Who heads WeGO's secretariat?", "Who founded WeGO?"]
    [row] = list(log.rows(days=1, guild_id=A))
    assert row["comments"] == "It should say where the secretariat is"


def test_the_terminal_stats_of_one_server_of_a_postgresql_log(pg: Backend, tmp_path: Path) -> None:
    log = pg.open()
    log.record(UNANSWERED, Origin("discord", A, 1, USER), 50.0)
    log.record(ANSWERED, Origin("discord", B, 2, USER), 70.0)
    env = os.environ | {"DATABASE_URL": pg.url, "LOG_SALT": SALT, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-m", "bot.cli", "stats", "--json", "--guild", str(B)],
        env=env,
        cwd=tmp_path,  # no developer .env here
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    stats = json.loads(run.stdout)
    assert (stats["questions"], stats["answered"], stats["gaps"]) == (1, 1, []) and "servers" not in stats


def test_a_server_stopped_mid_burst_never_stops_answering_and_the_log_resumes(
    pg: Backend, postgres: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    log = pg.open()
    calls: list[tuple[float, int | None]] = []  # (seconds, id) of every record call
    raised: list[BaseException] = []
    stop = threading.Event()

    def burst(user: int) -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                logged = log.record(ANSWERED, Origin("discord", A, 1, user), 5.0)
            except BaseException as exc:  # any exception at all fails the test
                raised.append(exc)
                return
            calls.append((time.monotonic() - started, logged))
            time.sleep(0.01)

    with caplog.at_level(logging.DEBUG):
        writers = [threading.Thread(target=burst, args=(u,)) for u in range(4)]
        for w in writers:
            w.start()
        time.sleep(0.3)
        postgres.stop("immediate")  # a crash: connections just vanish
        try:
            time.sleep(1.0)
            during = len(calls)
        finally:
            postgres.start()
        resumed = wait_for(lambda: any(i is not None for _, i in calls[during:]), seconds=15)
        stop.set()
        for w in writers:
            w.join()

    assert raised == [] and resumed, "no exception, and new questions are logged again once the server is back"
    assert max(seconds for seconds, _ in calls) < 1.5, "every call returned promptly"
    assert any(i is None for _, i in calls[:during]), "questions went unlogged while the server was down"
    problems = [r for r in caplog.records if r.name == "bot.questionlog" and r.levelno >= logging.WARNING]
    assert len(problems) == 1 and "lost the connection" in problems[0].getMessage(), problems
    assert "works again" in caplog.text and PASSWORD not in caplog.text
    stored = {r["id"] for r in log.rows(days=1)}
    assert {i for _, i in calls if i is not None} <= stored, "every id handed out was stored"


def test_the_password_never_shows_in_a_log_record_or_an_error(
    postgres: PostgresServer, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = f"wrong-{PASSWORD}"
    urls = {
        "a wrong password": postgres.url(password=wrong),
        "nothing listening on the port": postgres.url(password=wrong, port=free_port()),
        "a malformed URL": f"postgresql://postgres:{wrong}@[::1/articlebot",
    }
    with caplog.at_level(logging.DEBUG):
        for why, url in urls.items():
            with pytest.raises(LogError) as refused:
                QuestionLog.open(url, SALT, 90)
            shown = "".join(traceback.format_exception(refused.value)) + repr(refused.value)
            assert wrong not in shown, why
            assert "postgres:***@" in shown or why == "a malformed URL", shown
            assert refused.value.__cause__ is None and refused.value.__context__ is None, why
            configured = settings.model_copy(update={"database_url": url, "log_salt": SecretStr(SALT)})
            assert open_log(configured) is None and wrong not in repr(configured)
    assert "question log disabled" in caplog.text and "password authentication failed" in caplog.text
    assert all(wrong not in record.getMessage() for record in caplog.records)


def child(script: str, *args: str) -> subprocess.Popen[str]:
    """A Python process running `script` with `args`, from the repository's root."""
    return subprocess.Popen([sys.executable, "-c", script, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str]) -> str:
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    return out


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
