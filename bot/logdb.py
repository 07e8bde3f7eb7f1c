"""The question log's database layer: one interface over SQLite (the standard sqlite3) and PostgreSQL (psycopg 3).

Why not SQLAlchemy Core: measured here (median of 15 fresh processes, Python 3.11), importing SQLAlchemy and opening a
SQLite engine takes 264 ms (351 ms with its psycopg dialect), paid by every `articlebot stats` and bot start, SQLite
users included; sqlite3 takes 7 ms, and psycopg's 149 ms are paid only when a PostgreSQL log is opened. SQLAlchemy
would not remove what differs either (column types, where the schema version is kept, string aggregation, how a new
row's id comes back): with plain SQL that is the handful of attributes of `SQLite` and `PostgreSQL` below.

`Session` shares one connection between threads behind a lock. A connection lost mid-way (a PostgreSQL restart) is
replaced at once and the work run once more (a write whose COMMIT was sent but never answered may then be stored
twice: rare, and better than losing it); while the server stays away, calls fail at once with `Unavailable` and a new
connection is tried 0.5 s, 1 s, 2 s … up to 30 s apart. A PostgreSQL password never reaches a message:
`name` is the URL without it and `scrub` removes it from the driver's errors.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

SQLITE_PREFIX = "sqlite:///"
POSTGRES_SCHEMES = ("postgresql", "postgres")
URL_FORMS = "sqlite:///relative/path, sqlite:////absolute/path or postgresql://user:password@host:port/database"
PRIVATE = 0o600  # a SQLite log: readable by the bot's user only
CONNECT_TIMEOUT = 3  # seconds a write may wait for an unreachable PostgreSQL server
UNACKNOWLEDGED_MS = 5_000  # a connection whose sent data stays unacknowledged this long is dead (Linux)
RETRY_FIRST, RETRY_MAX = 0.5, 30.0  # seconds between attempts to reconnect: doubling from the first to the most
SCHEMA_LOCK = 0x61_7274_6963_6C65  # PostgreSQL advisory lock ("article"): one process migrates at a time

T = TypeVar("T")
Connection = Any  # a sqlite3 or psycopg connection: both run SQL with execute() and return a cursor


class LogError(Exception):
    """The question log cannot be opened or read as configured; the message says what to change."""


class Unavailable(Exception):
    """The database cannot be reached now (or the log was closed); nothing was tried."""


class Database(ABC):
    """What the question log needs to know of one kind of database; `SQLite` and `PostgreSQL` fill it in."""

    name: str  # for messages: the file, or the URL without its password
    path: Path | None = None  # the file of a SQLite log
    advice: str  # what to change when the log cannot be opened
    begin = "BEGIN"
    placeholder = "?"
    words: ClassVar[dict[str, str]]  # fill in the `{placeholders}` of the log's SQL
    errors: tuple[type[Exception], ...]

    @abstractmethod
    def connect(self) -> Connection: ...

    @abstractmethod
    def version(self, db: Connection) -> int: ...

    @abstractmethod
    def set_version(self, db: Connection, version: int) -> None: ...

    @abstractmethod
    def lock_schema(self, db: Connection) -> None:
        """Hold the schema until this transaction ends, so that processes opening a new log migrate it once."""

    @abstractmethod
    def new_id(self, cursor: Any) -> int:
        """The id of the row an INSERT … {returning} just wrote."""

    def lost(self, db: Connection) -> bool:
        """Whether the connection is gone (the error was the network's or the server's, not the statement's)."""
        return False

    def scrub(self, text: str) -> str:
        """`text` without secrets, for a message."""
        return text

    def describe(self, error: BaseException) -> str:
        """An error on one line and without secrets, for a message."""
        return " ".join(self.scrub(str(error)).split())

    def sql(self, statement: str) -> str:
        """The log's SQL in this database's words and placeholders."""
        return statement.format_map(self.words).replace("?", self.placeholder)


class SQLite(Database):
    """A file in WAL mode, created readable by its owner only; the schema version is SQLite's `user_version`."""

    begin = "BEGIN IMMEDIATE"  # take the write lock now: one process migrates at a time, writers queue
    errors = (sqlite3.Error,)
    advice = "fix or move the file"
    words: ClassVar[dict[str, str]] = {
        "id": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "key": "INTEGER",
        "real": "REAL",
        "concat": "group_concat",
        "returning": "",
    }

    def __init__(self, path: Path) -> None:
        self.path = self._file = path
        self.name = str(path)

    def connect(self) -> Connection:
        _create_private(self._file)
        db = sqlite3.connect(self._file, check_same_thread=False, timeout=2.0, isolation_level=None)
        try:
            _use_wal(db)
            db.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error:
            db.close()
            raise
        return db

    def lock_schema(self, db: Connection) -> None:
        """Nothing to do: `begin` took the file's write lock."""

    def version(self, db: Connection) -> int:
        return db.execute("PRAGMA user_version").fetchone()[0]

    def set_version(self, db: Connection, version: int) -> None:
        db.execute(f"PRAGMA user_version = {int(version)}")

    def new_id(self, cursor: Any) -> int:
        return cursor.lastrowid


class PostgreSQL(Database):
    """A server that several machines can share; the schema version is kept in a `schema_version` table."""

    placeholder = "%s"
    advice = "check DATABASE_URL's host, port, user, password and database, and that the server is up"
    words: ClassVar[dict[str, str]] = {
        "id": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        "key": "BIGINT",
        "real": "DOUBLE PRECISION",
        "concat": "string_agg",
        "returning": " RETURNING id",
    }

    def __init__(self, url: str) -> None:
        import psycopg  # only PostgreSQL logs pay for the import

        self._url = url
        self.name = redact(url)
        self._secrets = sorted(_passwords(url), key=len, reverse=True)
        self.errors = (psycopg.Error,)

    def connect(self) -> Connection:
        import psycopg

        return psycopg.connect(
            self._url,
            autocommit=True,  # transactions are begun and ended explicitly, as with SQLite
            connect_timeout=CONNECT_TIMEOUT,
            tcp_user_timeout=UNACKNOWLEDGED_MS,
            application_name="articlebot",
        )

    def lock_schema(self, db: Connection) -> None:
        db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")

    def version(self, db: Connection) -> int:
        return db.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]

    def set_version(self, db: Connection, version: int) -> None:
        db.execute("DELETE FROM schema_version")
        db.execute("INSERT INTO schema_version VALUES (%s)", (version,))

    def new_id(self, cursor: Any) -> int:
        return cursor.fetchone()[0]

    def lost(self, db: Connection) -> bool:
        return db.closed

    def scrub(self, text: str) -> str:
        text = text.replace(self._url, self.name)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


class Session:
    """One connection shared by threads, behind a lock; replaced when lost, with backoff while the server is away."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._lock = threading.Lock()
        self._db: Connection | None = database.connect()
        self._delay = 0.0
        self._retry_at = 0.0
        self._closed = False

    @property
    def connected(self) -> bool:
        return self._db is not None

    def run(self, work: Callable[[Connection], T], write: bool = False) -> T:
        """`work` on the connection, in a transaction when it writes; once more on a new connection if the one it
        had was lost (a server restart), so that a restart loses nothing."""
        with self._lock:
            had_connection = self._db is not None
            try:
                return self._run_once(work, write)
            except self.database.errors:
                if not had_connection or self._db is not None:
                    raise  # no connection could be made, or the statement itself failed
            return self._run_once(work, write)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._drop()

    def _run_once(self, work: Callable[[Connection], T], write: bool) -> T:
        db = self._connection()
        try:
            if not write:
                return work(db)
            db.execute(self.database.begin)
            try:
                result = work(db)
            except BaseException:
                with suppress(*self.database.errors):
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result
        except self.database.errors:
            if self.database.lost(db):
                self._drop()
            raise

    def _connection(self) -> Connection:
        """The connection, made anew when the last one was lost and the backoff allows; Unavailable otherwise."""
        if self._db is not None:
            return self._db
        if self._closed:
            raise Unavailable(f"{self.database.name} is closed")
        wait = self._retry_at - time.monotonic()
        if wait > 0:
            raise Unavailable(f"{self.database.name} is unreachable; next attempt in {wait:.1f} s")
        try:
            self._db = self.database.connect()
        except self.database.errors:
            self._delay = min(max(2 * self._delay, RETRY_FIRST), RETRY_MAX)
            self._retry_at = time.monotonic() + self._delay
            raise
        self._delay = 0.0
        return self._db

    def _drop(self) -> None:
        if self._db is not None:
            with suppress(*self.database.errors):
                self._db.close()
        self._db = None
        self._retry_at = 0.0  # the first new connection is tried at once


def from_url(url: str) -> Database:
    """The database a DATABASE_URL names, not opened yet; LogError if it names none."""
    try:
        if urlsplit(url).scheme in POSTGRES_SCHEMES:
            return PostgreSQL(url)
        return SQLite(database_path(url))
    except ValueError as exc:
        problem = str(exc)
    raise LogError(f"DATABASE_URL is not a valid URL ({problem}): use {URL_FORMS}")  # not chained: the URL stays out


def database_path(url: str) -> Path:
    """The file of a `sqlite:///relative/path` or `sqlite:////absolute/path` DATABASE_URL."""
    if not url.startswith(SQLITE_PREFIX) or len(url) == len(SQLITE_PREFIX):
        raise LogError(f"DATABASE_URL {redact(url)!r} is not supported: use {URL_FORMS}")
    return Path(url.removeprefix(SQLITE_PREFIX))


def redact(url: str) -> str:
    """The URL without its password (in the user part or a `password=` parameter), for messages."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:***@{host}"
    query = [(k, "***" if k == "password" else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="*")))


def _passwords(url: str) -> set[str]:
    """Every form in which the URL's password may show up in a driver's message."""
    parts = urlsplit(url)
    found = [parts.password or ""] + [v for k, v in parse_qsl(parts.query) if k == "password"]
    return {form for secret in found if secret for form in (secret, unquote(secret), quote(secret, safe=""))}


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


def _create_private(path: Path) -> None:
    """Create the database file, if it is new, readable by its owner only (SQLite gives its -wal and -shm files
    the same mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE))
