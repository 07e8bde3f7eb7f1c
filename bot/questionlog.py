"""The question log: every question, its answer or abstention, and the votes on it, in SQLite or PostgreSQL.

DATABASE_URL names the database: a SQLite file (default `data/articlebot.db`) in WAL mode, so the Discord bot and a
terminal `stats` can read and write it at once, created with its salt readable by their owner only; or a PostgreSQL
server, which several machines can share. `bot/logdb.py` is the one layer over both (why not SQLAlchemy: its
docstring gives the import times measured). The schema is the same on both, versioned (SQLite's `user_version`, a
`schema_version` table on PostgreSQL) and migrated on open by the numbered steps in MIGRATIONS (append a step, never
edit one). User ids are stored only as a keyed hash (LOG_SALT); the only message text stored is the question and the
voters' comments. Rows older than LOG_RETENTION_DAYS are deleted when the log is opened and by `expire` (the bot
calls it daily); `forget` deletes one server's. A failing database never stops answering: the failure is logged
once, the write skipped, and a lost PostgreSQL connection is retried with backoff until the server is back.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import statistics
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from bot.logdb import RETRY_FIRST, RETRY_MAX, Connection, Database, LogError, Session, Unavailable, from_url
from bot.replies import Answer
from bot.settings import Settings

log = logging.getLogger(__name__)

SALT_FILE = "log-salt"
GAPS = 10
COMMENT_CHARS = 300  # the "What was wrong?" box's limit, enforced again when a comment is stored

T = TypeVar("T")

# Schema steps: MIGRATIONS[n] takes a database from version n to n + 1. `{id}`, `{key}` and `{real}` are each
# database's words for an id column, a reference to one and a float (`Database.words`).
MIGRATIONS = (
    """
    CREATE TABLE questions (
        id {id},
        asked_at TEXT NOT NULL,
        front_end TEXT NOT NULL,
        guild_id TEXT,
        channel_id TEXT,
        user_hash TEXT,
        question TEXT NOT NULL,
        answer TEXT NOT NULL,
        short_answer TEXT,
        abstained INTEGER NOT NULL,
        confidence {real} NOT NULL,
        citations TEXT NOT NULL,
        latency_ms {real} NOT NULL
    );
    CREATE INDEX questions_asked_at ON questions (asked_at);
    """,
    """
    CREATE TABLE votes (
        question_id {key} NOT NULL REFERENCES questions (id) ON DELETE CASCADE,
        user_hash TEXT NOT NULL,
        vote INTEGER NOT NULL CHECK (vote IN (-1, 1)),
        comment TEXT,
        voted_at TEXT NOT NULL,
        PRIMARY KEY (question_id, user_hash)
    );
    """,
    """
    CREATE INDEX questions_guild ON questions (guild_id, asked_at);
    """,
)

COLUMNS = (
    "asked_at, front_end, guild_id, channel_id, user_hash, question, answer, short_answer, abstained, confidence, "
    "citations, latency_ms"
)
INSERT = f"INSERT INTO questions ({COLUMNS}) VALUES ({', '.join('?' * 12)}){{returning}}"
VOTE = (
    "INSERT INTO votes (question_id, user_hash, vote, comment, voted_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (question_id, user_hash) DO UPDATE SET vote = excluded.vote, "
    "comment = coalesce(excluded.comment, votes.comment), voted_at = excluded.voted_at"
)
ROWS = (
    "SELECT q.id, q.asked_at, q.front_end, q.guild_id, q.channel_id, q.user_hash, q.question, q.short_answer, "
    "q.abstained, q.confidence, q.citations, q.latency_ms, "
    "sum(CASE WHEN v.vote = 1 THEN 1 ELSE 0 END) AS up, sum(CASE WHEN v.vote = -1 THEN 1 ELSE 0 END) AS down, "
    "{concat}(v.comment, ' | ') AS comments "
    "FROM questions q LEFT JOIN votes v ON v.question_id = q.id WHERE q.asked_at >= ?"
)
ONE_SERVER = " AND q.guild_id = ?"
ROWS_ORDER = " GROUP BY q.id ORDER BY q.id"


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


class QuestionLog:
    """Records questions and votes and summarises them; thread-safe (one connection behind a lock)."""

    def __init__(self, database: Database, salt: bytes, retention_days: int) -> None:
        self.database = database
        self.path = database.path
        self._salt = salt
        self._retention = timedelta(days=retention_days)
        self._healthy = True
        self._health_lock = threading.Lock()
        self._failures: tuple[type[Exception], ...] = (Unavailable, *database.errors)  # of a read or a forget
        self._session = Session(database)
        try:
            self._migrate()
        except BaseException:
            self._session.close()
            raise
        self.expire()

    @classmethod
    def open(cls, url: str, salt: str | None, retention_days: int) -> QuestionLog:
        """The log at DATABASE_URL, its salt from LOG_SALT or else, for SQLite, from (or first written to) the data
        folder. LogError, without the URL's password, if it cannot be opened."""
        database = from_url(url)
        failures: tuple[type[Exception], ...] = (*database.errors, OSError)
        try:
            return cls(database, _salt(database, salt), retention_days)
        except failures as exc:
            problem = database.describe(exc)
        # Raised outside the except block: the driver's exception, which may quote the URL, is not chained to it.
        raise LogError(
            f"cannot open the question log {database.name}: {problem}; {database.advice}, or set LOG_QUESTIONS=false"
        )

    @classmethod
    def configured(cls, settings: Settings) -> QuestionLog:
        """The log DATABASE_URL, LOG_SALT and LOG_RETENTION_DAYS describe; LogError if it cannot be opened."""
        salt = settings.log_salt.get_secret_value() if settings.log_salt else None
        return cls.open(settings.database_url, salt, settings.log_retention_days)

    @property
    def version(self) -> int:
        return self._read(self.database.version)

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
        insert = self.database.sql(INSERT)
        return self._write("record a question", lambda db: self.database.new_id(db.execute(insert, row)), None)

    def vote(self, question_id: int, user_id: int, up: bool, comment: str | None = None) -> bool:
        """A member's vote on an answer (a comment cut to COMMENT_CHARS); a second vote replaces the first. False
        if the question is not logged (expired, or the log was off) or the database failed."""
        comment = comment[:COMMENT_CHARS] if comment is not None else None
        values = (question_id, self._hash(user_id), 1 if up else -1, comment, _now())

        def vote(db: Connection) -> bool:
            if db.execute(self.database.sql("SELECT 1 FROM questions WHERE id = ?"), (question_id,)).fetchone() is None:
                return False
            db.execute(self.database.sql(VOTE), values)
            return True

        return self._write("record a vote", vote, False)

    def expire(self) -> int:
        """Delete the questions (and their votes) older than LOG_RETENTION_DAYS; how many were deleted."""
        cutoff = _iso(datetime.now(UTC) - self._retention)
        delete = self.database.sql("DELETE FROM questions WHERE asked_at < ?")
        deleted = self._write("delete expired questions", lambda db: db.execute(delete, (cutoff,)).rowcount, 0)
        if deleted:
            log.info("question log: deleted %d questions older than %d days", deleted, self._retention.days)
        return deleted

    def forget(self, guild_id: int) -> int:
        """Delete a server's questions and their votes (it asked, or the bot left it); how many questions. LogError
        if the database failed: then nothing was deleted."""
        delete = self.database.sql("DELETE FROM questions WHERE guild_id = ?")
        try:
            deleted = self._session.run(lambda db: db.execute(delete, (str(guild_id),)).rowcount, write=True)
        except self._failures as exc:
            problem = self.database.describe(exc)
        else:
            log.info("question log: forgot server %d, %d questions", guild_id, deleted)
            return deleted
        raise LogError(f"could not delete server {guild_id}'s questions from {self.database.name}: {problem}")

    def stats(self, days: int, guild_id: int | None = None) -> dict:
        """Counts, votes, median latency, questions per day and the most frequent gaps over the last `days`: of one
        server, or of all with a per-server breakdown (`servers`)."""
        rows = list(self.rows(days, guild_id))
        summary = _summary(rows, days)
        return summary if guild_id is not None else summary | {"servers": _servers(rows)}

    def rows(self, days: int, guild_id: int | None = None) -> Iterator[dict]:
        """Every logged question of the last `days` (of one server, or all) with its votes and comments, oldest
        first."""
        params = [_iso(datetime.now(UTC) - timedelta(days=days))]
        query = ROWS
        if guild_id is not None:
            query += ONE_SERVER
            params.append(str(guild_id))
        select = self.database.sql(query + ROWS_ORDER)

        def fetch(db: Connection) -> tuple[list[str], list[Any]]:
            cursor = db.execute(select, params)
            return [d[0] for d in cursor.description], cursor.fetchall()

        names, found = self._read(fetch)
        return (dict(zip(names, row, strict=True)) for row in found)

    def close(self) -> None:
        self._session.close()

    def _migrate(self) -> None:
        """Bring the schema to the latest version, one numbered step per transaction; the version is read inside
        each, under the schema lock, so that processes opening a new log at once (shards sharing DATABASE_URL) run
        each step once."""
        while (version := self._session.run(self._migrate_step, write=True)) is not None:
            log.info("question log %s migrated to schema version %d", self.database.name, version)

    def _migrate_step(self, db: Connection) -> int | None:
        """Run the next migration step and return the version reached; None when the schema is the latest."""
        self.database.lock_schema(db)
        current = self.database.version(db)
        if current > len(MIGRATIONS):
            raise LogError(f"{self.database.name} has schema version {current}, newer than this articlebot: upgrade it")
        if current == len(MIGRATIONS):
            return None
        for statement in filter(str.strip, MIGRATIONS[current].split(";")):
            db.execute(self.database.sql(statement))
        self.database.set_version(db, current + 1)
        return current + 1

    def _write(self, action: str, work: Callable[[Connection], T], failed: T) -> T:
        """Run a write in a transaction; if the database fails, log it (once until a write succeeds again) and
        return `failed`: answering goes on without the log."""
        try:
            result = self._session.run(work, write=True)
        except Unavailable as exc:
            log.debug("question log: did not %s: %s", action, exc)
            return failed
        except self.database.errors as exc:
            self._failed(action, exc)
            return failed
        with self._health_lock:
            recovered, self._healthy = not self._healthy, True
        if recovered:
            log.info("question log %s works again", self.database.name)
        return result

    def _read(self, work: Callable[[Connection], T]) -> T:
        """Run a read; LogError, naming the database and the problem, if it fails."""
        try:
            return self._session.run(work)
        except self._failures as exc:
            problem = self.database.describe(exc)
        raise LogError(f"cannot read the question log {self.database.name}: {problem}")

    def _failed(self, action: str, exc: Exception) -> None:
        """Log a database failure once (then quietly until a write succeeds again); answering goes on."""
        with self._health_lock:
            first, self._healthy = self._healthy, False
        problem = self.database.describe(exc)
        if not first:
            log.debug("question log still failing: %s", problem)
        elif self._session.connected:
            log.error(
                "question log %s: could not %s (%s); answering goes on without it", self.database.name, action, problem
            )
        else:
            log.warning(
                "question log %s: lost the connection (%s); answering goes on without it, reconnecting %g s, then up "
                "to %g s apart",
                self.database.name,
                problem,
                RETRY_FIRST,
                RETRY_MAX,
            )

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


def _servers(rows: list[dict]) -> list[dict]:
    """Questions and answers per server, most active first; DMs and the terminal together as guild None."""
    servers: dict[str | None, dict] = {}
    for row in rows:
        guild = row["guild_id"]
        server = servers.setdefault(guild, {"guild_id": _int(guild), "questions": 0, "answered": 0})
        server["questions"] += 1
        server["answered"] += not row["abstained"]
    return sorted(servers.values(), key=lambda s: (-s["questions"], s["guild_id"] is None, s["guild_id"] or 0))


def _salt(database: Database, configured: str | None) -> bytes:
    """LOG_SALT; unset, a SQLite log's salt file beside it. Machines sharing a PostgreSQL log must hash alike, so
    there LOG_SALT is required."""
    if configured:
        return configured.encode()
    if database.path is None:
        raise LogError(
            "a PostgreSQL question log needs LOG_SALT, the same on every machine that shares it: set it to a long "
            "random string (python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    return _stored_salt(database.path.parent / SALT_FILE)


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


def _int(value: str | None) -> int | None:
    return None if value is None else int(value)
