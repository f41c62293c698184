"""Operator verbs: view, correct and audit any user's memory. Shared by chat and the shell CLI.

Every read or write of a user's data is written to the audit log (who, verb, target, when),
never with memory content.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from agentcore.clock import Clock
from agentcore.commands import render
from agentcore.commands.agentfile import AgentFileError, ImportLimits, parse_agent_file
from agentcore.commands.spec import ADMIN_VERBS, usage_line
from agentcore.memory.blocks import LABEL_RULE, default_blocks, valid_label
from agentcore.memory.prompt import humanize
from agentcore.records import (
    Actor,
    AgentRecord,
    AuditEntry,
    Block,
    BlockVersion,
    EmbeddingProgress,
    StartupRun,
    UsageDay,
)
from agentcore.settings import AgentSettings, UsageSettings
from agentcore.storage.protocols import Storage, StorageError
from agentcore.types import AgentKey, InvalidAgentKey, Reply, ReplyKind, clean_text
from agentcore.usage.meter import day_of
from agentcore.usage.report import (
    by_model,
    cost,
    describe,
    describe_cost,
    month_start,
    on,
    summary_lines,
    totals,
)

log = logging.getLogger(__name__)

MAX_LIST = 200
TOP_USERS = 10
_IMPORT_LIMITS = ImportLimits()


class TurnLocks(Protocol):
    """Each person's turn lock (the runtime's), so an import waits for a running turn."""

    def busy(self, key: AgentKey) -> bool: ...

    def hold(self, key: AgentKey) -> AbstractAsyncContextManager[None]: ...


class NoTurns:
    """Where no turns run in this process (the operator CLI, which keeps imports away from a
    running bot by taking the bot's instance lock instead)."""

    def busy(self, key: AgentKey) -> bool:
        return False

    @contextlib.asynccontextmanager
    async def hold(self, key: AgentKey) -> AsyncIterator[None]:
        yield


class UsageError(Exception):
    """Bad arguments for a verb; the message is one line for the operator."""


@dataclass(frozen=True, slots=True)
class AdminRequest:
    actor: str  # who asks, e.g. "telegram:123" or "cli:alice"
    args: str  # everything after the verb
    local: bool  # from the shell or the terminal chat: may read files on this machine


Verb = Callable[[AdminRequest], Awaitable[str]]
_USAGE = {v.name: v for v in ADMIN_VERBS}


def _usage(verb: str) -> UsageError:
    return UsageError(usage_line("/admin ", _USAGE[verb]))


def _split(verb: str, args: str) -> list[str]:
    """The verb's arguments as its usage names them: single words, then (if it takes free text)
    the rest of the line."""
    info = _USAGE[verb]
    count = info.single_words + info.rest
    parts = args.split(maxsplit=count - 1) if info.rest else args.split()
    if len(parts) != count or (info.rest and not parts[-1].strip()):
        raise _usage(verb)
    return parts


def _key(name: str) -> AgentKey:
    try:
        return AgentKey.parse(name)
    except InvalidAgentKey:
        raise UsageError(
            f"{name!r} is not a user; name users as platform:id, e.g. telegram:42"
        ) from None


def _number(verb: str, text: str, default: int) -> int:
    if not text:
        return default
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIST:
        raise _usage(verb)
    return int(text)


class AdminCommands:
    def __init__(
        self,
        *,
        storage: Storage,
        clock: Clock,
        settings: AgentSettings,
        usage: UsageSettings,
        turns: TurnLocks,
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._settings = settings
        self._usage = usage
        self._turns = turns
        self._verbs: dict[str, Verb] = {
            "users": self.users,
            "memory": self.memory,
            "set": self.set,
            "append": self.append,
            "history": self.history,
            "revert": self.revert,
            "search": self.search,
            "shared": self.shared,
            "import": self.import_file,
            "stats": self.stats,
            "usage": self.usage,
            "backup": self.backup,
            "audit": self.audit,
        }

    @property
    def _tz(self) -> ZoneInfo:
        return self._settings.memory.timezone

    async def run(self, actor: str, text: str, *, local: bool) -> Reply:
        verb, _, args = clean_text(text).strip().partition(" ")
        handler = self._verbs.get(verb.lower())
        if handler is None:
            verbs = ", ".join(self._verbs)
            usage = f"Usage: /admin <verb> ... where verb is one of: {verbs}"
            return Reply(usage, ReplyKind.ERROR, private=True)
        try:
            text_out = await handler(AdminRequest(actor, args.strip(), local))
        except UsageError as exc:
            return Reply(str(exc), ReplyKind.ERROR, private=True)
        return Reply(text_out, ReplyKind.COMMAND, private=True)

    # ----------------------------------------------------------------- helpers

    async def _audit(self, request: AdminRequest, verb: str, target: str, detail: str = "") -> None:
        await self._storage.add_audit(
            AuditEntry(request.actor, verb, target, self._clock.now(), detail)
        )

    async def _agent(self, name: str) -> AgentRecord:
        key = _key(name)
        agent = await self._storage.load_agent(key)
        if agent is None:
            raise UsageError(f"No agent for {key}.")
        return agent

    async def _block(self, agent: AgentRecord, label: str) -> Block:
        _check_label(label)
        blocks = {b.label: b for b in await self._storage.list_blocks(agent.id)}
        if label not in blocks:
            raise UsageError(f"{agent.key} has no block {label!r}; blocks: {', '.join(blocks)}")
        return blocks[label]

    # ----------------------------------------------------------------- verbs

    async def users(self, request: AdminRequest) -> str:
        listed = await self._storage.list_agents(_number("users", request.args, 20))
        await self._audit(request, "users", "*", f"{len(listed)} listed")
        if not listed:
            return "No users yet."
        lines = [
            f"{u.key} “{u.display_name}” last seen {render.stamp(u.last_user_at, self._tz)}, "
            f"{u.message_count} messages, core memory {u.core_memory_chars} chars"
            for u in listed
        ]
        return "\n".join(lines)

    async def memory(self, request: AdminRequest) -> str:
        words = request.args.split()
        if len(words) not in (1, 2):
            raise _usage("memory")
        agent = await self._agent(words[0])
        label = words[1] if len(words) == 2 else ""
        if label:
            blocks = [await self._block(agent, label)]
        else:
            blocks = await self._storage.list_blocks(agent.id)
        await self._audit(request, "memory", str(agent.key), label)
        return f"Core memory of {agent.key}:\n\n" + render.blocks(blocks)

    async def set(self, request: AdminRequest) -> str:
        name, label, text = _split("set", request.args)
        return await self._write(request, "set", name, label, lambda old: text)

    async def append(self, request: AdminRequest) -> str:
        name, label, text = _split("append", request.args)
        return await self._write(
            request, "append", name, label, lambda old: f"{old}\n{text}" if old else text
        )

    async def _write(
        self, request: AdminRequest, verb: str, name: str, label: str, compute: Callable[[str], str]
    ) -> str:
        agent = await self._agent(name)
        current = await self._block(agent, label)
        saved = await self._storage.save_block(
            agent.id,
            label,
            compute(current.value),
            Actor.OPERATOR,
            request.actor,
            self._clock.now(),
        )
        await self._audit(request, verb, str(agent.key), f"{label} v{saved.version}")
        warning = ""
        if len(saved.value) > saved.limit:
            warning = (
                f"\nWarning: {len(saved.value)} chars is over the block's limit of {saved.limit}; "
                "the agent will be asked to condense it before it can add more."
            )
        size = f"{len(saved.value)}/{saved.limit} chars"
        return f"Saved {agent.key} {label} as v{saved.version} ({size}).{warning}"

    async def _versions(self, agent: AgentRecord, current: Block) -> list[BlockVersion]:
        """Every version, v1 (the value at creation) included."""
        edits = await self._storage.block_history(agent.id, current.label)
        first_value = edits[0].old_value if edits else current.value
        first = BlockVersion(1, Actor.SYSTEM, "created", None, first_value or "", agent.created_at)
        return [first, *edits]

    async def history(self, request: AdminRequest) -> str:
        name, label = _split("history", request.args)
        agent = await self._agent(name)
        versions = await self._versions(agent, await self._block(agent, label))
        await self._audit(request, "history", str(agent.key), label)
        return f"History of {agent.key} {label}:\n\n" + render.history(versions, self._tz)

    async def revert(self, request: AdminRequest) -> str:
        name, label, number = _split("revert", request.args)
        if not number.lstrip("v").isdigit():
            raise _usage("revert")
        agent = await self._agent(name)
        block = await self._block(agent, label)
        versions = {v.version: v for v in await self._versions(agent, block)}
        wanted = versions.get(int(number.lstrip("v")))
        if wanted is None:
            raise UsageError(f"{agent.key} {label} has versions 1 to {max(versions)}.")
        saved = await self._storage.save_block(
            agent.id, label, wanted.new_value, Actor.OPERATOR, request.actor, self._clock.now()
        )
        await self._audit(
            request, "revert", str(agent.key), f"{label} v{wanted.version} -> v{saved.version}"
        )
        return f"Restored {agent.key} {label} to v{wanted.version}, saved as v{saved.version}."

    async def search(self, request: AdminRequest) -> str:
        name, words = _split("search", request.args)
        agent = await self._agent(name)
        found = await self._storage.search_messages(agent.id, words, limit=10)
        await self._audit(request, "search", str(agent.key))
        if not found:
            return f"No messages of {agent.key} match “{words}”."
        return f"Messages of {agent.key} matching “{words}”:\n" + render.hits(
            found, self._tz, "user"
        )

    async def shared(self, request: AdminRequest) -> str:
        label, text = _split("shared", request.args)
        _check_label(label)
        if text.startswith("--") and text != "--delete":
            raise UsageError(
                f"Did you mean to delete {label}? Send `/admin shared {label} --delete` with "
                "nothing after it; block text cannot start with --."
            )
        if text == "--delete":
            deleted = await self._storage.delete_shared_block(label)
            await self._audit(request, "shared-delete", label)
            return (
                f"Deleted shared block {label}."
                if deleted
                else f"There is no shared block {label}."
            )
        await self._storage.set_shared_block(label, text, request.actor, self._clock.now())
        await self._audit(request, "shared", label)
        return f"Every agent now sees the read-only block {label} ({len(text)} chars)."

    async def import_file(self, request: AdminRequest) -> str:
        name, path = _split("import", request.args)
        if not request.local:
            raise UsageError(
                "Import reads a file on the server: run `python -m bots admin import` there."
            )
        key = _key(name)
        try:
            raw = await asyncio.to_thread(_read_file, path, _IMPORT_LIMITS.max_bytes + 1)
            parsed = parse_agent_file(
                raw, default_blocks(self._settings.memory), self._clock.now(), _IMPORT_LIMITS
            )
        except OSError as exc:
            raise UsageError(f"Cannot read {path}: {exc.strerror}") from None
        except AgentFileError as exc:
            raise UsageError(f"{path} is not an Agent File we can import: {exc}") from None
        snapshot = parsed.snapshot
        # Replacing a whole agent must not interleave with that person's turn: wait for it.
        if self._turns.busy(key):
            log.info("import of %s waits for their running turn to finish", key)
        async with self._turns.hold(key):
            agent = await self._storage.replace_agent(key, snapshot, self._clock.now())
        await self._audit(request, "import", str(key), f"{len(snapshot.messages)} messages")
        changed = "".join(f"\n- {note}" for note in parsed.notes)
        return (
            f"Imported {key}: {len(snapshot.blocks)} blocks, {agent.message_count} messages, "
            f"{agent.passage_count} passages." + (f"\nChanged to fit:{changed}" if changed else "")
        )

    async def backup(self, request: AdminRequest) -> str:
        if not request.args:
            raise _usage("backup")
        if not request.local:
            raise UsageError(
                "Backups are written on the server: run `python -m bots admin backup` there."
            )
        destination = await asyncio.to_thread(_expand, request.args)
        if await asyncio.to_thread(destination.exists):
            raise UsageError(f"{destination} exists already; choose a new file name.")
        if not await asyncio.to_thread(destination.parent.is_dir):
            raise UsageError(f"There is no folder {destination.parent}; create it first.")
        try:
            await self._storage.backup(destination)
        except StorageError as exc:
            raise UsageError(str(exc)) from None
        await self._audit(request, "backup", "*", str(destination))
        return f"Backed up the database to {destination}."

    async def stats(self, request: AdminRequest) -> str:
        now = self._clock.now()
        midnight = datetime.combine(now.astimezone(self._tz).date(), time.min, self._tz)
        stats = await self._storage.stats(midnight)
        runs = await self._storage.recent_startups(5)
        await self._audit(request, "stats", "*")
        latencies = sorted(stats.llm_latencies_ms)
        model = "no model calls today"
        if latencies:
            p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
            model = (
                f"{len(latencies)} model calls today, latency median "
                f"{statistics.median(latencies):.0f} ms, p95 {p95:.0f} ms; "
                f"{stats.tokens_today} tokens today"
            )
        today = day_of(now, self._tz)
        days = await self._storage.usage(None, month_start(today))
        lines = [
            f"{stats.agents} users, {stats.messages} messages, {stats.passages} passages",
            f"database {stats.size_bytes / 1e6:.1f} MB",
            _uptime(runs, now),
            model,
            *(f"model use {line}" for line in summary_lines(days, today, self._usage.prices)),
            await self._reminder_line(midnight),
            *[_embedding_line(p) for p in await self._storage.embedding_progress()],
            "last startups:",
            *(_startup_line(run, self._tz) for run in runs),
        ]
        return "\n".join(lines)

    async def usage(self, request: AdminRequest) -> str:
        words = request.args.split()
        if len(words) > 1:
            raise _usage("usage")
        today = day_of(self._clock.now(), self._tz)
        since = month_start(today)
        if words:
            agent = await self._agent(words[0])
            days = await self._storage.usage(agent.id, since)
            await self._audit(request, "usage", str(agent.key))
            title = f"Model use for {agent.key} “{agent.display_name}”"
            return "\n".join([title, *self._usage_lines(days, today)])
        days = await self._storage.usage(None, since)
        top = await self._storage.usage_by_person(since, TOP_USERS)
        await self._audit(request, "usage", "*", f"{len(top)} listed")
        lines = [
            "Model use, everyone (people since erased included)",
            *self._usage_lines(days, today),
        ]
        lines.append(self._budget_line(days, today))
        if top:
            lines.append("most tokens this month:")
            lines += [f"  {p.key} “{p.display_name}”: {self._priced(p.days)}" for p in top]
        return "\n".join(lines)

    def _usage_lines(self, days: list[UsageDay], today: date) -> list[str]:
        """Today and this month, then this month per model."""
        lines = summary_lines(days, today, self._usage.prices)
        models = by_model(days)
        if len(models) > 1:
            lines.append("this month by model:")
            lines += [
                f"  {model or '(unnamed)'}: {self._priced(rows)}" for model, rows in models.items()
            ]
        return lines

    def _priced(self, days: Sequence[UsageDay]) -> str:
        return f"{describe(totals(days))}; {describe_cost(cost(days, self._usage.prices))}"

    def _budget_line(self, days: list[UsageDay], today: date) -> str:
        person, total = self._usage.person_daily_tokens, self._usage.total_daily_tokens
        if not (person or total):
            return "budgets: none ([usage] daily_tokens_per_person, daily_tokens_total)"
        parts = [f"{person:,} tokens a day per person" if person else "no limit per person"]
        if total:
            used = totals(on(days, today)).tokens
            parts.append(f"{total:,} a day for everyone ({used:,} used today)")
        return "budgets: " + "; ".join(parts) + "; operators exempt"

    async def _reminder_line(self, midnight: datetime) -> str:
        counts = await self._storage.reminder_counts(midnight)
        return (
            f"reminders: {counts.pending} waiting, {counts.sent_today} sent today, "
            f"{counts.late} sent late in all, {counts.failed} failed; "
            f"{counts.people_with_zone} people set a time zone"
        )

    async def audit(self, request: AdminRequest) -> str:
        entries = await self._storage.recent_audit(_number("audit", request.args, 20))
        if not entries:
            return "The audit log is empty."
        return "\n".join(
            f"{render.stamp(e.created_at, self._tz)} {e.actor} {e.verb} {e.target}"
            + (f" ({e.detail})" if e.detail else "")
            for e in entries
        )


def _embedding_line(progress: EmbeddingProgress) -> str:
    """How far the background worker has embedded the searchable rows with one model."""
    return (
        f"embeddings ({progress.model}): {progress.messages_embedded} of {progress.messages} "
        f"messages, {progress.passages_embedded} of {progress.passages} passages"
    )


def _check_label(label: str) -> None:
    if not valid_label(label):
        raise UsageError(f"A block label is {LABEL_RULE}, e.g. server or rules.")


def _expand(path: str) -> Path:
    return Path(path).expanduser()


def _read_file(path: str, at_most: int) -> bytes:
    """Up to ``at_most`` bytes (so /dev/zero or a huge file cannot fill the memory)."""
    with _expand(path).open("rb") as handle:
        return handle.read(at_most)


def _uptime(runs: list[StartupRun], now: datetime) -> str:
    if not runs:
        return "the bot has not started yet"
    return f"last start {humanize(now - runs[0].started_at)} (uptime if it is running)"


def _startup_line(run: StartupRun, tz: ZoneInfo) -> str:
    phases = " ".join(f"{name}={ms:.0f}ms" for name, ms in run.phases)
    totals = f"total={run.total_ms:.0f}ms rss={run.rss_mb:.1f}MB"
    return f"  {render.stamp(run.started_at, tz)} {phases} {totals}"
