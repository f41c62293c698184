"""Settings: defaults, user file, environment; one clear line for every bad value."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from agentcore.types import AgentKey
from config import ConfigError, Secret, load_settings

BASE = {"OPENAI_API_KEY": "sk-secret-value-123"}


def load(env: dict[str, str], config_file: Path | None = None) -> object:
    return load_settings(config_file, env=env, dotenv_file=None)


def test_misspelt_settings_are_warned_about_with_the_closest_name(tmp_path: Path) -> None:
    user_file = tmp_path / "bot.toml"
    user_file.write_text("[memmory]\ncontext_window = 8000\n[agent]\nmax_step = 4\n")
    env = BASE | {"AGENTCORE_MEMORY__NOPE": "1", "AGENTCORE_MODLE": "x", "OTHER_VAR": "y"}
    settings = load_settings(user_file, env=env, dotenv_file=None)
    assert settings.warnings == (
        f"ignoring [memmory] in {user_file}: no such section; did you mean [memory]?",
        f"ignoring agent.max_step in {user_file}: no such setting; did you mean agent.max_steps?",
        "ignoring environment variable AGENTCORE_MEMORY__NOPE: no such setting; "
        "did you mean AGENTCORE_MEMORY__HUMAN?",
        "ignoring environment variable AGENTCORE_MODLE: no such setting; "
        "did you mean AGENTCORE_MODEL?",
    )
    assert settings.agent.memory.context_window == 16000 and settings.agent.max_steps == 8
    assert load_settings(None, env=BASE, dotenv_file=None).warnings == ()


def test_every_shipped_setting_has_an_environment_name_that_is_not_warned_about() -> None:
    import tomllib  # noqa: PLC0415
    from importlib import resources  # noqa: PLC0415

    defaults = tomllib.loads((resources.files("config") / "defaults.toml").read_text())
    env = {  # a table (the price table) is given as JSON
        f"AGENTCORE_{section.upper()}__{key.upper()}": (
            json.dumps(value) if isinstance(value, dict) else str(value)
        )
        for section, entries in defaults.items()
        for key, value in entries.items()
        if not isinstance(value, list) and not key.endswith("_file")  # files: relative paths
    }
    assert load_settings(None, env=env, dotenv_file=None, require_model=False).warnings == ()


def test_a_folder_as_the_config_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file .* cannot be read \(Is a directory\)"):
        load_settings(tmp_path, env=BASE, dotenv_file=None)


def test_defaults_with_just_a_key() -> None:
    settings = load_settings(None, env=BASE | {"HOME": "/home/x"}, dotenv_file=None)
    assert settings.llm.model == "gpt-4o-mini"
    assert settings.agent.max_steps == 8
    assert settings.agent.memory.session_gap == timedelta(hours=4)
    assert "long memory" in settings.agent.memory.persona
    assert "core_memory_append" in settings.agent.instructions
    assert str(settings.database).endswith("agentcore/agentcore.db")


def test_environment_names_from_the_design() -> None:
    settings = load_settings(
        None,
        env={
            "OPENAI_BASE_URL": "http://localhost:11434/v1/",
            "AGENTCORE_MODEL": "llama3.1",
            "AGENTCORE_DB": "/tmp/x.db",
            "AGENTCORE_ADMINS": "telegram:123, discord:456",
            "TELEGRAM_TOKEN": "123:abc",
            "AGENTCORE_MEMORY__CONTEXT_WINDOW": "32000",
        },
        dotenv_file=None,
    )
    assert settings.llm.base_url == "http://localhost:11434/v1"
    assert not settings.llm.api_key
    assert settings.llm.model == "llama3.1"
    assert settings.database == Path("/tmp/x.db")
    assert settings.runtime.admins == {AgentKey("telegram", "123"), AgentKey("discord", "456")}
    assert settings.telegram.token.reveal() == "123:abc"
    assert settings.agent.memory.context_window == 32000


def test_user_file_then_environment_wins(tmp_path: Path) -> None:
    (tmp_path / "persona.txt").write_text("I am a pirate.")
    user_file = tmp_path / "bot.toml"
    user_file.write_text(
        '[memory]\npersona_file = "persona.txt"\ncontext_window = 8000\n[agent]\nmax_steps = 4\n'
    )
    settings = load_settings(
        user_file, env=BASE | {"AGENTCORE_AGENT__MAX_STEPS": "5"}, dotenv_file=None
    )
    assert settings.agent.memory.persona == "I am a pirate."  # relative to the user file
    assert settings.agent.memory.context_window == 8000
    assert settings.agent.max_steps == 5


def test_dotenv_fills_in_but_real_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("OPENAI_API_KEY=from-dotenv\nAGENTCORE_MODEL=dotenv-model\n")
    settings = load_settings(None, env={"AGENTCORE_MODEL": "env-model"}, dotenv_file=dotenv)
    assert settings.llm.api_key.reveal() == "from-dotenv"
    assert settings.llm.model == "env-model"


def test_flood_limits_are_operator_settings() -> None:
    settings = load_settings(
        None,
        env=BASE
        | {
            "AGENTCORE_RUNTIME__RATE_LIMIT_PER_MINUTE": "5",
            "AGENTCORE_RUNTIME__MAX_PENDING_PER_USER": "7",
            "AGENTCORE_RUNTIME__MAX_STORED_CHARS": "20000",
            "AGENTCORE_AGENT__MESSAGE_CHAR_CAP": "2000",
        },
        dotenv_file=None,
    )
    assert settings.runtime.rate_limit_per_minute == 5
    assert settings.runtime.max_pending_per_user == 7
    assert settings.runtime.max_in_flight == 10_000  # the shipped default
    assert settings.runtime.max_stored_chars == 20_000
    assert settings.agent.message_char_cap == 2000


def test_reminder_settings_default_and_overridden() -> None:
    shipped = load_settings(None, env=BASE, dotenv_file=None).agent.reminders
    assert shipped.enabled and shipped.quiet_hours is None and shipped.checkin_after is None
    changed = load_settings(
        None,
        env=BASE
        | {
            "AGENTCORE_REMINDERS__QUIET_HOURS": "22:30-07:00",
            "AGENTCORE_REMINDERS__CHECKIN_AFTER_DAYS": "3",
            "AGENTCORE_REMINDERS__MAX_PER_DAY": "4",
        },
        dotenv_file=None,
    ).agent.reminders
    assert str(changed.quiet_hours) == "22:30-07:00"
    assert changed.checkin_after == timedelta(days=3) and changed.max_unprompted_per_day == 4


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "no model endpoint configured: set OPENAI_API_KEY"),
        (
            BASE | {"AGENTCORE_MEMORY__CONTEXT_WINDOW": "big"},
            "setting memory.context_window from environment variable "
            "AGENTCORE_MEMORY__CONTEXT_WINDOW: expected a whole number of at least 1000, got 'big'",
        ),
        (BASE | {"AGENTCORE_AGENT__MAX_STEPS": "0"}, "setting agent.max_steps"),
        (BASE | {"AGENTCORE_MEMORY__TIMEZONE": "Mars/Olympus"}, "an IANA time zone"),
        (BASE | {"AGENTCORE_ADMINS": "telegram"}, "like telegram:123,discord:456"),
        (
            BASE | {"AGENTCORE_REMINDERS__QUIET_HOURS": "late"},
            "setting reminders.quiet_hours from environment variable "
            'AGENTCORE_REMINDERS__QUIET_HOURS: expected like "22:00-07:00", or ""',
        ),
        (BASE | {"AGENTCORE_REMINDERS__MAX_PENDING": "0"}, "setting reminders.max_pending"),
        (BASE | {"OPENAI_BASE_URL": "localhost:11434"}, "expected an http(s)://"),
        (BASE | {"AGENTCORE_DISCORD__SHARDED": "maybe"}, "true or false"),
        (BASE | {"AGENTCORE_LOG_LEVEL": "loud"}, "logging.level"),
        (BASE | {"AGENTCORE_MEMORY__PERSONA_LIMIT": "100"}, "over memory.persona_limit"),
        (BASE | {"AGENTCORE_MEMORY__PERSONA_FILE": "/nonexistent/p.txt"}, "cannot read"),
        (BASE | {"AGENTCORE_LLM__MODEL": " "}, "AGENTCORE_MODEL"),
        (BASE | {"AGENTCORE_RUNTIME__RATE_LIMIT_PER_MINUTE": "0"}, "runtime.rate_limit_per_minute"),
        (BASE | {"AGENTCORE_DISCORD__SHARD_IDS": "0,1"}, "shard_ids needs discord.shard_count"),
        (
            BASE | {"AGENTCORE_DISCORD__SHARD_COUNT": "2", "AGENTCORE_DISCORD__SHARD_IDS": "1,2"},
            "shard ids run from 0 to shard_count - 1 (1)",
        ),
        (BASE | {"AGENTCORE_DISCORD__SHARD_IDS": "0,x"}, "whole numbers separated by commas"),
        (BASE | {"AGENTCORE_DISCORD__SHARD_IDS": "1,1"}, "each number once"),
        (BASE | {"AGENTCORE_TELEGRAM__WEBHOOK_URL": "bot.example.com"}, "telegram.webhook_url"),
        (BASE | {"AGENTCORE_TELEGRAM__WEBHOOK_LISTEN": "8443"}, "host:port, such as"),
        (BASE | {"AGENTCORE_TELEGRAM__WEBHOOK_LISTEN": "0.0.0.0:99999"}, "host:port, such as"),
        (
            BASE
            | {"AGENTCORE_DB": "postgresql://u:p@h/db", "AGENTCORE_STORAGE__STALL_SECONDS": "20"},
            "storage.stall_seconds (20) must be longer than llm.timeout_seconds (30)",
        ),
        (BASE | {"AGENTCORE_MEDIA__VISION": "maybe"}, "expected 'auto' or 'on' or 'off'"),
        (BASE | {"AGENTCORE_MEDIA__MAX_FILE_MB": "-1"}, "setting media.max_file_mb"),
        (BASE | {"AGENTCORE_MEDIA__TRANSCRIPTION_BASE_URL": "whisper:8000"}, "http(s)://"),
        (BASE | {"AGENTCORE_STREAMING__ENABLED": "sometimes"}, "streaming.enabled"),
        (BASE | {"AGENTCORE_STREAMING__EDIT_SECONDS": "0"}, "streaming.edit_seconds"),
    ],
)
def test_bad_values_fail_with_one_line(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(env)
    text = str(info.value)
    assert expected in text and "\n" not in text


def test_several_processes_settings() -> None:
    settings = load_settings(
        None,
        env=BASE | {
            "AGENTCORE_DB": "postgresql://bot:pw@db.internal:5432/bot",
            "AGENTCORE_DISCORD__SHARD_COUNT": "3",
            "AGENTCORE_DISCORD__SHARD_IDS": "0, 1",
            "AGENTCORE_TELEGRAM__WEBHOOK_URL": "https://bot.example.com/telegram/",
            "AGENTCORE_TELEGRAM__WEBHOOK_LISTEN": "[::]:8080",
        },
        dotenv_file=None,
    )  # fmt: skip
    assert (settings.discord.shard_count, settings.discord.shard_ids) == (3, (0, 1))
    assert settings.telegram.webhook_url == "https://bot.example.com/telegram"
    assert settings.telegram.webhook_listen == ("::", 8080)
    assert (settings.stall_seconds, settings.person_locks) == (60.0, True)
    stall_unused = BASE | {"AGENTCORE_STORAGE__STALL_SECONDS": "5"}  # SQLite: one process
    assert load_settings(None, env=stall_unused, dotenv_file=None).stall_seconds == 5.0


def test_media_and_streaming_settings() -> None:
    settings = load_settings(
        None,
        env=BASE
        | {
            "OPENAI_BASE_URL": "http://localhost:11434/v1",
            "AGENTCORE_MEDIA__VISION": "OFF",
            "AGENTCORE_MEDIA__MAX_FILE_MB": "5",
            "AGENTCORE_STREAMING__ENABLED": "false",
        },
        dotenv_file=None,
    )
    media = settings.agent.media
    assert media.vision.value == "off" and media.max_file_bytes == 5 * 2**20
    assert not settings.agent.stream and settings.streaming.edit_seconds == 1.0
    # Transcription defaults to the chat endpoint, its key, and whisper-1.
    assert settings.transcription.base_url == "http://localhost:11434/v1"
    assert settings.transcription.api_key.reveal() == BASE["OPENAI_API_KEY"]
    assert settings.transcription.model == "whisper-1"
    local = load_settings(
        None,
        env=BASE
        | {
            "AGENTCORE_MEDIA__TRANSCRIPTION_BASE_URL": "http://127.0.0.1:8000/v1",
            "AGENTCORE_MEDIA__TRANSCRIPTION_API_KEY": "whisper-key",
        },
        dotenv_file=None,
    )
    assert local.transcription.base_url == "http://127.0.0.1:8000/v1"
    assert "whisper-key" not in repr(local)


def test_bad_user_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load(BASE, tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[memory\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(BASE, broken)


def test_secrets_never_print() -> None:
    settings = load_settings(None, env=BASE | {"TELEGRAM_TOKEN": "123:tok"}, dotenv_file=None)
    assert "sk-secret" not in repr(settings) and "123:tok" not in str(settings)
    assert repr(Secret("x")) == "Secret('***')"


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_a_postgresql_url_selects_postgresql(scheme: str) -> None:
    url = f"{scheme}://bot:pw-secret@db.example:5433/agentcore"
    settings = load_settings(None, env=BASE | {"AGENTCORE_DB": url}, dotenv_file=None)
    assert settings.database_url.reveal() == url
    assert "pw-secret" not in repr(settings.database_url)
    assert not load_settings(None, env=BASE, dotenv_file=None).database_url  # a path: SQLite


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("postgresql://bot:pw-secret@db:port/agentcore", "malformed"),
        ("postgresql://bot:pw-secret@db:5432/", "names no database"),
        ("postgresql://bot:pw-secret@:5432/agentcore", "names no host"),
        ("postgresql://bot:pw secret@db/agentcore", "contains spaces"),
    ],
)
def test_a_bad_postgresql_url_is_named_without_its_password(url: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, env=BASE | {"AGENTCORE_DB": url}, dotenv_file=None)
    message = str(caught.value)
    assert "storage.path" in message and problem in message
    assert "secret" not in message and "\n" not in message
