"""The MemGPT step loop: one turn of one agent.

store the person's message → compile the context → call the model with tools → run the calls
against this agent only → repeat while the model calls tools (at most ``max_steps`` calls) →
the final text (plain content or ``send_message``) is stored and returned.

A turn starts from the person's waiting messages (``run_turn``) or from a system event such as
a reminder coming due (``run_event``); after that both are the same loop.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from agentcore.clock import Clock
from agentcore.llm.base import LLMError, LLMRequest, LLMResponse, TextSink
from agentcore.media.intake import MediaIntake, Prepared
from agentcore.memory import prefix
from agentcore.memory.blocks import default_blocks, initial_blocks
from agentcore.memory.prompt import (
    PRESSURE_NOTE,
    Layout,
    PromptParts,
    TurnFacts,
    prompt_messages,
    streamed_without_prompt_tags,
    without_prompt_tags,
)
from agentcore.memory.recall import NOT_FOUND, Found, search, shown
from agentcore.memory.summarizer import choose_cut, summarize
from agentcore.memory.tokens import TokenEstimator
from agentcore.messages import ImagePart, PromptMessage, Role, ToolCall
from agentcore.records import (
    AgentRecord,
    NewAgent,
    NewMessage,
    Purpose,
    SharedBlock,
    StoredMessage,
    TurnState,
    UserActivity,
)
from agentcore.schedule.doorbell import Doorbell
from agentcore.schedule.model import PersonPrefs
from agentcore.settings import AgentSettings
from agentcore.storage.protocols import PersonStorage
from agentcore.tools import (
    MEMORY_TOOLS,
    SCHEDULE_TOOLS,
    SEND_MESSAGE,
    ToolContext,
    ToolError,
    ToolRegistry,
)
from agentcore.tools.base import Scheduling
from agentcore.types import AgentKey, ChatKind, InboundMessage, NoticeList, ReplySink, SystemEvent
from agentcore.usage.meter import Meter, OverBudget, PersonModel

log = logging.getLogger(__name__)

STEP_LIMIT_REPLY = "Sorry, I got tangled up in my own notes there. Could you say that again?"
EMPTY_REPLY = "Sorry, I lost my train of thought. Could you say that again?"
LONG_MESSAGE_NOTE = "(Your message was long, so I only read the first {cap:,} characters.)"


@dataclass
class _Turn:
    """Everything one turn works on; lives only for the duration of ``run_turn``."""

    agent: AgentRecord
    purpose: Purpose  # TURN answers the person's messages; EVENT, a reminder or check-in
    model: PersonModel  # every model call of the turn goes through it (metered, budgeted)
    facts: TurnFacts
    tools: ToolContext
    shared: list[SharedBlock]
    rows: list[StoredMessage]  # the in-context messages, oldest first
    claimed: list[StoredMessage]  # the person's messages this turn answers
    view: prefix.View  # core memory as this turn's prompts show it in the stable prefix
    summary: str
    pressure_warned: bool
    recalled: str = ""  # automatic recall for this turn's messages (see memory/recall.py)
    notes: list[str] = field(default_factory=list)  # one-off system notes for the next call
    estimate: int = 0
    images: dict[int, tuple[ImagePart, ...]] = field(default_factory=dict)  # by message id
    stream: TextSink | None = None  # where the answer is shown as it is written

    @property
    def from_inbox(self) -> bool:
        """Whether the turn answers messages from the inbox: its reply is then noted on them,
        so a crash before it is sent leaves it to be sent again (an event's turn answers none)."""
        return self.purpose is Purpose.TURN


def session_of(agent: AgentRecord, sent_at: datetime, gap: timedelta) -> tuple[int, bool]:
    """The session number this message belongs to, and whether it opens a new session."""
    if agent.last_user_at is None:
        return 1, True
    if sent_at - agent.last_user_at > gap:
        return agent.session_count + 1, True
    return max(agent.session_count, 1), False


@dataclass(frozen=True, slots=True)
class _Origin:
    """Where a turn's answer is read, for what it may reveal and where reminders go."""

    key: AgentKey
    chat: ChatKind
    route: str  # a group's route; '' for the private chat
    display_name: str


class AgentLoop:
    def __init__(
        self,
        *,
        storage: PersonStorage,
        meter: Meter,
        clock: Clock,
        settings: AgentSettings,
        tools: ToolRegistry | None = None,
        estimator: TokenEstimator | None = None,
        media: MediaIntake | None = None,
        doorbell: Doorbell | None = None,
        layout: Layout = prompt_messages,
    ) -> None:
        """``doorbell``: the scheduler's, rung when a reminder is added; without one (or with
        reminders turned off in ``settings``) turns cannot schedule."""
        self._storage = storage
        self._media = media
        self._meter = meter
        self._clock = clock
        self._settings = settings
        self._doorbell = doorbell if settings.reminders.enabled else None
        default_tools = ToolRegistry(
            MEMORY_TOOLS + SCHEDULE_TOOLS if self._doorbell else MEMORY_TOOLS
        )
        self._tools = tools or default_tools
        self._estimator = estimator or TokenEstimator()
        self._layout = layout

    def using(self, storage: PersonStorage) -> AgentLoop:
        """This loop over ``storage``: one person's store for the span of their turn (see
        ``Storage.person``), so that everything the turn writes goes through it."""
        scoped = copy.copy(self)
        scoped._storage = storage
        return scoped

    async def run_turn(
        self, message: InboundMessage, pending_id: int, sink: ReplySink | None = None
    ) -> str | None:
        """Answer a received message (``pending_id`` in the inbox), together with any of this
        person's messages still waiting before it (e.g. held back by the rate limit).

        The files that came with them are prepared first (``MediaIntake``); notices about
        them go to ``sink`` (without one, the answer starts with them). The messages move
        into recall memory before the model is first called, so an ``LLMError`` or
        ``OverBudget`` (which propagate) never loses them. None if there is nothing left to
        answer: an earlier turn took this message up, or /forget erased it while it waited.
        """
        if sink is None:  # a caller that takes one reply: the notices open it
            kept = NoticeList()
            reply = await self._turn(message, pending_id, kept, streaming=False)
            if reply is None or not kept.notices:
                return reply
            return "\n\n".join([*kept.notices, reply]).strip()
        return await self._turn(message, pending_id, sink, streaming=self._settings.stream)

    async def _turn(
        self, message: InboundMessage, pending_id: int, sink: ReplySink, *, streaming: bool
    ) -> str | None:
        prepared = Prepared()
        if self._media is not None:
            prepared = await self._media.prepare(self._storage, message.key, pending_id, sink)
        turn = await self._begin(message, pending_id)
        if turn is None:
            return None
        if streaming:
            turn.stream = lambda shown: sink.grow(streamed_without_prompt_tags(shown))
        return await self._answer(turn, prepared, sink)

    async def _answer(self, turn: _Turn, prepared: Prepared, sink: ReplySink) -> str:
        if self._media is not None:
            await self._media.read_documents(turn.agent.id, sink, new=prepared.documents)
            if not prepared.answerable and len(turn.claimed) == prepared.messages:
                return ""  # only files the model gets nothing from: the notices said so
            claimed = [m.id for m in turn.claimed]
            turn.images = await self._media.images(self._storage, turn.agent.id, claimed)
        reply = await self._steps(turn)
        cap = self._settings.message_char_cap
        if any(len(m.content or "") > cap for m in turn.claimed):
            reply += "\n\n" + LONG_MESSAGE_NOTE.format(cap=cap)
        return reply

    async def resume_turn(self, message: InboundMessage) -> str | None:
        """Finish a turn that stopped before storing its reply (its process died, or lost its
        database connection): its messages are in recall already, the last of them
        ``message``; the model goes on from the history as stored. None if the person has no
        agent any more."""
        state, prefs = await self._load(message.key)
        if state is None:
            return None
        # Automatic recall is left out: the message's text is in the history (the inbox keeps
        # none once it is taken up), which the model reads again anyway.
        return await self._steps(await self._opened(message, state, prefs, [], NOT_FOUND))

    async def close(self) -> None:
        """Stop background work (documents being read resume after the next start)."""
        if self._media is not None:
            await self._media.close()

    async def run_event(self, event: SystemEvent) -> str | None:
        """A turn the agent takes on its own: ``event`` is stored in the person's history and
        the agent answers it as it would a message. None if the person has no agent (erased).
        If the model cannot be reached, ``event.fallback`` (if any) is stored and returned.
        Over today's token budget the model is not called: the fallback (a reminder's own text)
        still goes out, and an event without one (a check-in) is not sent (None)."""
        turn = await self._begin_event(event)
        if turn is None:
            return None
        try:
            return await self._steps(turn)
        except OverBudget:
            if not event.fallback:
                log.info("agent %s: over the token budget, the event is not answered", event.key)
                return None
            log.info("agent %s: over the token budget, sending the event's fallback", event.key)
        except LLMError:
            if not event.fallback:
                raise
            log.warning("agent %s: model unreachable, sending the event's fallback", event.key)
        await self._store(turn, [NewMessage(Role.ASSISTANT, event.fallback, self._clock.now())])
        return event.fallback

    async def _steps(self, turn: _Turn) -> str:
        await turn.model.admit()  # over budget: stop before any model call, messages kept
        steps = self._settings.max_steps
        for step in range(steps):
            request = await self._prepare(turn, allow_tools=step < steps - 1)
            response = await self._call(turn, request)
            reply = await self._apply(turn, response)
            if reply is not None:
                return reply
        log.warning("agent %s hit the step limit (%d model calls)", turn.agent.key, steps)
        last = NewMessage(Role.ASSISTANT, STEP_LIMIT_REPLY, self._clock.now())
        await self._store(turn, [last], final=True)
        return STEP_LIMIT_REPLY

    # ----------------------------------------------------------------- turn setup

    async def _load(self, key: AgentKey) -> tuple[TurnState | None, PersonPrefs]:
        """The turn's starting state and the person's preferences, read together."""
        if self._doorbell is None:
            return await self._storage.load_turn(key), PersonPrefs()
        state, prefs = await asyncio.gather(
            self._storage.load_turn(key), self._storage.load_prefs(key)
        )
        return state, prefs

    async def _take_up(
        self, message: InboundMessage, pending_id: int
    ) -> tuple[TurnState, PersonPrefs, list[StoredMessage], Found]:
        """This person's agent (created on their first message), their preferences, the waiting
        messages this turn answers, taken into recall memory, and what automatic recall found
        for the message (searched while the messages are taken up)."""
        state, prefs = await self._load(message.key)
        if state is None:
            started = await self._start_agent(message, pending_id)
            if started is not None:
                return started[0], prefs, started[1], NOT_FOUND
            state = await self._storage.load_turn(message.key)  # created meanwhile elsewhere
            assert state is not None
        agent = state.agent
        session, _ = session_of(agent, message.sent_at, self._settings.memory.session_gap)
        activity = UserActivity(
            message.sent_at, session, message.display_name or agent.display_name
        )
        claimed, found = await asyncio.gather(
            self._storage.claim_pending(message.key, pending_id, agent.id, activity),
            self._search_memory(state, message.text),
        )
        return state, prefs, claimed, found

    async def _search_memory(self, state: TurnState, text: str) -> Found:
        """Automatic recall's searches, once per turn, for what the person just said."""
        if self._settings.memory.recall_tokens <= 0:
            return NOT_FOUND
        agent = state.agent
        return await search(
            self._storage,
            agent.id,
            text,
            in_view=len(state.context) + 1,  # the message being answered is found too
            search_messages=agent.message_count > len(state.context),
            search_passages=agent.passage_count > 0,
        )

    async def _start_agent(
        self, message: InboundMessage, pending_id: int
    ) -> tuple[TurnState, list[StoredMessage]] | None:
        now = self._clock.now()
        specs = default_blocks(self._settings.memory)
        new = NewAgent(message.display_name, now, tuple(specs))
        activity = UserActivity(message.sent_at, 1, message.display_name)
        started, shared = await asyncio.gather(
            self._storage.start_agent(message.key, pending_id, new, activity),
            self._storage.list_shared_blocks(),
        )
        if started is None:
            return None
        agent, claimed = started
        return TurnState(agent, initial_blocks(specs, now), shared, []), claimed

    async def _begin(self, message: InboundMessage, pending_id: int) -> _Turn | None:
        state, prefs, claimed, found = await self._take_up(message, pending_id)
        if not claimed:
            return None
        return await self._opened(message, state, prefs, claimed, found)

    async def _opened(
        self,
        message: InboundMessage,
        state: TurnState,
        prefs: PersonPrefs,
        claimed: list[StoredMessage],
        found: Found,
    ) -> _Turn:
        """The turn answering ``message`` from ``state``, with ``claimed`` just taken up."""
        session, new_session = session_of(
            state.agent, message.sent_at, self._settings.memory.session_gap
        )
        route = message.route if message.chat is ChatKind.GROUP else ""
        origin = _Origin(message.key, message.chat, route, message.display_name)
        return await self._assemble(
            state, prefs, claimed, found, origin, (session, new_session), Purpose.TURN
        )

    async def _begin_event(self, event: SystemEvent) -> _Turn | None:
        state, prefs = await self._load(event.key)
        if state is None:
            return None
        agent = state.agent
        row = NewMessage(Role.SYSTEM, event.text, event.at)
        [row_id] = await self._storage.append_messages(agent.id, [row])
        claimed = [StoredMessage(row_id, row.role, row.content, row.created_at)]
        origin = _Origin(event.key, event.chat, event.route, agent.display_name)
        found = await self._search_memory(state, event.text)  # what the reminder is about
        session = max(agent.session_count, 1)
        return await self._assemble(
            state, prefs, claimed, found, origin, (session, False), Purpose.EVENT
        )

    async def _assemble(
        self,
        state: TurnState,
        prefs: PersonPrefs,
        claimed: list[StoredMessage],
        found: Found,
        origin: _Origin,
        sessions: tuple[int, bool],
        purpose: Purpose,
    ) -> _Turn:
        agent = state.agent
        session, new_session = sessions
        zone = prefs.timezone or self._settings.memory.timezone
        facts = TurnFacts(
            now=self._clock.now(),
            previous_user_at=agent.last_user_at,
            session=session,
            new_session=new_session,
            message_count=agent.message_count + len(claimed),
            passage_count=agent.passage_count,
            chat=origin.chat,
            platform=origin.key.platform,
            display_name=origin.display_name,
            zone_known=None if self._doorbell is None else prefs.timezone is not None,
        )
        tools = ToolContext(
            storage=self._storage,
            agent_id=agent.id,
            blocks={b.label: b for b in state.blocks},
            clock=self._clock,
            tz=zone,
            search_limit=self._settings.search_limit,
            person=origin.display_name or "user",
            scheduling=self._scheduling(prefs, origin),
        )
        memory = self._settings.memory
        rows = [*state.context, *claimed]
        recalled = shown(found, {r.id for r in rows}, memory.recall_tokens, zone, tools.person)
        return _Turn(
            agent=agent,
            purpose=purpose,
            model=self._meter.serving(origin.key, agent.id, purpose),
            facts=facts,
            tools=tools,
            shared=state.shared,
            rows=rows,
            claimed=claimed,
            view=await self._view_for_turn(state, rows, new_session),
            summary=agent.summary,
            pressure_warned=agent.pressure_warned,
            recalled=recalled.text,
        )

    def _scheduling(self, prefs: PersonPrefs, origin: _Origin) -> Scheduling | None:
        if self._doorbell is None:
            return None
        return Scheduling(
            store=self._storage,
            settings=self._settings.reminders,
            doorbell=self._doorbell,
            prefs=prefs,
            chat=origin.chat,
            route=origin.route,
        )

    async def _view_for_turn(
        self, state: TurnState, rows: list[StoredMessage], new_session: bool
    ) -> prefix.View:
        """Which core-memory values the stable prefix shows this turn (see memory/prefix.py)."""
        current = prefix.current_blocks(state.blocks, state.shared)
        prompt_chars = (
            len(self._settings.instructions)
            + prefix.blocks_chars(current)
            + len(state.agent.summary)
            + sum(len(r.content or "") for r in rows)
        )
        view, renew = prefix.view_for_turn(
            state.agent.prefix_blocks, current, new_session=new_session, prompt_chars=prompt_chars
        )
        if renew:
            await self._storage.set_prefix_blocks(state.agent.id, prefix.encode(view.blocks))
        return view

    def _current_blocks(self, turn: _Turn) -> prefix.PrefixBlocks:
        return prefix.current_blocks(turn.tools.blocks.values(), turn.shared)

    async def _keep_view(self, turn: _Turn) -> None:
        """Once a turn edits core memory, store the view its prompts show, so later turns show
        the same prefix (and the edited blocks after the history)."""
        if turn.view.saved or not prefix.changes(turn.view.blocks, self._current_blocks(turn)):
            return
        await self._storage.set_prefix_blocks(turn.agent.id, prefix.encode(turn.view.blocks))
        turn.view = prefix.View(turn.view.blocks, saved=True)

    async def _renew_view(self, turn: _Turn) -> None:
        """After a fold the prefix is new anyway: show the blocks as they are."""
        current = self._current_blocks(turn)
        if turn.view.saved:
            await self._storage.set_prefix_blocks(turn.agent.id, prefix.encode(current))
        turn.view = prefix.View(current, saved=turn.view.saved)

    # ----------------------------------------------------------------- context budget

    def _request(self, turn: _Turn, allow_tools: bool) -> LLMRequest:
        parts = PromptParts(
            instructions=self._settings.instructions,
            shown=turn.view.blocks,
            current=self._current_blocks(turn),
            summary=turn.summary,
            facts=turn.facts,
            rows=turn.rows,
            notes=turn.notes,
            message_cap=self._settings.message_char_cap,
            tz=turn.tools.tz,
            images=turn.images,
            recalled=turn.recalled,
        )
        return LLMRequest(
            messages=self._layout(parts),
            tools=self._tools.specs,
            allow_tools=allow_tools,
            stream=turn.stream,
        )

    async def _prepare(self, turn: _Turn, allow_tools: bool) -> LLMRequest:
        """Build the next request, folding or warning first if the window is filling up."""
        memory = self._settings.memory
        request = self._request(turn, allow_tools)
        turn.estimate = self._estimator.estimate(request)
        if turn.estimate > memory.summarize_ratio * memory.context_window:
            if await self._fold(turn):
                request = self._request(turn, allow_tools)
                turn.estimate = self._estimator.estimate(request)
        elif (
            turn.estimate > memory.pressure_ratio * memory.context_window
            and not turn.pressure_warned
        ):
            percent = round(100 * turn.estimate / memory.context_window)
            turn.notes.append(PRESSURE_NOTE.format(percent=percent))
            turn.pressure_warned = True
            await self._storage.set_pressure_warned(turn.agent.id, True)
            request = self._request(turn, allow_tools)
        return request

    async def _fold(self, turn: _Turn) -> bool:
        """Summarise the oldest in-context messages; False if nothing could be folded."""
        memory = self._settings.memory
        cut = choose_cut(turn.rows, self._keep_tokens(turn), self._tokens)
        if cut == 0:
            log.warning("agent %s: context is full but nothing can be folded", turn.agent.key)
            return False
        folded, kept = turn.rows[:cut], turn.rows[cut:]
        max_words = max(100, memory.context_window // 12)
        turn.summary = await summarize(
            turn.model.doing(Purpose.SUMMARY), turn.summary, folded, turn.tools.tz, max_words
        )
        await self._storage.fold_context(turn.agent.id, turn.summary, kept[0].id, self._clock.now())
        log.info("agent %s: folded %d messages into the summary", turn.agent.key, len(folded))
        turn.rows = kept
        turn.pressure_warned = False
        await self._renew_view(turn)
        return True

    def _keep_tokens(self, turn: _Turn) -> int:
        """How much of the recent conversation a fold keeps: the window's keep share less what
        the rest of the prompt takes (instructions, tool schemas, memory, summary), so the prompt
        ends up well under the fold threshold. Otherwise a large fixed part in a small window
        folds again on every turn, and each fold rewrites the prompt's cached prefix."""
        memory = self._settings.memory
        rest = turn.estimate - sum(self._tokens(r) for r in turn.rows)
        return max(0, int(memory.keep_ratio * memory.context_window) - rest)

    def _tokens(self, row: StoredMessage) -> int:
        message = PromptMessage(row.role, row.content, row.tool_calls, row.tool_call_id)
        return self._estimator.estimate(LLMRequest(messages=(message,)))

    # ----------------------------------------------------------------- model and tools

    async def _call(self, turn: _Turn, request: LLMRequest) -> LLMResponse:
        try:
            response = await turn.model.complete(request)
        finally:
            turn.notes.clear()  # notes are one-off
        if response.usage is not None:
            self._estimator.observe(turn.estimate, response.usage.prompt_tokens)
        return response

    async def _apply(self, turn: _Turn, response: LLMResponse) -> str | None:
        """Store the model's step; return the reply if the turn is finished, else None."""
        now = self._clock.now()
        if not response.tool_calls:
            text = without_prompt_tags(response.content or "") or EMPTY_REPLY
            await self._store(turn, [NewMessage(Role.ASSISTANT, text, now)], final=True)
            return text
        replies: list[str] = []
        executed: list[ToolCall] = []
        results: list[NewMessage] = []
        for call in response.tool_calls:
            if call.name == SEND_MESSAGE:
                try:
                    replies.append(self._message_of(call))
                    continue
                except ToolError as exc:
                    result = f"Error: {exc}"
            else:
                result = await self._tools.execute(turn.tools, call)
            executed.append(call)
            results.append(NewMessage(Role.TOOL, result, now, tool_call_id=call.id))
        reply = "\n\n".join(replies) or None
        # send_message is stored as the assistant's content so history reads like a chat.
        content = reply if reply is not None else response.content
        step = [NewMessage(Role.ASSISTANT, content, now, tuple(executed)), *results]
        await self._store(turn, step, final=reply is not None)
        await self._keep_view(turn)
        return reply

    def _message_of(self, call: ToolCall) -> str:
        message = without_prompt_tags(self._tools.bind(call)[1]["message"])
        if not message:
            raise ToolError("message is empty; write the reply to send")
        return message

    async def _store(self, turn: _Turn, messages: list[NewMessage], final: bool = False) -> None:
        """Store an assistant step and its tool results in one transaction, so no other row can
        land between a tool call and its result; the ``final`` step, which holds the reply,
        also marks the person's messages answered by it."""
        ids = await (
            self._storage.store_reply(turn.agent.key, turn.agent.id, messages)
            if final and turn.from_inbox
            else self._storage.append_messages(turn.agent.id, messages)
        )
        turn.rows.extend(
            StoredMessage(i, m.role, m.content, m.created_at, m.tool_calls, m.tool_call_id)
            for i, m in zip(ids, messages, strict=True)
        )
