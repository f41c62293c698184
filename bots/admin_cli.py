"""``python -m bots admin <verb> ...``: the operator CLI on the configured database.

It shares the verbs with the chat ``/admin`` command (``agentcore.commands``), runs beside a
live bot (SQLite WAL lets both read and write), and records every access in the audit log as
``cli:<OS user>``.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Sequence
from typing import TextIO

from agentcore.clock import SystemClock
from agentcore.commands import ADMIN_VERBS
from agentcore.records import StartupRun
from agentcore.storage.protocols import StorageError
from agentcore.types import ReplyKind
from bots.adapter import AdapterError
from bots.compose import build_commands, database_shown, open_storage
from bots.instance import InstanceBusy, InstanceLock
from config import Settings

USAGE = "usage: python -m bots admin <verb> [args...]\nverbs:\n" + "\n".join(
    f"  {v.name} {v.usage}".rstrip() + f"  — {v.description}" for v in ADMIN_VERBS
)


BOT_RUNNING = (
    "error: the bot is running on this database{pid}; stop it, import, then start it again, "
    "so the import cannot land in the middle of a turn"
)


def cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def run_admin(settings: Settings, words: Sequence[str], out: TextIO = sys.stdout) -> int:
    """Exit code 0 on success, 2 for a usage problem, 1 if the database cannot be used."""
    if not words or words[0] in {"-h", "--help", "help"}:
        print(USAGE, file=out)
        return 0 if words else 2
    spaced = _spaced_single_word(words)
    if spaced is not None:
        print(
            f"error: argument {spaced!r}: user names, block labels and numbers are single words "
            "(no spaces, not empty)",
            file=sys.stderr,
        )
        return 2
    if not _database_exists(settings):
        return 1
    if words[0] == "import":
        return _import_while_no_bot_runs(settings, " ".join(words), out)
    return asyncio.run(_run(settings, " ".join(words), out))


def _import_while_no_bot_runs(settings: Settings, text: str, out: TextIO) -> int:
    """An import replaces a person's whole memory; a running bot may be in the middle of their
    turn. On PostgreSQL the import holds that person's lock, as a turn does, so it waits for
    their turn in any bot process; a SQLite file's bot keeps its turns' locks in memory, so
    there the import is done only while no bot runs on the file (it takes the bot's own
    instance lock)."""
    if settings.database_url:
        return asyncio.run(_run(settings, text, out))
    lock = InstanceLock(settings.database)
    try:
        lock.acquire()
    except InstanceBusy as exc:
        print(BOT_RUNNING.format(pid=f" (pid {exc.holder})"), file=sys.stderr)
        return 1
    except AdapterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        return asyncio.run(_run(settings, text, out))
    finally:
        lock.release()


def _spaced_single_word(words: Sequence[str]) -> str | None:
    """An argument the verb reads as one word but that is empty or holds spaces (quoted in the
    shell): joined into one line, it would shift or split the verb's arguments silently."""
    verb = next((v for v in ADMIN_VERBS if v.name == words[0]), None)
    if verb is None:
        return None
    return next(
        (w for w in words[1 : 1 + verb.single_words] if len(w.split()) != 1 or w != w.strip()), None
    )


def startup_report(settings: Settings, out: TextIO = sys.stdout, runs: int = 10) -> int:
    """``python -m bots --startup-report``: the last startups as a table."""
    if not _database_exists(settings):
        return 1
    return asyncio.run(_report(settings, out, runs))


def _database_exists(settings: Settings) -> bool:
    if settings.database_url or settings.database.exists():
        return True
    print(
        f"error: no database at {settings.database} (set AGENTCORE_DB to the bot's database)",
        file=sys.stderr,
    )
    return False


async def _report(settings: Settings, out: TextIO, runs: int) -> int:
    try:
        storage = await open_storage(settings)
    except StorageError as exc:
        print(f"error: cannot open {database_shown(settings)}: {exc}", file=sys.stderr)
        return 1
    try:
        recent = await storage.recent_startups(runs)
    finally:
        await storage.close()
    if not recent:
        print("No startups recorded yet.", file=out)
        return 0
    print(format_startup_table(recent), file=out)
    return 0


def format_startup_table(runs: Sequence[StartupRun]) -> str:
    """Newest first; one column per phase (in the order phases ran), then total and RSS."""
    phases = list(dict.fromkeys(name for run in runs for name, _ in run.phases))
    header = ["started (UTC)", *phases, "total", "rss"]
    rows = [_startup_row(run, phases) for run in runs]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in [header, *rows]
    ]
    return "\n".join(lines)


def _startup_row(run: StartupRun, phases: Sequence[str]) -> list[str]:
    took = dict(run.phases)
    return [
        run.started_at.strftime("%Y-%m-%d %H:%M:%S"),
        *(f"{took[p]:.0f}ms" if p in took else "-" for p in phases),
        f"{run.total_ms:.0f}ms",
        f"{run.rss_mb:.1f}MB",
    ]


async def _run(settings: Settings, text: str, out: TextIO) -> int:
    try:
        storage = await open_storage(settings)
    except StorageError as exc:
        print(f"error: cannot open {database_shown(settings)}: {exc}", file=sys.stderr)
        return 1
    try:
        commands = build_commands(settings, storage, SystemClock())
        reply = await commands.admin(cli_actor(), text, local=True)
    except StorageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        await storage.close()
    print(reply.text, file=out)
    return 2 if reply.kind is ReplyKind.ERROR else 0
