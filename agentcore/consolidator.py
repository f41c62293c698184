"""Sleep-time consolidation: after a person's session ends, one background call reads it and
updates their core memory blocks and archival notes (``agentcore.memory.consolidation`` says
what is asked and how the answer is read).

When: a periodic sweep finds people whose last message is older than the session gap (which
also finds, at start, sessions that ended while the bot was down); at shutdown, sessions still
open get a bounded pass. Each message is read by one consolidation only (the store marks them,
atomically with the edits), so a session is never consolidated twice.

It never holds up a live turn: the model is called without any lock, and the edits are applied
under the person's turn lock only once no turn of theirs runs or waits, against the blocks as
they are then; with several processes on one database, under the person's lock there too
(``Storage.person``), written through its connection like a turn's writes. A failure is a
log line; a block is never lost: every change is a new version by "consolidation" that
``/admin revert`` undoes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from agentcore.clock import Clock
from agentcore.llm.base import LLMClient, LLMError, LLMRequest, LLMResponse
from agentcore.memory.consolidation import (
    InvalidAnswer,
    apply,
    consolidation_request,
    read_answer,
)
from agentcore.memory.tokens import TokenEstimator
from agentcore.messages import Role
from agentcore.records import (
    BlockEdit,
    ConsolidationRun,
    Purpose,
    StoredMessage,
    Unconsolidated,
)
from agentcore.settings import ConsolidationSettings, MemorySettings
from agentcore.storage.protocols import (
    BlockStore,
    ConsolidationStore,
    MessageStore,
    OpsStore,
    PersonStorage,
    StorageError,
)
from agentcore.types import AgentKey
from agentcore.usage.meter import Meter, OverBudget

log = logging.getLogger(__name__)

_BATCH = 100  # people looked at per sweep
_CHARS_PER_WINDOW_TOKEN = 2  # a session may fill about half the context window


class ConsolidatorStorage(BlockStore, MessageStore, OpsStore, ConsolidationStore, Protocol):
    """The slice of storage consolidation uses."""

    def person(
        self, key: AgentKey, *, wait: bool = True
    ) -> AbstractAsyncContextManager[PersonStorage]: ...


class PersonLocks(Protocol):
    def hold_when_idle(self, key: AgentKey) -> AbstractAsyncContextManager[None]: ...


class Consolidator:
    def __init__(
        self,
        *,
        storage: ConsolidatorStorage,
        meter: Meter,
        llm: LLMClient,
        clock: Clock,
        locks: PersonLocks,
        memory: MemorySettings,
        settings: ConsolidationSettings,
        model: str,
    ) -> None:
        self._storage = storage
        self._meter = meter
        self._llm = llm
        self._clock = clock
        self._locks = locks
        self._memory = memory
        self._settings = settings
        self._model = model
        self._estimator = TokenEstimator()
        self._running: set[int] = set()  # agents being consolidated by this process
        self._budget_told: date | None = None

    async def run(self) -> None:
        """Sweep now (sessions that ended while the bot was down) and then periodically."""
        while True:
            await self.sweep()
            await asyncio.sleep(self._settings.sweep_seconds)

    async def sweep(self) -> int:
        """Consolidate every session whose gap has passed; how many were consolidated."""
        return await self._consolidate_all(self._clock.now() - self._memory.session_gap)

    async def at_shutdown(self) -> None:
        """Sessions still open get ``shutdown_seconds``; the rest are found at the next start."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._settings.shutdown_seconds):
                await self._consolidate_all(self._clock.now() + timedelta(seconds=1))
                return
        log.info("consolidation: stopped at shutdown; the rest is done after the next start")

    async def _consolidate_all(self, last_before: datetime) -> int:
        if not self._settings.enabled:
            return 0
        try:
            waiting = await self._storage.unconsolidated(last_before, _BATCH)
        except StorageError as exc:
            log.warning("consolidation: cannot list ended sessions: %s", exc)
            return 0
        done = 0
        for session in waiting:
            if session.agent_id not in self._running:
                done += await self.consolidate(session)
        return done

    async def consolidate(self, session: Unconsolidated) -> bool:
        """One person's unread messages; False if it must wait (budget, a failing model)."""
        self._running.add(session.agent_id)
        try:
            return await self._consolidate(session)
        except LLMError as exc:
            log.warning("consolidation of %s failed, trying later: %s", session.key, exc)
        except OverBudget:
            log.info("consolidation of %s waits: today's tokens are spent", session.key)
        except StorageError as exc:
            log.error("consolidation of %s could not be stored: %s", session.key, exc)
        finally:
            self._running.discard(session.agent_id)
        return False

    async def _consolidate(self, session: Unconsolidated) -> bool:
        rows = await self._storage.context_messages(session.agent_id, session.after_id + 1)
        if not rows:
            return False
        through = rows[-1].id
        if not any(r.role is Role.USER for r in rows):
            return await self._record(session, through, "nothing")
        blocks = await self._storage.list_blocks(session.agent_id)
        request = consolidation_request(blocks, self._fitting(rows), self._memory.timezone)
        estimate = self._estimator.estimate(request)
        if not await self._within_budget(estimate):
            return False
        response = await self._call(session, request)
        usage = response.usage
        prompt, completion = (
            (usage.prompt_tokens, usage.completion_tokens)
            if usage
            else (estimate, len(response.content or "") // 4)
        )
        try:
            proposal = read_answer(response.content or "")
        except InvalidAnswer as exc:
            log.warning(
                "consolidation of %s: the model's answer was not usable (%s); nothing changed",
                session.key,
                exc,
            )
            return await self._record(session, through, "invalid", prompt, completion)
        async with (
            self._locks.hold_when_idle(session.key),
            self._storage.person(session.key) as store,
        ):
            current = {b.label: b for b in await store.list_blocks(session.agent_id)}
            changes = apply(proposal, current, self._memory.human)
            for problem in changes.refused:
                log.info("consolidation of %s: left out %s", session.key, problem)
            edits = tuple(
                BlockEdit(c.label, c.value, current[c.label].version) for c in changes.blocks
            )
            outcome = "nothing" if changes.empty else "changed"
            stored = await self._record(
                session, through, outcome, prompt, completion, edits, changes.notes, store
            )
        if stored and not changes.empty:
            log.info(
                "consolidated %s: %s, %d archival note(s), %d tokens",
                session.key,
                ", ".join(f"{e.label} updated" for e in edits) or "no block changed",
                len(changes.notes),
                prompt + completion,
            )
        return stored

    async def _call(self, session: Unconsolidated, request: LLMRequest) -> LLMResponse:
        """The model call, metered with the person's other calls (failed ones too) and held to
        their token budget (``OverBudget``: it waits until the budget resets)."""
        model = self._meter.serving(
            session.key,
            session.agent_id,
            Purpose.CONSOLIDATION,
            llm=self._llm,
            model=self._model,
        )
        return await model.complete(request)

    def _fitting(self, rows: Sequence[StoredMessage]) -> list[StoredMessage]:
        """The newest messages that fit in about half the context window."""
        budget = self._memory.context_window * _CHARS_PER_WINDOW_TOKEN
        kept: list[StoredMessage] = []
        for row in reversed(rows):
            budget -= len(row.content or "") + sum(len(c.arguments) for c in row.tool_calls)
            if budget < 0 and kept:
                break
            kept.append(row)
        return kept[::-1]

    async def _within_budget(self, estimate: int) -> bool:
        limit = self._settings.daily_tokens
        if limit <= 0:
            return True
        today = self._clock.now().astimezone(UTC).date()
        since = datetime(today.year, today.month, today.day, tzinfo=UTC)
        used = await self._storage.consolidation_tokens_since(since)
        if used + estimate <= limit:
            return True
        if self._budget_told != today:
            self._budget_told = today
            log.warning(
                "consolidation: today's budget of %d tokens is spent (%d used); ended sessions "
                "wait until tomorrow (UTC). Raise [consolidation] daily_tokens to allow more",
                limit,
                used,
            )
        return False

    async def _record(
        self,
        session: Unconsolidated,
        through: int,
        outcome: str,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        edits: tuple[BlockEdit, ...] = (),
        notes: tuple[str, ...] = (),
        store: ConsolidationStore | None = None,
    ) -> bool:
        """Record the run, through ``store`` if given (the person's, while their lock is held)."""
        run = ConsolidationRun(
            agent_id=session.agent_id,
            after_id=session.after_id,
            through_id=through,
            created_at=self._clock.now(),
            outcome=outcome,
            model=self._model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            edits=edits,
            notes=notes,
        )
        stored = await (store or self._storage).record_consolidation(run)
        if not stored:
            log.info("consolidation of %s: its blocks changed meanwhile; trying later", session.key)
        return stored
