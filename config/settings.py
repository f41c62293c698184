"""Loading settings: shipped defaults ← user TOML file ← .env file ← environment.

Every value is checked once, at start; a bad or missing one raises ``ConfigError`` with one line
that names the setting, where it came from, and how to fix it.
"""

from __future__ import annotations

import difflib
import enum
import json
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agentcore.llm.tooling import ToolMode
from agentcore.schedule.model import QuietHours
from agentcore.settings import (
    AgentSettings,
    ConsolidationSettings,
    EmbeddingSettings,
    MediaSettings,
    MemorySettings,
    Price,
    ReminderSettings,
    RuntimeSettings,
    UsageSettings,
    Vision,
)
from agentcore.types import AgentKey, InvalidAgentKey

T = TypeVar("T")
N = TypeVar("N", int, float)
E = TypeVar("E", bound=enum.Enum)

# The environment variable names documented in DESIGN.md, and the setting each one sets.
ENV_NAMES: dict[str, tuple[str, str]] = {
    "OPENAI_API_KEY": ("llm", "api_key"),
    "OPENAI_BASE_URL": ("llm", "base_url"),
    "AGENTCORE_MODEL": ("llm", "model"),
    "AGENTCORE_DB": ("storage", "path"),
    "AGENTCORE_ADMINS": ("runtime", "admins"),
    "AGENTCORE_ALLOWED": ("runtime", "allowed"),
    "AGENTCORE_LOG_LEVEL": ("logging", "level"),
    "TELEGRAM_TOKEN": ("telegram", "token"),
    "TELEGRAM_BASE_URL": ("telegram", "base_url"),
    "DISCORD_TOKEN": ("discord", "token"),
    "DISCORD_API_BASE": ("discord", "api_base"),
    "DISCORD_GATEWAY_URL": ("discord", "gateway_url"),
}
GENERIC_PREFIX = "AGENTCORE_"  # AGENTCORE_<SECTION>__<KEY>
NO_MODEL_HINT = (
    "no model endpoint configured: set OPENAI_API_KEY (for OpenAI), or OPENAI_BASE_URL for a "
    "local server such as Ollama at http://localhost:11434/v1"
)


class ConfigError(Exception):
    """A setting is missing or invalid. The message is one line meant for the operator."""


class Secret:
    """A token or key: usable, but never shown by ``repr``/``str`` (so never in a log line)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class LLMConfig:
    model: str
    base_url: str
    api_key: Secret
    timeout: float
    max_retries: int
    prompt_cache_key: bool  # send OpenAI's prompt_cache_key with each request
    tools: ToolMode = ToolMode.AUTO
    max_tokens: int = 0


@dataclass(frozen=True, slots=True)
class TranscriptionConfig:
    """The /v1/audio/transcriptions endpoint (by default the chat endpoint and its key)."""

    model: str
    base_url: str
    api_key: Secret


@dataclass(frozen=True, slots=True)
class EmbeddingConfig:
    """The /v1/embeddings endpoint (by default the chat endpoint and its key)."""

    query_model: str  # the model name for queries ("" = the embedding model's)
    base_url: str
    api_key: Secret
    timeout: float  # seconds for one background request


@dataclass(frozen=True, slots=True)
class StreamingConfig:
    enabled: bool
    edit_seconds: float


@dataclass(frozen=True, slots=True)
class TelegramConfig:
    token: Secret
    base_url: str
    webhook_url: str = ""  # receive by webhook at this public URL instead of polling
    webhook_listen: tuple[str, int] = ("0.0.0.0", 8443)  # where this process serves it


@dataclass(frozen=True, slots=True)
class DiscordConfig:
    token: Secret
    api_base: str
    gateway_url: str
    sync_guild: int
    sharded: bool
    shard_count: int = 0  # 0: not set (one connection, or as many as Discord says if sharded)
    shard_ids: tuple[int, ...] = ()  # this process's shards; empty: all
    identify_interval: float = 5.0  # seconds between IDENTIFYs across all processes


@dataclass(frozen=True, slots=True)
class Settings:
    llm: LLMConfig
    transcription: TranscriptionConfig
    streaming: StreamingConfig
    search: EmbeddingSettings
    embedding: EmbeddingConfig
    agent: AgentSettings
    runtime: RuntimeSettings
    usage: UsageSettings
    consolidation: ConsolidationSettings
    database: Path  # the SQLite file, unless database_url names a PostgreSQL database
    database_url: Secret  # postgresql://user:password@host:port/db, or empty for SQLite
    busy_timeout_ms: int
    pool_size: int  # PostgreSQL: turns at once per process (each holds a connection)
    stall_seconds: float  # PostgreSQL: silence after which a process loses its locks
    person_locks: bool  # test-only: False turns the per-person lock off
    telegram: TelegramConfig
    discord: DiscordConfig
    log_level: str
    warnings: tuple[str, ...] = ()  # settings given but ignored (misspelt), for the log


# --------------------------------------------------------------------- raw layers


@dataclass(frozen=True, slots=True)
class _Value:
    value: Any
    source: str  # where it came from, for error messages
    base_dir: Path  # relative file paths are resolved against this


class _Layers:
    """Merged raw values, each remembering its source. The shipped defaults, added first, name
    every setting there is; a setting given later that is not among them is ignored with a
    warning naming the closest real one (so a typo does not go unnoticed)."""

    def __init__(self, defaults: Mapping[str, Any], base_dir: Path) -> None:
        self._values: dict[tuple[str, str], _Value] = {}
        self.warnings: list[str] = []
        self._add(defaults, "defaults", base_dir)
        self._known = set(self._values)

    def add_table(self, table: Mapping[str, Any], source: str, base_dir: Path) -> None:
        known = {}
        for section, entries in table.items():
            kept = self._known_part(section, entries, source)
            if kept is not None:
                known[section] = kept
        self._add(known, source, base_dir)

    def _add(self, table: Mapping[str, Any], source: str, base_dir: Path) -> None:
        for section, entries in table.items():
            if not isinstance(entries, dict):
                raise ConfigError(f"{source}: [{section}] must be a table of settings")
            for key, value in entries.items():
                self._values[(section, key)] = _Value(value, source, base_dir)

    def _known_part(self, section: str, entries: Any, source: str) -> Any:
        """The known settings of a section (None if the section is unknown), warning about the
        rest."""
        sections = sorted({s for s, _ in self._known})
        if section not in sections:
            self._warn(f"[{section}] in {source}", "section", f"[{_closest(section, sections)}]")
            return None
        if not isinstance(entries, dict):
            return entries  # _add reports it
        keys = sorted(k for s, k in self._known if s == section)
        for key in entries:
            if key not in keys:
                closest = f"{section}.{_closest(key, keys)}"
                self._warn(f"{section}.{key} in {source}", "setting", closest)
        return {k: v for k, v in entries.items() if k in keys}

    def add_env(self, env: Mapping[str, str]) -> None:
        for name, value in env.items():
            target = ENV_NAMES.get(name) or _generic_env_target(name)
            if target in self._known:
                self._values[target] = _Value(value, f"environment variable {name}", Path.cwd())
            elif name.startswith(GENERIC_PREFIX):
                closest = _closest(name, self._env_names())
                self._warn(f"environment variable {name}", "setting", closest)

    def _env_names(self) -> list[str]:
        generic = [f"{GENERIC_PREFIX}{s.upper()}__{k.upper()}" for s, k in self._known]
        return sorted({*ENV_NAMES, *generic})

    def _warn(self, what: str, kind: str, closest: str) -> None:
        self.warnings.append(f"ignoring {what}: no such {kind}; did you mean {closest}?")

    def get(self, section: str, key: str) -> _Value:
        try:
            return self._values[(section, key)]
        except KeyError:
            raise ConfigError(f"setting {section}.{key} is missing from the defaults") from None


def _closest(name: str, candidates: list[str]) -> str:
    return difflib.get_close_matches(name, candidates, n=1, cutoff=0.0)[0]


def _generic_env_target(name: str) -> tuple[str, str] | None:
    if not name.startswith(GENERIC_PREFIX) or "__" not in name:
        return None
    section, _, key = name[len(GENERIC_PREFIX) :].lower().partition("__")
    return (section, key) if section and key else None


def _read_toml(path: Path, source: str) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist (check --config)") from None
    except OSError as exc:
        raise ConfigError(
            f"config file {path} cannot be read ({exc.strerror}); check --config"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from None


def _package_dir() -> Path:
    return Path(str(resources.files("config")))


# --------------------------------------------------------------------- typed getters


class _Reader:
    def __init__(self, layers: _Layers) -> None:
        self._layers = layers

    def _convert(self, section: str, key: str, convert: Callable[[Any], T], expected: str) -> T:
        raw = self._layers.get(section, key)
        try:
            return convert(raw.value)
        except (TypeError, ValueError) as exc:
            detail = f" ({exc})" if str(exc) else ""
            raise ConfigError(
                f"setting {section}.{key} from {raw.source}: expected {expected}, "
                f"got {raw.value!r}{detail}"
            ) from None

    def text(self, section: str, key: str) -> str:
        return self._convert(section, key, _as_text, "text").strip()

    def integer(self, section: str, key: str, minimum: int) -> int:
        return self._convert(
            section,
            key,
            lambda v: _at_least(_as_int(v), minimum),
            f"a whole number of at least {minimum}",
        )

    def number(self, section: str, key: str, minimum: float) -> float:
        return self._convert(
            section, key, lambda v: _at_least(float(v), minimum), f"a number of at least {minimum}"
        )

    def flag(self, section: str, key: str) -> bool:
        return self._convert(section, key, _as_bool, "true or false")

    def file_text(self, section: str, key: str) -> str:
        raw = self._layers.get(section, key)
        path = (raw.base_dir / str(raw.value)).expanduser()
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"setting {section}.{key} from {raw.source}: cannot read {path} "
                f"({exc.strerror}); point it at a readable text file"
            ) from None

    def timezone(self, section: str, key: str) -> ZoneInfo:
        return self._convert(section, key, _as_zone, "an IANA time zone such as Europe/Berlin")

    def quiet_hours(self, section: str, key: str) -> QuietHours | None:
        return self._convert(
            section, key, lambda v: QuietHours.parse(_as_text(v)), 'like "22:00-07:00", or ""'
        )

    def agent_keys(self, section: str, key: str) -> frozenset[AgentKey]:
        return self._convert(
            section, key, _as_agent_keys, "a comma-separated list like telegram:123,discord:456"
        )

    def choice(self, section: str, key: str, options: type[E]) -> E:
        names = " or ".join(repr(o.value) for o in options)
        return self._convert(section, key, lambda v: options(str(v).strip().lower()), names)

    def url(self, section: str, key: str) -> str:
        return self._convert(section, key, _as_url, "an http(s):// or ws(s):// URL, or nothing")

    def address(self, section: str, key: str) -> tuple[str, int]:
        return self._convert(section, key, _as_address, "host:port, such as 0.0.0.0:8443")

    def numbers(self, section: str, key: str) -> tuple[int, ...]:
        return self._convert(
            section, key, _as_numbers, "whole numbers separated by commas, such as 0,1"
        )

    def prices(self, section: str, key: str) -> dict[str, Price]:
        return self._convert(
            section,
            key,
            _as_prices,
            "a table of model = [input, cached input, output] in US dollars per million "
            'tokens, e.g. "gpt-4o-mini" = [0.15, 0.075, 0.60]',
        )

    def postgres_url(self, section: str, key: str) -> Secret:
        """A ``postgresql://`` or ``postgres://`` URL, or empty. It holds a password, so a bad
        one is described without its text."""
        raw = self._layers.get(section, key)
        text = _as_text(raw.value).strip()
        if not text.startswith(POSTGRES_SCHEMES):
            return Secret("")
        problem = _postgres_url_problem(text)
        if problem:
            raise ConfigError(
                f"setting {section}.{key} from {raw.source}: {problem}; expected "
                "postgresql://user:password@host:port/database"
            )
        return Secret(text)


def _as_text(value: Any) -> str:
    if isinstance(value, bool | dict | list):
        raise TypeError("")
    return str(value)


def _as_int(value: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError("")
    return int(value)


def _at_least(value: N, minimum: float) -> N:
    if value < minimum:
        raise ValueError("")
    return value


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("")


def _as_zone(value: Any) -> ZoneInfo:
    try:
        return ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("") from None


def _as_agent_keys(value: Any) -> frozenset[AgentKey]:
    items = value if isinstance(value, list) else str(value).split(",")
    try:
        return frozenset(AgentKey.parse(str(item)) for item in items if str(item).strip())
    except InvalidAgentKey as exc:
        raise ValueError(str(exc)) from None


POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def _postgres_url_problem(text: str) -> str:
    """What is wrong with a PostgreSQL URL, or nothing."""
    if any(c.isspace() for c in text):
        return "the PostgreSQL URL contains spaces"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return "the PostgreSQL URL is malformed (is its port a number?)"
    if not parts.hostname and "host=" not in parts.query:
        return "the PostgreSQL URL names no host"
    if port == 0:
        return "the PostgreSQL URL's port is 0"
    if not parts.path.strip("/"):
        return "the PostgreSQL URL names no database"
    return ""


def _as_address(value: Any) -> tuple[str, int]:
    host, colon, port = str(value).strip().rpartition(":")
    number = int(port)
    if not colon or not host or not 0 < number < 65536:
        raise ValueError("")
    return host.strip("[]"), number


def _as_numbers(value: Any) -> tuple[int, ...]:
    items = value if isinstance(value, list) else str(value).split(",")
    numbers = tuple(_as_int(item) for item in items if str(item).strip())
    if any(n < 0 for n in numbers) or len(set(numbers)) != len(numbers):
        raise ValueError("each number once, none negative")
    return numbers


def _as_url(value: Any) -> str:
    text = str(value).strip().rstrip("/")
    if text and not text.startswith(("http://", "https://", "ws://", "wss://")):
        raise ValueError("")
    return text


def _as_prices(value: Any) -> dict[str, Price]:
    """A price table: TOML's own table, or JSON text of one (from the environment)."""
    table = json.loads(value) if isinstance(value, str) else value
    if not isinstance(table, dict):
        raise TypeError("")
    return {str(model): _as_price(str(model), entry) for model, entry in table.items()}


def _as_price(model: str, entry: Any) -> Price:
    numbers = entry if isinstance(entry, list) else None
    if (
        numbers is None
        or len(numbers) != 3
        or not all(isinstance(n, int | float) and not isinstance(n, bool) for n in numbers)
        or min(numbers) < 0
    ):
        raise ValueError(f"{model} needs three numbers of at least 0")
    return Price(*(float(n) for n in numbers))


# --------------------------------------------------------------------- assembly


def default_database_path(env: Mapping[str, str]) -> Path:
    data_home = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "agentcore" / "agentcore.db"


def load_settings(
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    dotenv_file: Path | None = Path(".env"),
    *,
    require_model: bool = True,
) -> Settings:
    """Build the settings once. ``env`` defaults to ``os.environ``; a ``.env`` file in the
    working directory fills in what the real environment leaves unset. The operator CLI never
    calls the model, so it passes ``require_model=False``."""
    environment = dict(_dotenv(dotenv_file)) | dict(os.environ if env is None else env)
    package = _package_dir()
    layers = _Layers(_read_toml(package / "defaults.toml", "shipped defaults"), package)
    if config_file is not None:
        path = config_file.expanduser().resolve()
        layers.add_table(_read_toml(path, str(path)), str(path), path.parent)
    layers.add_env(environment)
    settings = _build(_Reader(layers), environment, require_model)
    return replace(settings, warnings=tuple(layers.warnings))


def _dotenv(path: Path | None) -> dict[str, str]:
    if path is None or not path.is_file():
        return {}
    from dotenv import dotenv_values  # noqa: PLC0415  (only needed when a .env file exists)

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def _build(read: _Reader, env: Mapping[str, str], require_model: bool) -> Settings:
    llm = LLMConfig(
        model=read.text("llm", "model"),
        base_url=read.url("llm", "base_url"),
        api_key=Secret(read.text("llm", "api_key")),
        timeout=read.number("llm", "timeout_seconds", 1.0),
        max_retries=read.integer("llm", "max_retries", 0),
        prompt_cache_key=_prompt_cache_key(read),
        tools=read.choice("llm", "tools", ToolMode),
        max_tokens=read.integer("llm", "max_tokens", 0),
    )
    if require_model and not llm.api_key and not llm.base_url:
        raise ConfigError(NO_MODEL_HINT)
    if not llm.model:
        raise ConfigError("setting llm.model is empty: set AGENTCORE_MODEL to your model's name")
    database_url = read.postgres_url("storage", "path")
    path = "" if database_url else read.text("storage", "path")
    stall = read.number("storage", "stall_seconds", 1.0)
    if database_url and stall <= llm.timeout:
        raise ConfigError(
            f"setting storage.stall_seconds ({stall:g}) must be longer than llm.timeout_seconds "
            f"({llm.timeout:g}): a stopped process's model call must be over before another "
            "process takes over its people"
        )
    return Settings(
        llm=llm,
        transcription=TranscriptionConfig(
            model=read.text("media", "transcription_model"),
            base_url=read.url("media", "transcription_base_url") or llm.base_url,
            api_key=Secret(read.text("media", "transcription_api_key")) or llm.api_key,
        ),
        streaming=StreamingConfig(
            read.flag("streaming", "enabled"), read.number("streaming", "edit_seconds", 0.2)
        ),
        search=_search_settings(read),
        embedding=EmbeddingConfig(
            query_model=read.text("search", "embedding_query_model"),
            base_url=read.url("search", "embedding_base_url") or llm.base_url,
            api_key=Secret(read.text("search", "embedding_api_key")) or llm.api_key,
            timeout=read.number("search", "embedding_timeout_seconds", 1.0),
        ),
        agent=_agent_settings(read),
        consolidation=ConsolidationSettings(
            enabled=read.flag("consolidation", "enabled"),
            model=read.text("consolidation", "model"),
            daily_tokens=read.integer("consolidation", "daily_tokens", 0),
            sweep_seconds=read.number("consolidation", "sweep_seconds", 1.0),
            shutdown_seconds=read.number("consolidation", "shutdown_seconds", 0.0),
        ),
        runtime=RuntimeSettings(
            llm_concurrency=read.integer("llm", "concurrency", 1),
            max_cached_agents=read.integer("runtime", "max_cached_agents", 1),
            shutdown_grace=read.number("runtime", "shutdown_grace_seconds", 0.0),
            admins=read.agent_keys("runtime", "admins"),
            allowed=read.agent_keys("runtime", "allowed") or None,
            rate_limit_per_minute=read.integer("runtime", "rate_limit_per_minute", 1),
            max_pending_per_user=read.integer("runtime", "max_pending_per_user", 1),
            held_answer_seconds=read.number("runtime", "held_answer_seconds", 1.0),
            max_in_flight=read.integer("runtime", "max_in_flight", 1),
            max_stored_chars=read.integer("runtime", "max_stored_chars", 1000),
        ),
        usage=UsageSettings(
            person_daily_tokens=read.integer("usage", "daily_tokens_per_person", 0),
            total_daily_tokens=read.integer("usage", "daily_tokens_total", 0),
            prices=read.prices("usage", "prices"),
        ),
        database=Path(path).expanduser() if path else default_database_path(env),
        database_url=database_url,
        busy_timeout_ms=read.integer("storage", "busy_timeout_ms", 0),
        pool_size=read.integer("storage", "pool_size", 2),
        stall_seconds=stall,
        person_locks=read.flag("storage", "person_locks"),
        telegram=TelegramConfig(
            Secret(read.text("telegram", "token")),
            read.url("telegram", "base_url"),
            webhook_url=read.url("telegram", "webhook_url"),
            webhook_listen=read.address("telegram", "webhook_listen"),
        ),
        discord=_discord(read),
        log_level=_log_level(read),
    )


def _discord(read: _Reader) -> DiscordConfig:
    count = read.integer("discord", "shard_count", 0)
    shards = read.numbers("discord", "shard_ids")
    if shards and not count:
        raise ConfigError("setting discord.shard_ids needs discord.shard_count (the total)")
    if any(shard >= count for shard in shards):
        raise ConfigError(
            f"setting discord.shard_ids: shard ids run from 0 to shard_count - 1 ({count - 1})"
        )
    return DiscordConfig(
        token=Secret(read.text("discord", "token")),
        api_base=read.url("discord", "api_base"),
        gateway_url=read.url("discord", "gateway_url"),
        sync_guild=read.integer("discord", "sync_guild", 0),
        sharded=read.flag("discord", "sharded"),
        shard_count=count,
        shard_ids=shards,
        identify_interval=read.number("discord", "identify_interval_seconds", 0.0),
    )


def _agent_settings(read: _Reader) -> AgentSettings:
    window = read.integer("memory", "context_window", 1000)
    memory = MemorySettings(
        persona=read.file_text("memory", "persona_file"),
        human=read.text("memory", "human"),
        persona_limit=read.integer("memory", "persona_limit", 100),
        human_limit=read.integer("memory", "human_limit", 100),
        context_window=window,
        session_gap=timedelta(minutes=read.number("memory", "session_gap_minutes", 1.0)),
        recall_tokens=read.integer("memory", "recall_tokens", 0),
        timezone=read.timezone("memory", "timezone"),
    )
    if len(memory.persona) > memory.persona_limit:
        raise ConfigError(
            f"the persona file is {len(memory.persona)} characters, over memory.persona_limit "
            f"({memory.persona_limit}); shorten it or raise the limit"
        )
    if len(memory.human) > memory.human_limit:
        raise ConfigError("setting memory.human is longer than memory.human_limit; shorten it")
    return AgentSettings(
        instructions=read.file_text("agent", "instructions_file"),
        max_steps=read.integer("agent", "max_steps", 1),
        search_limit=read.integer("agent", "search_limit", 1),
        message_char_cap=read.integer("agent", "message_char_cap", 100),
        memory=memory,
        reminders=_reminder_settings(read),
        media=_media_settings(read),
        stream=read.flag("streaming", "enabled"),
    )


def _reminder_settings(read: _Reader) -> ReminderSettings:
    checkin_days = read.number("reminders", "checkin_after_days", 0.0)
    return ReminderSettings(
        enabled=read.flag("reminders", "enabled"),
        max_pending=read.integer("reminders", "max_pending", 1),
        max_message_chars=read.integer("reminders", "max_message_chars", 10),
        max_unprompted_per_day=read.integer("reminders", "max_per_day", 1),
        quiet_hours=read.quiet_hours("reminders", "quiet_hours"),
        checkin_after=timedelta(days=checkin_days) if checkin_days else None,
    )


def _search_settings(read: _Reader) -> EmbeddingSettings:
    return EmbeddingSettings(
        model=read.text("search", "embedding_model"),
        batch_size=read.integer("search", "embedding_batch", 1),
        query_timeout=read.number("search", "query_timeout_seconds", 0.05),
        retry_seconds=read.number("search", "retry_seconds", 0.1),
        max_retry_seconds=read.number("search", "max_retry_seconds", 1.0),
    )


def _media_settings(read: _Reader) -> MediaSettings:
    return MediaSettings(
        max_file_bytes=int(read.number("media", "max_file_mb", 0.001) * 2**20),
        vision=read.choice("media", "vision", Vision),
        image_max_side=read.integer("media", "image_max_side", 64),
        image_max_pixels=int(read.number("media", "image_max_megapixels", 0.01) * 1_000_000),
        transcription=read.flag("media", "transcription"),
        max_document_pages=read.integer("media", "max_document_pages", 1),
        passage_chars=read.integer("media", "passage_chars", 200),
        progress_seconds=read.number("media", "progress_seconds", 0.0),
    )


def _prompt_cache_key(read: _Reader) -> bool:
    """``auto`` sends it only to OpenAI itself: some compatible servers refuse unknown fields."""
    choice = read.text("llm", "prompt_cache_key").lower()
    if choice == "auto":
        base_url = read.url("llm", "base_url")
        return not base_url or base_url.startswith("https://api.openai.com")
    if choice not in {"on", "off"}:
        raise ConfigError(f"setting llm.prompt_cache_key: expected auto, on or off, got {choice!r}")
    return choice == "on"


def _log_level(read: _Reader) -> str:
    level = read.text("logging", "level").upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(
            f"setting logging.level: expected DEBUG, INFO, WARNING or ERROR, got {level!r}"
        )
    return level
