"""The core's settings: plain frozen values, built once by the composition root.

Loading (TOML, environment, validation) lives in ``config``; nothing in the core reads files or
environment variables.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from zoneinfo import ZoneInfo

from agentcore.schedule.model import QuietHours
from agentcore.types import AgentKey


@dataclass(frozen=True, slots=True)
class MemorySettings:
    persona: str = "I am a friendly, curious assistant with a good memory."
    human: str = "Nothing is known about this person yet."
    persona_limit: int = 5000
    human_limit: int = 5000
    context_window: int = 16000  # tokens the model accepts per request
    pressure_ratio: float = 0.75  # above this share of the window: a one-time note to save facts
    summarize_ratio: float = 0.90  # above this: fold the oldest messages into the summary
    keep_ratio: float = 0.50  # after folding, the recent messages use at most this share
    session_gap: timedelta = timedelta(hours=4)
    recall_tokens: int = 600  # automatic recall: tokens of matching older messages shown; 0 = off
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))


class Vision(enum.Enum):
    AUTO = "auto"  # send images; after the endpoint refuses one, stop (until a restart)
    ON = "on"
    OFF = "off"


@dataclass(frozen=True, slots=True)
class MediaSettings:
    """Photos, voice notes and documents people send."""

    max_file_bytes: int = 20 * 2**20  # larger files are not downloaded (Telegram's own limit)
    vision: Vision = Vision.AUTO
    image_max_side: int = 1568  # pixels; larger images are scaled down before storing
    image_max_pixels: int = 40_000_000  # larger images are refused unread (decompression bombs)
    transcription: bool = True
    max_document_pages: int = 1000  # longer documents are refused
    passage_chars: int = 1500  # a document page longer than this is filed as several passages
    progress_seconds: float = 10.0  # at most one "read N of M pages" message this often


@dataclass(frozen=True, slots=True)
class ConsolidationSettings:
    """Sleep-time consolidation: after a session ends, one background call updates core memory."""

    enabled: bool = True
    model: str = ""  # another model for it, on the same endpoint; "" = the chat model
    daily_tokens: int = 500_000  # across everyone, per day (UTC); 0 = no limit
    sweep_seconds: float = 300.0  # how often ended sessions are looked for
    shutdown_seconds: float = 10.0  # at shutdown, open sessions get this long


@dataclass(frozen=True, slots=True)
class ReminderSettings:
    enabled: bool = True  # the agent has the schedule_message tools
    max_pending: int = 20  # reminders waiting per person; more are refused
    max_message_chars: int = 1000  # of one reminder's text
    max_unprompted_per_day: int = 10  # reminders and check-ins sent per person in 24 hours
    quiet_hours: QuietHours | None = None  # the operator's default; a person may override it
    checkin_after: timedelta | None = None  # a silence this long may get a check-in; None = off


@dataclass(frozen=True, slots=True)
class AgentSettings:
    instructions: str = "You are a helpful assistant with long-term memory."
    max_steps: int = 8  # model calls per turn
    search_limit: int = 10  # default and cap of results for search tools
    message_char_cap: int = 8000  # longer messages are shortened for the model (stored whole)
    memory: MemorySettings = field(default_factory=MemorySettings)
    reminders: ReminderSettings = field(default_factory=ReminderSettings)
    media: MediaSettings = field(default_factory=MediaSettings)
    stream: bool = True  # answers are streamed to adapters that show them as they grow


@dataclass(frozen=True, slots=True)
class Price:
    """A model's price in US dollars per million tokens."""

    input: float  # prompt tokens the provider did not serve from its cache
    cached: float  # prompt tokens served from its cache
    output: float  # completion tokens


@dataclass(frozen=True, slots=True)
class UsageSettings:
    """Token budgets (0 = no limit; operators are exempt) and the price table for cost estimates.
    Days run from midnight to midnight in ``MemorySettings.timezone``."""

    person_daily_tokens: int = 0  # one person's model tokens a day (prompt + completion)
    total_daily_tokens: int = 0  # everyone's together
    prices: Mapping[str, Price] = field(default_factory=dict)  # by model name


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    llm_concurrency: int = 32
    max_cached_agents: int = 1024  # idle per-user slots kept in memory (LRU)
    shutdown_grace: float = 20.0  # seconds in-flight turns get to finish on shutdown
    admins: frozenset[AgentKey] = frozenset()
    allowed: frozenset[AgentKey] | None = None  # who may talk to the bot; None = everyone
    rate_limit_per_minute: int = 20  # messages per person; more are held back and answered later
    max_pending_per_user: int = 50  # held-back messages kept per person; beyond, declined
    held_answer_seconds: float = 60.0  # how often held-back messages are answered unprompted
    max_in_flight: int = 10_000  # turns running or waiting, across everyone (a few KB each)
    max_stored_chars: int = 64_000  # the hard limit of one stored message


@dataclass(frozen=True, slots=True)
class EmbeddingSettings:
    """Search by meaning: the embedding model and how the background worker paces itself."""

    model: str = ""  # the embedding model's name; "" = search is lexical only
    batch_size: int = 64  # texts per request to the endpoint
    poll_seconds: float = 2.0  # how often new rows are looked for once all are embedded
    retry_seconds: float = 5.0  # the first wait after a failure; doubled per failure...
    max_retry_seconds: float = 300.0  # ...up to this
    query_timeout: float = 2.0  # a search waits this long for its query's vector, then is lexical
    progress_seconds: float = 10.0  # at most one backfill progress line this often
