"""All configuration, read once from the environment and `.env`, validated with clear messages.

Every variable is documented in `.env.example` and in docs/configuration.md.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.calibration import BUNDLED
from index.embedder import DEFAULT_MODEL
from index.extract import ExtractLimits
from index.manager import Editing, Tuning
from index.passages import Chunking
from index.vectors import AUTO

BUNDLED_CORPUS = Path(__file__).parent / "corpus"
DISCORD_API = "https://discord.com/api/v10"

IdList = Annotated[list[int], NoDecode]
NameList = Annotated[list[str], NoDecode]


class SettingsError(Exception):
    """A configuration value is invalid; the message names the variable and the problem."""


class Settings(BaseSettings):
    """The bot's settings; field names are the environment variables, upper-cased."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", env_ignore_empty=True, extra="ignore")

    # The corpus and its index.
    corpus_dir: Path = BUNDLED_CORPUS
    index_dir: Path = Path("data/index")
    embedding_model: str = DEFAULT_MODEL
    chunk_max_chars: int = Field(Chunking.max_chars, ge=50)
    chunk_overlap: int = Field(Chunking.overlap, ge=0)
    sentence_splitter: Literal["pysbd", "blingfire"] = "pysbd"
    index_type: str = AUTO
    index_watch_seconds: float = Field(10.0, ge=0)
    approx_index_threshold: int = Field(200_000, ge=1)
    base_corpus: bool = True
    servers_dir: Path = Path("data/servers")
    index_memory_mb: int = Field(1024, ge=1)
    nprobe: int = Field(Tuning.nprobe, ge=1)
    ef_search: int = Field(Tuning.ef_search, ge=1)

    # Adding documents (/add, `articlebot add`).
    max_document_bytes: int = Field(Editing.max_bytes, ge=1000)
    max_document_pages: int = Field(ExtractLimits.max_pages, ge=1)
    max_document_chars: int = Field(ExtractLimits.max_chars, ge=1000)
    extract_timeout_seconds: float = Field(ExtractLimits.timeout_seconds, ge=1)
    allow_private_urls: bool = False
    allowed_private_hosts: NameList = []

    # Answering.
    top_k: int = Field(3, ge=1, le=10)
    reader_model: str = BUNDLED
    reader_passages: int = Field(3, ge=1, le=10)
    reader_precision: Literal["auto", "bf16", "fp32"] = "auto"
    evidence_model: str = BUNDLED
    min_confidence: float | None = Field(None, ge=0, le=1)
    max_question_chars: int = Field(500, ge=10)

    # Generative answers from the operator's own model server (empty URL: off).
    generator_url: str | None = None
    generator_model: str = ""
    generator_api_key: SecretStr | None = None
    generator_timeout_seconds: float = Field(60.0, gt=0)
    generator_max_per_minute: int = Field(6, ge=1)

    # Conversations.
    history_turns: int = Field(3, ge=0, le=20)
    history_ttl_minutes: float = Field(30.0, gt=0)
    threads: bool = True

    # The question log.
    log_questions: bool = True
    database_url: str = Field("sqlite:///data/articlebot.db", repr=False)  # a PostgreSQL URL may hold a password
    log_salt: SecretStr | None = None
    log_retention_days: int = Field(90, ge=1)

    # Discord.
    discord_token: SecretStr | None = None
    discord_guild_id: int | None = None
    allowed_guild_ids: IdList = []
    admin_user_ids: IdList = []
    admin_role_ids: IdList = []
    ask_channel_ids: IdList = []
    allow_dms: bool = True
    cooldown_seconds: float = Field(3.0, ge=0)
    max_concurrent_questions: int = Field(8, ge=1, le=1000)
    shard_count: int | None = Field(None, ge=1)
    shard_ids: IdList = []
    discord_api_url: str = DISCORD_API

    log_level: str = "INFO"

    @field_validator(
        "admin_user_ids",
        "admin_role_ids",
        "ask_channel_ids",
        "allowed_guild_ids",
        "allowed_private_hosts",
        "shard_ids",
        mode="before",
    )
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        """Accept "123, 456" as well as a list."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("discord_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        """An http(s) URL with a host, without a trailing slash: discord.py appends paths such as /users/@me.
        Plain http only to this machine, and no credentials: the bot token goes with every request."""
        url = value.strip().rstrip("/")
        if not _is_http_url(url):
            raise ValueError(
                f"must be an http(s) URL: Discord's REST API, {DISCORD_API} (unset it for that), or a proxy's"
            )
        parts = urlsplit(url)
        if parts.scheme == "http" and not _is_loopback(parts.hostname or ""):
            raise ValueError(
                "must be https:// unless it points at this machine (127.0.0.1, ::1 or localhost): over http:// "
                "the bot token would travel in clear; use the proxy's https:// address"
            )
        if parts.username is not None or parts.password is not None:  # the URL itself is never echoed
            raise ValueError(
                "must not contain user:password@: discord.py sends the bot token as the Authorization header, "
                "which leaves no room for a proxy's own credentials; remove them and restrict the proxy by address"
            )
        return url

    @field_validator("generator_url")
    @classmethod
    def _generator_url(cls, value: str | None) -> str | None:
        """The base of an OpenAI-compatible API, with its version (`http://localhost:11434/v1` for Ollama); the
        bot appends `/chat/completions`."""
        if value is None or not value.strip():
            return None
        url = value.strip().rstrip("/")
        if not _is_http_url(url):
            raise ValueError(
                "must be the http(s) URL of an OpenAI-compatible API, with its version: http://localhost:11434/v1 "
                "(Ollama), http://localhost:8080/v1 (llama-server)"
            )
        if urlsplit(url).username is not None or urlsplit(url).password is not None:
            raise ValueError("must not contain user:password@: put the key in GENERATOR_API_KEY")
        return url

    @model_validator(mode="after")
    def _generator_complete(self) -> Settings:
        """A generator needs a model name; its key travels in clear over http:// except to this machine."""
        if self.generator_url is None:
            return self
        if not self.generator_model:
            raise ValueError("GENERATOR_URL needs GENERATOR_MODEL, the name the model server knows the model by")
        parts = urlsplit(self.generator_url)
        if self.generator_api_key and parts.scheme == "http" and not _is_loopback(parts.hostname or ""):
            raise ValueError(
                "GENERATOR_API_KEY would travel in clear: use an https:// GENERATOR_URL, or a server on this machine"
            )
        return self

    @model_validator(mode="after")
    def _shards_of_the_count(self) -> Settings:
        """SHARD_IDS name shards of SHARD_COUNT: this process runs those, other processes the rest."""
        if self.shard_ids and self.shard_count is None:
            raise ValueError("SHARD_IDS needs SHARD_COUNT, the number of shards all processes run together")
        if self.shard_count is not None and any(not 0 <= i < self.shard_count for i in self.shard_ids):
            raise ValueError(f"SHARD_IDS must be between 0 and SHARD_COUNT - 1 ({self.shard_count - 1})")
        return self


def _is_http_url(url: str) -> bool:
    """Whether `url` is http or https with a host and a valid port, and no query or fragment."""
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # a malformed host or a port that is not a number
        return False
    plain = not (parts.query or parts.fragment)  # discord.py appends each route's path to the URL
    return parts.scheme in {"http", "https"} and bool(parts.hostname) and port_ok and plain


def _is_loopback(host: str) -> bool:
    """Whether `host` is this machine: localhost, 127.0.0.0/8 or ::1."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name other than localhost: it may resolve anywhere
        return False


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and `.env` (overrides win); SettingsError lists every bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(_problem(e) for e in exc.errors())
        raise SettingsError(f"invalid configuration: {problems}") from None


def _problem(error: Any) -> str:
    """One validation error as `VARIABLE: message`; a check across variables names them in its message."""
    message = error["msg"].removeprefix("Value error, ")
    variable = ".".join(map(str, error["loc"])).upper()
    return f"{variable}: {message}" if variable else message
