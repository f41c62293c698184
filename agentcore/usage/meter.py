"""The one way the core calls the model for a person: every call metered, recorded, budgeted.

Whatever serves a person (their turns, the summaries that fold their history, descriptions of
their photos, background work such as consolidation) calls the model through a ``PersonModel``
from ``Meter.serving``. Each
call is recorded with the person, what it was for, the model, and the provider's token counts,
the part served from its prompt cache included; a provider that reports no usage is counted by
the local estimate, marked as estimated.

Budgets (tokens a day per person, and for everyone together; operators exempt) are checked once
per piece of work, before its first call (``admit``): a turn or a consolidation that has begun
may finish, so nobody gets half an answer, and a person over budget is told so before any model
call. Days run midnight to midnight in the bot's time zone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from typing import Protocol
from zoneinfo import ZoneInfo

from agentcore.clock import Clock
from agentcore.llm.base import LLMClient, LLMError, LLMRequest, LLMResponse
from agentcore.memory.prompt import humanize_until
from agentcore.memory.tokens import TokenEstimator
from agentcore.records import LLMCallRecord, Purpose, TokensSpent
from agentcore.settings import UsageSettings
from agentcore.types import AgentKey

log = logging.getLogger(__name__)

PERSON_OVER = (
    "We've reached today's limit for our conversations, so I can't answer right now. I've kept "
    "what you wrote, and I can answer again {when}."
)
EVERYONE_OVER = (
    "I've used up everything I may use today, so I can't answer right now. I've kept what you "
    "wrote, and I can answer again {when}."
)


class MeterStorage(Protocol):
    async def record_llm_call(self, call: LLMCallRecord) -> None: ...

    async def tokens_spent(self, agent_id: int | None, day: date) -> TokensSpent: ...


class OverBudget(Exception):
    """Today's tokens are spent (the person's, or everyone's together). ``notice`` tells the
    person when they can talk again; ``resets_at`` is that moment."""

    def __init__(self, notice: str, resets_at: datetime, everyone: bool) -> None:
        super().__init__(notice)
        self.notice = notice
        self.resets_at = resets_at
        self.everyone = everyone


def day_of(when: datetime, tz: ZoneInfo) -> date:
    """The local day ``when`` falls on."""
    return when.astimezone(tz).date()


def next_midnight(when: datetime, tz: ZoneInfo) -> datetime:
    """When the local day after ``when``'s begins (when budgets reset)."""
    return datetime.combine(day_of(when, tz) + timedelta(days=1), clock_time.min, tz)


def when_budgets_reset(now: datetime, tz: ZoneInfo) -> str:
    """``at 00:00 UTC (in 5 hours)``."""
    resets = next_midnight(now, tz)
    return f"at {resets.strftime('%H:%M %Z')} ({humanize_until(resets - now)})"


class Meter:
    def __init__(
        self,
        *,
        llm: LLMClient,
        storage: MeterStorage,
        clock: Clock,
        settings: UsageSettings,
        tz: ZoneInfo,
        model: str,
        exempt: Callable[[AgentKey], bool] = lambda key: False,
    ) -> None:
        self._llm = llm
        self._storage = storage
        self._clock = clock
        self._settings = settings
        self._tz = tz
        self._model = model
        self._exempt = exempt
        self._estimator = TokenEstimator()  # only for calls whose provider reports no usage
        self._cap_logged: date | None = None

    def serving(
        self,
        key: AgentKey,
        agent_id: int | None,
        purpose: Purpose,
        *,
        llm: LLMClient | None = None,
        model: str = "",
    ) -> PersonModel:
        """The model for one piece of work for this person (a turn, a consolidation), on the
        bot's model unless ``llm`` (named ``model``) is given. ``agent_id`` is None before the
        person's agent exists (a photo in their first message): the calls then count toward
        everyone's total only."""
        return PersonModel(
            self, _Work(key, agent_id), purpose, llm or self._llm, model or self._model
        )

    async def admit(self, key: AgentKey, agent_id: int | None) -> None:
        """Raise ``OverBudget`` if this person, or everyone together, has used today's tokens."""
        per_person, total = self._settings.person_daily_tokens, self._settings.total_daily_tokens
        if not (per_person or total) or self._exempt(key):
            return
        now = self._clock.now()
        spent = await self._storage.tokens_spent(agent_id, day_of(now, self._tz))
        if total and spent.everyone >= total:
            self._log_cap(now, spent.everyone)
            raise self._over(now, everyone=True)
        if per_person and spent.person >= per_person:
            raise self._over(now, everyone=False)

    def _over(self, now: datetime, *, everyone: bool) -> OverBudget:
        when = when_budgets_reset(now, self._tz)
        notice = (EVERYONE_OVER if everyone else PERSON_OVER).format(when=when)
        return OverBudget(notice, next_midnight(now, self._tz), everyone)

    def _log_cap(self, now: datetime, spent: int) -> None:
        today = day_of(now, self._tz)
        if self._cap_logged != today:
            self._cap_logged = today
            log.warning(
                "the daily token cap ([usage] daily_tokens_total = %d) is reached (%d used): "
                "only operators are answered until midnight",
                self._settings.total_daily_tokens,
                spent,
            )

    async def record(
        self,
        work: _Work,
        purpose: Purpose,
        model: str,
        request: LLMRequest,
        response: LLMResponse | None,
        latency_ms: float,
    ) -> None:
        """Store one call: the provider's counts, or local estimates marked as such."""
        now = self._clock.now()
        prompt, completion, cached, estimated = self._counts(request, response)
        await self._storage.record_llm_call(
            LLMCallRecord(
                agent_id=work.agent_id,
                created_at=now,
                latency_ms=latency_ms,
                ok=response is not None,
                prompt_tokens=prompt,
                completion_tokens=completion,
                cached_tokens=cached,
                estimated=estimated,
                purpose=purpose,
                model=model,
                day=day_of(now, self._tz),
            )
        )

    def _counts(
        self, request: LLMRequest, response: LLMResponse | None
    ) -> tuple[int, int, int, bool]:
        """Prompt, completion and cached tokens, and whether they are estimates."""
        if response is None:
            return 0, 0, 0, False
        if response.usage is not None:
            usage = response.usage
            return usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens, False
        estimator = self._estimator
        return estimator.estimate(request), estimator.estimate_answer(response), 0, True


@dataclass(slots=True)
class _Work:
    """One piece of work for one person: admitted against the budgets once."""

    key: AgentKey
    agent_id: int | None
    admitted: bool = False


class PersonModel:
    """An ``LLMClient`` that serves one person: see the module docstring."""

    def __init__(
        self, meter: Meter, work: _Work, purpose: Purpose, llm: LLMClient, model: str
    ) -> None:
        self._meter = meter
        self._work = work
        self._purpose = purpose
        self._llm = llm
        self._model = model

    def doing(self, purpose: Purpose) -> PersonModel:
        """The same piece of work calling for another purpose (a summary inside a turn)."""
        return PersonModel(self._meter, self._work, purpose, self._llm, self._model)

    async def admit(self) -> None:
        """Check the budgets once for this piece of work; ``OverBudget`` if they are spent."""
        if not self._work.admitted:
            await self._meter.admit(self._work.key, self._work.agent_id)
            self._work.admitted = True

    async def complete(self, request: LLMRequest) -> LLMResponse:
        await self.admit()
        if self._work.agent_id is not None:  # the person's requests share a prompt cache
            request = replace(request, cache_key=f"agent-{self._work.agent_id}")
        started = time.perf_counter()
        try:
            response = await self._llm.complete(request)
        except LLMError:
            await self._record(request, None, started)
            raise
        await self._record(request, response, started)
        return response

    async def _record(
        self, request: LLMRequest, response: LLMResponse | None, started: float
    ) -> None:
        latency_ms = (time.perf_counter() - started) * 1000
        await self._meter.record(
            self._work, self._purpose, self._model, request, response, latency_ms
        )
