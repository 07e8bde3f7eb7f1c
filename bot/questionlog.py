"""The question log: every question, its answer or abstention, and the votes on it, in SQLite.

One file (DATABASE_URL, default `data/articlebot.db`) in WAL mode, so the Discord bot and a terminal `stats` can
read and write it at once; it and the salt are created readable by their owner only. The schema is versioned
with SQLite's `user_version` and migrated on open by the numbered steps in MIGRATIONS (append a step, never edit
one). User ids are stored only as a keyed hash (LOG_SALT); the only message text stored is the question and the
voters' comments. Rows older than LOG_RETENTION_DAYS are deleted when the log is opened and by `expire` (the bot
calls it daily). A broken database never stops answering: each failure is logged and the bot goes on without
the log.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.replies import Answer
from bot.settings import Settings

log = logging.getLogger(__name__)

SQLITE_PREFIX = "sqlite:///"
SALT_FILE = "log-salt"
GAPS = 10
COMMENT_CHARS = 300  # the "What was wrong?" box's limit, enforced again when a comment is stored
PRIVATE = 0o600  # the database and the salt: readable by the bot's user only

# Schema steps: MIGRATIONS[n] takes a database from version n to n + 1.
MIGRATIONS = (
    """
    CREATE TABLE questions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        asked_at TEXT NOT NULL,
        front_end TEXT NOT NULL,
        guild_id TEXT,
        channel_id TEXT,
        user_hash TEXT,
        question TEXT NOT NULL,
        answer TEXT NOT NULL,
        short_answer TEXT,
        abstained INTEGER NOT NULL,
        confidence REAL NOT NULL,
        citations TEXT NOT NULL,
        latency_ms REAL NOT NULL
    );
    CREATE INDEX questions_asked_at ON questions (asked_at);
    """,
    """
    CREATE TABLE votes (
        question_id INTEGER NOT NULL REFERENCES questions (id) ON DELETE CASCADE,
        user_hash TEXT NOT NULL,
        vote INTEGER NOT NULL CHECK (vote IN (-1, 1)),
        comment TEXT,
        voted_at TEXT NOT NULL,
        PRIMARY KEY (question_id, user_hash)
    );
    """,
)


class LogError(Exception):
    """The question log cannot be opened as configured; the message says what to change."""


@dataclass(frozen=True)
class Origin:
    """Where a question came from: the front end, and on Discord the server, channel and (hashed) user."""

    front_end: str
    guild_id: int | None = None
    channel_id: int | None = None
    user_id: int | None = None


def open_log(settings: Settings) -> QuestionLog | None:
    """The configured question log; None when LOG_QUESTIONS is off or it cannot be opened (logged: the bot
    answers all the same)."""
    if not settings.log_questions:
        return None
    try:
        return QuestionLog.configured(settings)
    except LogError as exc:
        log.error("question log disabled: %s", exc)
        return None


def _use_wal(db: sqlite3.Connection, attempts: int = 100) -> None:
    """Write-ahead logging, so that readers and one writer work at once. Switching a new file to it needs the file
    to itself, and SQLite reports "locked" at once instead of waiting: a process that opens the log while another
    does tries again for a few seconds."""
    for attempt in range(attempts):
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05)


def database_path(url: str) -> Path:
    """The file of a `sqlite:///relative/path` or `sqlite:////absolute/path` DATABASE_URL."""
    if not url.startswith(SQLITE_PREFIX) or len(url) == len(SQLITE_PREFIX):
        raise LogError(
            f"DATABASE_URL {url!r} is not supported: use sqlite:///relative/path or sqlite:////absolute/path"
        )
    return Path(url.removeprefix(SQLITE_PREFIX))


class QuestionLog:
    """Records questions and votes and summarises them; thread-safe (one connection behind a lock)."""

    def __init__(self, path: Path, salt: bytes, retention_days: int) -> None:
        self.path = path
        self._salt = salt
        self._retention = timedelta(days=retention_days)
        self._lock = threading.Lock()
        self._healthy = True
        _create_private(path)
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=2.0, isolation_level=None)
        _use_wal(self._db)
        self._db.execute("PRAGMA foreign_keys = ON")
        self._migrate()
        self.expire()

    @classmethod
    def open(cls, url: str, salt: str | None, retention_days: int) -> QuestionLog:
        """The log at DATABASE_URL, its salt from LOG_SALT or else from (or first written to) the data folder."""
        path = database_path(url)
        try:
            return cls(path, salt.encode() if salt else _stored_salt(path.parent / SALT_FILE), retention_days)
        except (sqlite3.Error, OSError) as exc:
            raise LogError(
                f"cannot open the question log {path}: {exc}; fix or move the file, or set LOG_QUESTIONS=false"
            ) from exc

    @classmethod
    def configured(cls, settings: Settings) -> QuestionLog:
        """The log DATABASE_URL, LOG_SALT and LOG_RETENTION_DAYS describe; LogError if it cannot be opened."""
        salt = settings.log_salt.get_secret_value() if settings.log_salt else None
        return cls.open(settings.database_url, salt, settings.log_retention_days)

    @property
    def version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    def record(self, answer: Answer, origin: Origin, latency_ms: float) -> int | None:
        """Store one question and what the bot said; returns its id (for votes), None if the database failed."""
        citations = [{"document": c.document, "paragraph": c.paragraph} for c in answer.citations]
        row = (
            _now(),
            origin.front_end,
            _text(origin.guild_id),
            _text(origin.channel_id),
            self._hash(origin.user_id),
            answer.question,
            answer.text,
            answer.short_answer,
            int(answer.abstained),
            answer.confidence,
            json.dumps(citations),
            latency_ms,
        )
        try:
            with self._transaction() as db:
                cursor = db.execute(f"INSERT INTO questions VALUES (NULL{', ?' * len(row)})", row)
        except sqlite3.Error as exc:
            self._failed("record a question", exc)
            return None
        return cursor.lastrowid

    def vote(self, question_id: int, user_id: int, up: bool, comment: str | None = None) -> bool:
        """A member's vote on an answer (a comment cut to COMMENT_CHARS); a second vote replaces the first. False
        if the question is not logged (expired, or the log was off) or the database failed."""
        comment = comment[:COMMENT_CHARS] if comment is not None else None
        try:
            with self._transaction() as db:
                if db.execute("SELECT 1 FROM questions WHERE id = ?", (question_id,)).fetchone() is None:
                    return False
                db.execute(
                    "INSERT INTO votes VALUES (?, ?, ?, ?, ?) ON CONFLICT (question_id, user_hash) DO UPDATE SET "
                    "vote = excluded.vote, comment = coalesce(excluded.comment, comment), "
                    "voted_at = excluded.voted_at",
                    (question_id, self._hash(user_id), 1 if up else -1, comment, _now()),
                )
        except sqlite3.Error as exc:
            self._failed("record a vote", exc)
            return False
        return True

    def expire(self) -> int:
        """Delete the questions (and their votes) older than LOG_RETENTION_DAYS; how many were deleted."""
        cutoff = _iso(datetime.now(UTC) - self._retention)
        try:
            with self._transaction() as db:
                deleted = db.execute("DELETE FROM questions WHERE asked_at < ?", (cutoff,)).rowcount
        except sqlite3.Error as exc:
            self._failed("delete expired questions", exc)
            return 0
        if deleted:
            log.info("question log: deleted %d questions older than %d days", deleted, self._retention.days)
        return deleted

    def stats(self, days: int) -> dict:
        """Counts, votes, median latency, questions per day and the most frequent gaps over the last `days`."""
        return _summary(list(self.rows(days)), days)

    def rows(self, days: int) -> Iterator[dict]:
        """Every logged question of the last `days` with its votes and comments, oldest first."""
        since = _iso(datetime.now(UTC) - timedelta(days=days))
        with self._lock:
            cursor = self._db.execute(
                "SELECT q.id, q.asked_at, q.front_end, q.guild_id, q.channel_id, q.user_hash, q.question, "
                "q.short_answer, q.abstained, q.confidence, q.citations, q.latency_ms, "
                "coalesce(sum(v.vote = 1), 0) AS up, coalesce(sum(v.vote = -1), 0) AS down, "
                "group_concat(v.comment, ' | ') AS comments "
                "FROM questions q LEFT JOIN votes v ON v.question_id = q.id "
                "WHERE q.asked_at >= ? GROUP BY q.id ORDER BY q.id",
                (since,),
            )
            names = [d[0] for d in cursor.description]
            found = cursor.fetchall()
        return (dict(zip(names, row, strict=True)) for row in found)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _migrate(self) -> None:
        """Bring the schema to the latest version, one numbered step per transaction; the version is read inside
        each, so that processes opening a new log at once (shards sharing DATABASE_URL) run each step once."""
        while (version := self._migrate_step()) is not None:
            log.info("question log %s migrated to schema version %d", self.path, version)

    def _migrate_step(self) -> int | None:
        """Run the next migration step and return the version reached; None when the schema is the latest."""
        with self._transaction() as db:
            current = db.execute("PRAGMA user_version").fetchone()[0]
            if current > len(MIGRATIONS):
                raise LogError(f"{self.path} has schema version {current}, newer than this articlebot: upgrade it")
            if current == len(MIGRATIONS):
                return None
            for statement in filter(str.strip, MIGRATIONS[current].split(";")):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {current + 1}")
        return current + 1

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self._healthy = True

    def _failed(self, action: str, exc: Exception) -> None:
        """Log a database failure once (then quietly until a write succeeds again); answering goes on."""
        if self._healthy:
            log.error("question log %s: could not %s (%s); answering goes on without it", self.path, action, exc)
        else:
            log.debug("question log still failing: %s", exc)
        self._healthy = False

    def _hash(self, user_id: int | None) -> str | None:
        if user_id is None:
            return None
        return hmac.new(self._salt, str(user_id).encode(), hashlib.sha256).hexdigest()[:32]


def _summary(rows: list[dict], days: int) -> dict:
    """The `stats --json` object from the log's rows."""
    per_day: dict[str, dict] = {}
    gaps: dict[str, dict] = {}
    for row in rows:
        day = per_day.setdefault(row["asked_at"][:10], {"date": row["asked_at"][:10], "questions": 0, "abstained": 0})
        day["questions"] += 1
        day["abstained"] += row["abstained"]
        if row["abstained"] or row["down"]:
            key = " ".join(row["question"].lower().split())
            gap = gaps.setdefault(key, {"question": row["question"], "count": 0, "abstained": 0, "down": 0})
            gap["count"] += 1
            gap["abstained"] += row["abstained"]
            gap["down"] += row["down"]
    abstained = sum(r["abstained"] for r in rows)
    return {
        "days": days,
        "questions": len(rows),
        "answered": len(rows) - abstained,
        "abstained": abstained,
        "abstention_rate": round(abstained / len(rows), 3) if rows else None,
        "votes": {"up": sum(r["up"] for r in rows), "down": sum(r["down"] for r in rows)},
        "median_latency_ms": round(statistics.median(r["latency_ms"] for r in rows), 1) if rows else None,
        "per_day": sorted(per_day.values(), key=lambda d: d["date"]),
        "gaps": sorted(gaps.values(), key=lambda g: (-g["count"], -g["down"], g["question"]))[:GAPS],
    }


def _create_private(path: Path) -> None:
    """Create the database file, if it is new, readable by its owner only (SQLite gives its -wal and -shm files
    the same mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE))


def _stored_salt(path: Path) -> bytes:
    """The data folder's salt, made on first use: written whole to a private temporary file, then linked into
    place, so no process ever reads it half-written or world-readable; if another process made it first, theirs."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, draft = tempfile.mkstemp(dir=path.parent, prefix=f".{SALT_FILE}.")  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(secrets.token_hex(32))
            with suppress(FileExistsError):  # another process linked its salt first
                os.link(draft, path)
        finally:
            os.unlink(draft)
    return path.read_text(encoding="utf-8").strip().encode()


def _now() -> str:
    return _iso(datetime.now(UTC))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _text(value: int | None) -> str | None:
    return None if value is None else str(value)
