"""Commands everyone has: see, search, export, reset and erase what the bot stores about you."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from agentcore.clock import Clock
from agentcore.commands import render
from agentcore.commands.agentfile import FILE_BUDGET, ExportData, export_agent_file
from agentcore.commands.spec import USER_COMMANDS, usage_line
from agentcore.records import AgentRecord, AuditEntry, StoredFile
from agentcore.settings import AgentSettings, UsageSettings
from agentcore.storage.protocols import Storage
from agentcore.types import AgentKey, Attachment, FileKind, InboundMessage, Reply, ReplyKind
from agentcore.usage.meter import day_of, when_budgets_reset
from agentcore.usage.report import month_start, on, summary_lines, totals

FORGET_WINDOW = timedelta(minutes=2)
_MAX_PENDING_FORGETS = 10_000
SEARCH_LIMIT = 10
NOTHING_STORED = "I don't have anything stored about you."

_USAGE = {c.name: c for c in USER_COMMANDS}

UserHandler = Callable[[InboundMessage, str], Awaitable[Reply]]


def _reply(text: str, private: bool = False) -> Reply:
    return Reply(text, ReplyKind.COMMAND, private)


class UserCommands:
    def __init__(
        self,
        *,
        storage: Storage,
        clock: Clock,
        settings: AgentSettings,
        usage: UsageSettings,
        is_operator: Callable[[AgentKey], bool],
        model: str = "",
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._settings = settings
        self._usage = usage
        self._is_operator = is_operator
        self._model = model
        self._forget_requests: OrderedDict[AgentKey, datetime] = OrderedDict()
        self.handlers: dict[str, UserHandler] = {
            "start": self.start,
            "help": self.help,
            "memory": self.memory,
            "search": self.search,
            "usage": self.usage,
            "reset": self.reset,
            "documents": self.documents,
            "export": self.export,
            "forget": self.forget,
        }

    @property
    def _tz(self) -> ZoneInfo:
        return self._settings.memory.timezone

    async def start(self, message: InboundMessage, args: str) -> Reply:
        return _reply(
            "Hi! I'm a chat companion with a long memory: I remember what you tell me across "
            "conversations, even weeks apart. Just talk to me.\n\n"
            "Send /memory to see what I keep in mind about you, /export to download it all, "
            "and /forget to erase it. /help lists everything."
        )

    async def help(self, message: InboundMessage, args: str) -> Reply:
        lines = [f"{c.synopsis('/')} — {c.description}" for c in USER_COMMANDS]
        return _reply(
            "Commands:\n" + "\n".join(lines) + "\n\n"
            "What I store: every message we exchange (so I can look things up later), notes I "
            "choose to keep, a short profile of you that I update as we talk, reminders you ask "
            "me for, and how much of the language model I used for you (/usage). Only your own "
            "conversations can reach your memory."
        )

    async def memory(self, message: InboundMessage, args: str) -> Reply:
        agent = await self._storage.load_agent(message.key)
        if agent is None:
            return _reply("I don't remember anything about you yet.", private=True)
        blocks = await self._storage.list_blocks(agent.id)
        footer = (
            f"\n\n_{agent.message_count} messages stored; your last message "
            f"{render.stamp(agent.last_user_at, self._tz)}_"
        )
        return _reply("Your core memory, as I see it:\n\n" + render.blocks(blocks) + footer, True)

    async def search(self, message: InboundMessage, args: str) -> Reply:
        if not args:
            return _reply(usage_line("/", _USAGE["search"]))
        agent = await self._storage.load_agent(message.key)
        found = await self._storage.recent_matches(agent.id, args, SEARCH_LIMIT) if agent else []
        if not found:
            return _reply(f"No messages of ours match “{args}”.", private=True)
        return _reply(
            f"Our messages matching “{args}”, newest first:\n" + render.hits(found, self._tz),
            private=True,
        )

    async def usage(self, message: InboundMessage, args: str) -> Reply:
        agent = await self._storage.load_agent(message.key)
        if agent is None:
            return _reply("I haven't used the model for you yet.", private=True)
        now = self._clock.now()
        today = day_of(now, self._tz)
        days = await self._storage.usage(agent.id, month_start(today))
        lines = [
            "The model's work for you (tokens it read and wrote; cached ones cost less):",
            *summary_lines(days, today),
        ]
        limit = self._usage.person_daily_tokens
        if self._is_operator(message.key):
            lines.append("You're an operator: no daily limit applies to you.")
        elif limit:
            used = totals(on(days, today)).tokens
            lines.append(
                f"Daily limit: {used:,} of {limit:,} tokens used; it resets "
                f"{when_budgets_reset(now, self._tz)}."
            )
        return _reply("\n".join(lines), private=True)

    async def reset(self, message: InboundMessage, args: str) -> Reply:
        agent = await self._storage.load_agent(message.key)
        if agent is not None:
            await self._storage.reset_context(agent.id, self._clock.now())
        return _reply(
            "Fresh start: I've cleared our current conversation window and its running summary. "
            "I still remember your core memory and my archival notes, and our full history "
            "stays searchable."
        )

    async def documents(self, message: InboundMessage, args: str) -> Reply:
        agent = await self._storage.load_agent(message.key)
        files = await self._storage.list_files(agent.id) if agent else []
        documents = [f for f in files if f.kind is FileKind.DOCUMENT]
        verb, _, number = args.partition(" ")
        if not args:
            if not documents:
                return _reply("You haven't sent me any documents.", private=True)
            listed = "\n".join(render.document(i, d, self._tz) for i, d in enumerate(documents, 1))
            return _reply(
                f"Your documents:\n{listed}\n\nSend /documents delete <number> to erase one "
                "and everything I read from it.",
                private=True,
            )
        if verb.lower() != "delete" or not number.strip().isdigit():
            return _reply(usage_line("/", _USAGE["documents"]))
        index = int(number) - 1
        if agent is None or not 0 <= index < len(documents):
            return _reply(f"You have no document number {number.strip()}; /documents lists them.")
        chosen = documents[index]
        await self._storage.delete_file(agent.id, chosen.id)
        return _reply(f"Deleted {chosen.filename} and every passage I had read from it.")

    async def export(self, message: InboundMessage, args: str) -> Reply:
        agent = await self._storage.load_agent(message.key)
        if agent is None:
            return _reply(NOTHING_STORED, private=True)
        data = await self._export_data(agent)
        document = export_agent_file(data, self._clock.now())
        payload = json.dumps(document, ensure_ascii=False, indent=1).encode()
        # Never built from the user id: on the terminal that is a name anyone can type.
        name = f"memory-{agent.key.platform}-{self._clock.now():%Y-%m-%d}.af"
        left_out = [f.filename for f in data.files if not f.data and f.size]
        files = f", {len(data.files)} files you sent" if data.files else ""
        note = (
            f" The contents of {len(left_out)} large file(s) did not fit in it; they are listed."
            if left_out
            else ""
        )
        return Reply(
            f"Here is everything I store about you: {agent.message_count} messages{files} and "
            f"your memory, as a Letta Agent File (JSON).{note}",
            ReplyKind.COMMAND,
            private=True,
            attachments=(Attachment(name, payload, "application/json"),),
        )

    async def _export_files(self, agent_id: int) -> list[StoredFile]:
        """Every file, with its bytes while they fit in the export's budget (oldest first)."""
        exported, budget = [], FILE_BUDGET
        for stored in await self._storage.list_files(agent_id):
            if 0 < stored.size <= budget:
                data = await self._storage.file_data(agent_id, stored.id) or b""
                budget -= len(data)
                stored = replace(stored, data=data)  # noqa: PLW2901
            exported.append(stored)
        return exported

    async def _export_data(self, agent: AgentRecord) -> ExportData:
        blocks = await self._storage.list_blocks(agent.id)
        return ExportData(
            agent=agent,
            blocks=blocks,
            history={b.label: await self._storage.block_history(agent.id, b.label) for b in blocks},
            messages=await self._storage.all_messages(agent.id),
            passages=await self._storage.all_passages(agent.id),
            system=self._settings.instructions,
            model=self._model,
            context_window=self._settings.memory.context_window,
            reminders=await self._storage.list_reminders(agent.id, pending_only=False),
            prefs=await self._storage.load_prefs(agent.key),
            files=await self._export_files(agent.id),
            usage=await self._storage.usage(agent.id, date.min),
        )

    async def forget(self, message: InboundMessage, args: str) -> Reply:
        now = self._clock.now()
        self._drop_expired(now)
        if args.lower() != "confirm":
            self._forget_requests[message.key] = now
            self._forget_requests.move_to_end(message.key)
            while len(self._forget_requests) > _MAX_PENDING_FORGETS:
                self._forget_requests.popitem(last=False)
            return _reply(
                "This permanently erases everything I store about you: our messages, the files "
                "you sent, my notes, your reminders and your memory. It cannot be undone. To go "
                "ahead, send /forget confirm within 2 minutes."
            )
        if self._forget_requests.pop(message.key, None) is None:
            return _reply("To erase your memory, send /forget first, then /forget confirm.")
        return await self._erase(message.key, now)

    async def _erase(self, key: AgentKey, now: datetime) -> Reply:
        agent = await self._storage.load_agent(key)
        if agent is None:
            return _reply(NOTHING_STORED)
        await self._storage.delete_agent(agent.id)
        # Only that an erasure happened: no content, and the person is not named.
        await self._storage.add_audit(
            AuditEntry(key.platform, "forget", f"{key.platform}:(erased)", now)
        )
        return _reply(
            "Done: I've erased everything I stored about you. If you write again, I'll meet "
            "you as someone new."
        )

    def _drop_expired(self, now: datetime) -> None:
        for key, asked in list(self._forget_requests.items()):
            if now - asked <= FORGET_WINDOW:
                break  # ordered oldest first
            del self._forget_requests[key]
