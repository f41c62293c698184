"""``AgentRuntime``: the one entry point adapters call.

It serialises each person's messages (one turn at a time, in arrival order) while different
people run concurrently, routes commands, turns failures into short friendly replies (the
details go to the operator's log), and shuts down gracefully.

Adapters either call ``handle(message)``, or, where the platform should only be told a message
was delivered once it is stored, ``accept(message)`` (stores it, fast) and later
``answer(ticket, sink, deliver=...)`` (runs the turn and delivers its reply).

Several processes may share one database (PostgreSQL). A person's turn then runs under their
lock in the database (``Storage.person``), taken after this process's own per-person lock, so
their turns never overlap in any process and take their messages in arrival order; the reply is
delivered before the lock is released, so replies leave in that order too. A turn whose process
died is finished by the next one to take the person's lock, and the held-back sweep of every
process looks for such people now and then.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from agentcore.agent import AgentLoop
from agentcore.clock import Clock
from agentcore.commands import Commands, is_costly, parse_command
from agentcore.consolidator import Consolidator
from agentcore.limits import OncePerPeriod, RateLimiter
from agentcore.llm.base import ClosableLLM, LLMConfigError, LLMError
from agentcore.settings import RuntimeSettings
from agentcore.storage.protocols import (
    LockLost,
    PersonBusy,
    PersonStorage,
    Storage,
    StorageError,
)
from agentcore.types import (
    AgentKey,
    InboundMessage,
    Reply,
    ReplyKind,
    ReplySink,
    SystemEvent,
    clean_text,
)
from agentcore.usage.meter import OverBudget

log = logging.getLogger(__name__)

LLM_FAILED = "I couldn't reach my language model, please try again in a moment."
NOT_SET_UP = "I'm not set up correctly yet; my operator has been told."
STORAGE_FAILED = "Something went wrong on my side and I couldn't save that. Please try again later."
SHUTTING_DOWN = "I'm restarting right now. Please send that again in a minute."
EMPTY_MESSAGE = "Send me some text and I'll answer."
SLOW_DOWN = (
    "You're sending messages faster than I can keep up with. I've kept them all and will "
    "answer them together in a minute."
)
COMMAND_LATER = (
    "You're sending messages faster than I can keep up with, so I didn't run /{name}. "
    "Please send it again in a minute."
)
BUSY = "I'm very busy right now. I've kept your message and will answer it in a minute."
QUEUE_FULL = "Too many of your messages are waiting already; please wait for my answer."
NOT_ALLOWED = "Sorry, this bot is private. Ask its operator if you'd like access."
_PRUNE_EVERY = 1000  # accepted messages between inbox clean-ups
_MAX_NAME = 128  # display names are for the prompt, not for essays
_REDELIVERY_WINDOW = timedelta(days=1)
_NOTHING = Reply("", ReplyKind.NOTICE)

# How an adapter sends a reply to the message it answers (where the message's route says).
Deliver = Callable[[InboundMessage, Reply], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Ticket:
    """A message the runtime has accepted: stored (``pending_id``) or answered already."""

    message: InboundMessage
    pending_id: int | None = None
    reply: Reply | None = None  # set when the answer needs no turn (notices, failures)
    swept: bool = False  # found waiting, not just received: left alone if another process is
    # answering the person right now (it takes their waiting messages too)


@dataclass
class _Slot:
    """Per-person state kept in memory: the lock that orders their turns."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0  # tasks holding or waiting for the lock
    owner: asyncio.Task[Any] | None = None  # the task holding it


class AgentSlots:
    """A bounded LRU of per-person slots. Only idle slots are evicted, so a person's order is
    never broken; busy ones may briefly push the size over the bound."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._slots: OrderedDict[AgentKey, _Slot] = OrderedDict()

    def __len__(self) -> int:
        return len(self._slots)

    def busy(self, key: AgentKey) -> bool:
        """Whether another task holds this person's turn lock (so ``hold`` would wait)."""
        slot = self._slots.get(key)
        return slot is not None and slot.lock.locked() and slot.owner is not asyncio.current_task()

    def held_here(self, key: AgentKey) -> bool:
        """Whether the current task holds this person's turn lock."""
        slot = self._slots.get(key)
        return slot is not None and slot.owner is asyncio.current_task()

    @contextlib.asynccontextmanager
    async def hold(self, key: AgentKey) -> AsyncIterator[None]:
        """This person's turn lock. Re-entrant for the task holding it (an operator's command
        may act on their own agent, e.g. importing over it)."""
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot()
        self._slots.move_to_end(key)
        task = asyncio.current_task()
        if slot.owner is not None and slot.owner is task:
            yield
            return
        slot.users += 1
        try:
            async with slot.lock:
                slot.owner = task
                try:
                    yield
                finally:
                    slot.owner = None
        finally:
            slot.users -= 1
            self._evict_idle()

    @contextlib.asynccontextmanager
    async def hold_when_idle(self, key: AgentKey) -> AsyncIterator[None]:
        """Hold the person's lock once no turn of theirs runs or waits (background work such
        as consolidation): a turn that arrives meanwhile waits only for what is done under it."""
        while (slot := self._slots.get(key)) is not None and slot.users > 0:
            async with slot.lock:  # let the turns ahead finish
                pass
        async with self.hold(key):
            yield

    def _evict_idle(self) -> None:
        """Drop least-recently-used idle slots until the cache is within its bound."""
        excess = len(self._slots) - self._capacity
        if excess <= 0:
            return
        # The oldest slots come first and are nearly always idle, so this stops after a few
        # steps instead of walking every cached person on every turn.
        idle = itertools.islice((k for k, s in self._slots.items() if s.users == 0), excess)
        for key in list(idle):
            del self._slots[key]


class PersonLocks:
    """A person's turn lock in this process (``AgentSlots``) and, where processes share the
    database, in the database too (``Storage.person``): what runs beside turns and must not
    land in the middle of one (an import) holds both, in the order a turn takes them."""

    def __init__(self, slots: AgentSlots, storage: Storage) -> None:
        self._slots = slots
        self._storage = storage

    def busy(self, key: AgentKey) -> bool:
        return self._slots.busy(key)

    @contextlib.asynccontextmanager
    async def hold(self, key: AgentKey) -> AsyncIterator[None]:
        if self._slots.held_here(key):  # this task runs their turn: it holds both already
            yield
            return
        async with self._slots.hold(key), self._storage.person(key):
            yield


class AgentRuntime:
    def __init__(
        self,
        *,
        storage: Storage,
        llm: ClosableLLM,
        loop: AgentLoop,
        commands: Commands,
        clock: Clock,
        settings: RuntimeSettings,
        slots: AgentSlots | None = None,
        consolidator: Consolidator | None = None,
    ) -> None:
        """``slots`` are the per-person turn locks, when the commands or consolidation share
        them."""
        self._storage = storage
        self._llm = llm
        self._loop = loop
        self._commands = commands
        self._clock = clock
        self._settings = settings
        self._slots = slots if slots is not None else AgentSlots(settings.max_cached_agents)
        self._consolidator = consolidator
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False
        self._refused = OncePerPeriod()  # one refusal per person per day
        self._over_budget = OncePerPeriod()  # one budget notice per person per budget day
        self._limiter = RateLimiter(settings.rate_limit_per_minute)
        self._held: set[str] = set()  # platforms with messages held back since the last sweep
        self._accepted = 0

    @property
    def cached_agents(self) -> int:
        return len(self._slots)

    def is_operator(self, key: AgentKey) -> bool:
        return self._commands.is_operator(key)

    async def handle(
        self,
        message: InboundMessage,
        sink: ReplySink | None = None,
        *,
        deliver: Deliver | None = None,
    ) -> Reply:
        """Answer one inbound message (see ``answer``). Never raises for anything a person or
        model can cause."""
        return await self.answer(await self.accept(message), sink, deliver=deliver)

    async def accept(self, message: InboundMessage) -> Ticket:
        """Store the message so it survives a crash; commands and notices are not stored.

        A person over the rate limit, or a bot with too much work in flight, gets the message
        stored but held back (answered by ``held_back_tickets`` or that person's next turn,
        whichever comes first) and one notice per minute; a person with too many held-back
        messages gets new ones declined. Commands are never held back: over the rate limit a
        costly one is refused, with a reply that says so, and the others (``/forget`` above
        all) run.
        """
        message = replace(
            message,
            text=clean_text(message.text)[: self._settings.max_stored_chars],
            display_name=clean_text(message.display_name)[:_MAX_NAME],
        )
        if self._closing:
            return Ticket(message, reply=Reply(SHUTTING_DOWN, ReplyKind.NOTICE))
        if not message.text.strip() and not message.files:
            return Ticket(message, reply=Reply(EMPTY_MESSAGE, ReplyKind.NOTICE))
        if not self._may_talk(message.key):
            return Ticket(message, reply=self._refusal(message.key))
        # A message with files is never a command, even if its caption starts with "/".
        command = None if message.files else parse_command(message.text)
        allowed = self._limiter.allow(message.key, self._clock.now())
        if command is not None:
            return self._command_ticket(message, command[0], allowed)
        if not allowed:
            return await self._hold_back(message, SLOW_DOWN)
        if self._in_flight >= self._settings.max_in_flight:
            return await self._hold_back(message, BUSY)
        try:
            pending_id = await self._storage.add_pending(message, self._clock.now())
        except StorageError as exc:
            return self._storage_failed(message, exc)
        if pending_id is None:
            log.info(
                "ignoring %s's message %s: it was delivered before", message.key, message.source
            )
            return Ticket(message, reply=_NOTHING)
        await self._prune_now_and_then()
        return Ticket(message, pending_id)

    async def _prune_now_and_then(self) -> None:
        """Every so many messages, forget inbox rows old enough that no redelivery will come."""
        self._accepted += 1
        if self._accepted % _PRUNE_EVERY == 0:
            await self._storage.prune_inbox(self._clock.now() - _REDELIVERY_WINDOW)

    def _command_ticket(self, message: InboundMessage, name: str, allowed: bool) -> Ticket:
        """Commands are not stored; one that is refused says so (never a silent drop)."""
        if allowed or not is_costly(name):
            return Ticket(message)
        log.info("not running /%s for %s: over the rate limit", name, message.key)
        return Ticket(message, reply=Reply(COMMAND_LATER.format(name=name), ReplyKind.NOTICE))

    async def _hold_back(self, message: InboundMessage, notice: str) -> Ticket:
        """Store without starting a turn (a later turn of this person answers it too)."""
        try:
            if (
                await self._storage.count_pending(message.key)
                >= self._settings.max_pending_per_user
            ):
                reason, notice = "too many waiting, declined", QUEUE_FULL
            else:
                await self._storage.add_pending(message, self._clock.now())
                self._held.add(message.key.platform)
                reason = "stored, answered later"
        except StorageError as exc:
            return self._storage_failed(message, exc)
        if not self._limiter.should_notify(message.key, self._clock.now(), notice):
            return Ticket(message, reply=_NOTHING)
        log.info("holding back %s: %s", message.key, reason)
        return Ticket(message, reply=Reply(notice, ReplyKind.NOTICE))

    def _storage_failed(self, message: InboundMessage, exc: StorageError) -> Ticket:
        log.error("storage failed for %s: %s", message.key, exc)
        return Ticket(message, reply=Reply(STORAGE_FAILED, ReplyKind.ERROR))

    async def recover(self, platform: str) -> list[Ticket]:
        """Tickets for what was stored but never answered: messages still waiting (e.g. from
        before a crash) and turns that stopped unfinished. One per person, whose answer covers
        all of that person's waiting messages."""
        latest: dict[AgentKey, Ticket] = {}
        unfinished = await self._storage.list_unfinished(platform)
        for pending in [*unfinished, *await self._storage.list_pending(platform)]:
            latest[pending.message.key] = Ticket(pending.message, pending.id, swept=True)
        return list(latest.values())

    async def held_back_tickets(self, platform: str) -> AsyncGenerator[Ticket, None]:
        """Runs as long as the adapter does: every ``held_answer_seconds``, if messages were held
        back on ``platform`` (rate limit, busy), a ticket for each person with messages waiting,
        so they are answered without waiting for that person's next message. A person's other
        turns take the same lock, so nothing is answered twice or out of order. On a database
        other processes share, it looks every time: a process that died leaves messages (and
        turns) no one else would take up."""
        while True:
            await asyncio.sleep(self._settings.held_answer_seconds)
            if platform not in self._held and not self._storage.shared:
                continue
            self._held.discard(platform)
            try:
                tickets = await self.recover(platform)
            except StorageError as exc:
                log.warning("cannot list held-back messages, trying again later: %s", exc)
                self._held.add(platform)
                continue
            for ticket in tickets:
                yield ticket

    def _may_talk(self, key: AgentKey) -> bool:
        allowed = self._settings.allowed
        return allowed is None or key in allowed or self.is_operator(key)

    def _refusal(self, key: AgentKey) -> Reply:
        """One polite refusal per person per day; after that, silence rather than a flood."""
        if not self._refused.first(key, self._clock.now().date()):
            return _NOTHING
        log.info("refused %s: not in AGENTCORE_ALLOWED", key)
        return Reply(NOT_ALLOWED, ReplyKind.NOTICE)

    async def answer(
        self, ticket: Ticket, sink: ReplySink | None = None, *, deliver: Deliver | None = None
    ) -> Reply:
        """Run the ticket's turn (or command) once this person's earlier turns are done, in any
        process, and return what the caller should send: an empty Reply means nothing. Notices
        on the way, and the answer as it is written (streaming), go to ``sink``; without one,
        the reply starts with the notices.

        With ``deliver`` (the adapters'), a turn's reply goes out through it while the person's
        lock is held, so their replies leave in order even across processes, and is then noted
        as sent; a turn of theirs that stopped unfinished (its process died) is finished first,
        or the reply it stored is sent. Without ``deliver`` (a terminal, tests, benchmarks: one
        process) those replies are returned, together, for the caller to send.
        """
        if ticket.reply is not None:
            return ticket.reply
        collected: list[Reply] = []

        async def collect(message: InboundMessage, reply: Reply) -> None:
            collected.append(reply)

        async with self._tracked(), self._slots.hold(ticket.message.key):
            reply = await self._locked(ticket, deliver or collect, sink)
        return _together([*collected, reply])

    async def _locked(self, ticket: Ticket, deliver: Deliver, sink: ReplySink | None) -> Reply:
        """``_answer`` under the person's database lock. A lock lost midway (its connection
        dropped, or this process stalled) is taken again once: under it the turn is finished,
        here or by the process that took over meanwhile, and answered once."""
        key = ticket.message.key
        for attempt in (1, 2):
            try:
                async with self._storage.person(key, wait=not ticket.swept) as store:
                    return await self._answer(ticket, store, deliver, sink)
            except PersonBusy:
                return _NOTHING  # another process is answering them, waiting messages included
            except LockLost as exc:
                again = "; taking it again" if attempt == 1 else ""
                log.warning("lost the lock of %s: %s%s", key, exc, again)
            except StorageError as exc:
                log.error("storage failed for %s: %s", key, exc)
                break
        return Reply(STORAGE_FAILED, ReplyKind.ERROR)

    async def _answer(
        self, ticket: Ticket, store: PersonStorage, deliver: Deliver, sink: ReplySink | None
    ) -> Reply:
        message = ticket.message
        try:
            if ticket.pending_id is None:
                command = parse_command(message.text)
                assert command is not None
                return await self._commands.run(message, *command)
            loop = self._loop.using(store)
            await self._finish_open_turn(store, loop, message.key, deliver)
            text = await loop.run_turn(message, ticket.pending_id, sink)
            if text is None:
                return _NOTHING  # an earlier turn took the message up
            await self._send(store, message, Reply(text), deliver)
            return _NOTHING
        except LLMConfigError as exc:  # waiting will not help: the operator must fix it
            log.error("model call failed for %s: %s: %s", message.key, type(exc).__name__, exc)
            await self._close_failed_turn(store, message.key)
            return Reply(NOT_SET_UP, ReplyKind.ERROR)
        except LLMError as exc:
            log.warning("model call failed for %s: %s: %s", message.key, type(exc).__name__, exc)
            await self._close_failed_turn(store, message.key)
            return Reply(LLM_FAILED, ReplyKind.ERROR)
        except OverBudget as exc:  # told so once; their messages are in the history already
            await self._close_failed_turn(store, message.key)
            return self._budget_notice(message.key, exc)

    def _budget_notice(self, key: AgentKey, exc: OverBudget) -> Reply:
        """One notice per person until the budget resets; their messages are stored already."""
        if not self._over_budget.first(key, exc.resets_at):
            return _NOTHING
        whose = "everyone's daily token cap" if exc.everyone else "their daily token budget"
        log.info("%s is over %s; messages stored, not answered", key, whose)
        return Reply(exc.notice, ReplyKind.NOTICE)

    async def _finish_open_turn(
        self, store: PersonStorage, loop: AgentLoop, key: AgentKey, deliver: Deliver
    ) -> None:
        """Finish this person's turn that stopped unfinished (its process died or lost its
        lock), or send the reply it stored, before anything new of theirs is answered."""
        stopped = await store.open_turn(key)
        if stopped is None:
            return
        if stopped.reply is None:
            log.info("finishing a turn of %s that stopped before its reply", key)
            text = await loop.resume_turn(stopped.message)
        else:
            log.info("sending %s the reply of a turn that stopped before sending it", key)
            text = stopped.reply
        await self._send(store, stopped.message, Reply(text or ""), deliver)

    async def _send(
        self, store: PersonStorage, message: InboundMessage, reply: Reply, deliver: Deliver
    ) -> None:
        """Deliver a turn's reply, then note it sent: a crash in between sends it again."""
        if not reply.is_empty:
            await deliver(message, reply)
        await store.finish_turn(message.key)

    async def _close_failed_turn(self, store: PersonStorage, key: AgentKey) -> None:
        """The person is told the turn failed (and may send again): it is not taken up again."""
        try:
            await store.finish_turn(key)
        except StorageError as exc:  # then the person's next turn finishes it instead
            log.warning("could not close the failed turn of %s: %s", key, exc)

    async def run_event(self, event: SystemEvent) -> str | None:
        """The agent's own turn on ``event`` (a reminder came due), under the person's lock so
        it never overlaps a turn of theirs, in this process or another on the database (its
        writes go through the lock's connection, as a turn's do). Raises
        ``LLMError``/``StorageError`` for the caller (the scheduler) to decide; None if there is
        nothing to send (``AgentLoop.run_event``)."""
        async with (
            self._tracked(),
            self._slots.hold(event.key),
            self._storage.person(event.key) as store,
        ):
            return await self._loop.using(store).run_event(event)

    @contextlib.asynccontextmanager
    async def _tracked(self) -> AsyncIterator[None]:
        self._in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def background(self) -> None:
        """Work that runs for as long as the bot does: consolidation of ended sessions."""
        if self._consolidator is not None:
            await self._consolidator.run()

    async def consolidate_ended(self) -> int:
        """One consolidation sweep now (``background`` runs them periodically): the sessions
        whose gap has passed; how many were consolidated."""
        return await self._consolidator.sweep() if self._consolidator is not None else 0

    async def shutdown(self, grace: float | None = None) -> None:
        """Stop accepting, let in-flight turns finish (for ``grace`` seconds, by default the
        configured ``shutdown_grace``), consolidate the sessions still open (bounded; not when
        told to stop now, ``grace=0``), then close storage and model."""
        self._closing = True
        grace = self._settings.shutdown_grace if grace is None else grace
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            log.warning(
                "shutdown: %d turn(s) still running after %.0fs; closing anyway",
                self._in_flight,
                grace,
            )
        if self._consolidator is not None and grace > 0:
            await self._consolidator.at_shutdown()
        await self._loop.close()
        await self._llm.close()
        await self._storage.close()


def _together(replies: list[Reply]) -> Reply:
    """Several replies for one message (a finished earlier turn's, then its own) as one."""
    shown = [r for r in replies if not r.is_empty]
    if len(shown) <= 1:
        return shown[0] if shown else _NOTHING
    return Reply(
        "\n\n".join(r.text for r in shown),
        shown[-1].kind,
        attachments=tuple(a for r in shown for a in r.attachments),
    )
