"""The composition root: ``python -m bots``.

Everything is built here, once: settings, storage, the model client, the runtime and the
adapters of the platforms whose tokens are set (with none set, a terminal chat). Platform
libraries are imported only for the adapters that run, and the ``openai`` SDK is loaded in the
background once the adapters are receiving.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from agentcore.timing import StartupTimer

_TIMER = StartupTimer()  # first thing: everything before this line is the "imports" phase

from agentcore.clock import Clock, SystemClock, Timer  # noqa: E402
from agentcore.embedding.base import Embedder  # noqa: E402
from agentcore.llm.check import check_endpoint  # noqa: E402
from agentcore.llm.tooling import ToolCallingLLM  # noqa: E402
from agentcore.llm.wrappers import LazyLLM  # noqa: E402
from agentcore.runtime import AgentRuntime  # noqa: E402
from agentcore.schedule.doorbell import Doorbell  # noqa: E402
from agentcore.schedule.scheduler import Scheduler  # noqa: E402
from agentcore.storage.protocols import Coordination, Storage, StorageError  # noqa: E402
from agentcore.timing import format_startup  # noqa: E402
from bots.adapter import Adapter, AdapterError  # noqa: E402
from bots.compose import (  # noqa: E402
    build_embedder,
    build_model,
    build_scheduler,
    build_transcriber,
    database_shown,
    open_storage,
    runtime_over,
    search_mode,
    start_embeddings,
)
from bots.instance import InstanceLock  # noqa: E402
from bots.logs import configure_logging  # noqa: E402
from config import ConfigError, Settings, load_settings  # noqa: E402

if TYPE_CHECKING:
    from agentcore.llm.openai_compat import OpenAICompatibleLLM

log = logging.getLogger("bots")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bots",
        description="Run the bot on every platform whose token is set; with none, chat in the "
        "terminal. `python -m bots admin <verb> ...` is the operator CLI.",
    )
    parser.add_argument("--config", type=Path, help="a TOML file overriding the defaults")
    parser.add_argument("--user", help="terminal chat: the local user name (default: OS user)")
    parser.add_argument(
        "--startup-report", action="store_true", help="print the last startups' timings and exit"
    )
    parser.add_argument("command", nargs="?", choices=["admin"], help=argparse.SUPPRESS)
    parser.add_argument("words", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    operator_cli = args.command == "admin" or args.startup_report
    try:
        if args.command == "admin":
            args.config, args.words = _admin_config(args.config, args.words)
        if args.user is not None:
            _check_console_user(args.user)
        with _TIMER.phase("config"):
            settings = load_settings(args.config, require_model=not operator_cli)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging("WARNING" if operator_cli else settings.log_level, _secrets(settings))
    for warning in settings.warnings:
        log.warning("%s", warning)
    if operator_cli:
        return _operator_cli(settings, args)
    try:
        return asyncio.run(serve(settings, args, _TIMER, SystemClock()))
    except KeyboardInterrupt:
        return 130


def _admin_config(config: Path | None, words: list[str]) -> tuple[Path | None, list[str]]:
    """``admin --config FILE <verb> ...`` reads FILE as ``--config FILE admin ...`` does."""
    while words and words[0].split("=", 1)[0] == "--config":
        option = words.pop(0)
        if "=" in option:
            config = Path(option.split("=", 1)[1])
        elif words:
            config = Path(words.pop(0))
        else:
            raise ConfigError("--config needs a file name")
    return config, words


def _check_console_user(name: str) -> None:
    from bots.console import console_user  # noqa: PLC0415

    try:
        console_user(name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _operator_cli(settings: Settings, args: argparse.Namespace) -> int:
    from bots.admin_cli import run_admin, startup_report  # noqa: PLC0415

    try:
        code = startup_report(settings) if args.startup_report else run_admin(settings, args.words)
        sys.stdout.flush()  # here, where a closed pipe can be handled, not at exit
        return code
    except BrokenPipeError:
        # The reader went away (`admin audit | head`): what it wanted is printed. Point stdout
        # at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _secrets(settings: Settings) -> list[str]:
    secrets = [
        s.reveal()
        for s in (
            settings.llm.api_key,
            settings.transcription.api_key,
            settings.embedding.api_key,
            settings.telegram.token,
            settings.discord.token,
            settings.database_url,
        )
        if s
    ]
    password = urlsplit(settings.database_url.reveal()).password if settings.database_url else None
    return [*secrets, password] if password else secrets


async def build_llm(settings: Settings, model: str = "") -> OpenAICompatibleLLM:
    """Import the SDK and build the client for ``model`` (default: the chat model); runs in the
    background via ``LazyLLM``."""
    started = time.perf_counter()
    # Importing openai takes most of a second; do it in a thread so the loop stays responsive.
    module = await asyncio.to_thread(importlib.import_module, "agentcore.llm.openai_compat")
    llm: OpenAICompatibleLLM = module.OpenAICompatibleLLM(
        model=model or settings.llm.model,
        base_url=settings.llm.base_url or None,
        api_key=settings.llm.api_key.reveal() or None,
        deadline=settings.llm.timeout,
        max_retries=settings.llm.max_retries,
        max_tokens=settings.llm.max_tokens,
        send_cache_key=settings.llm.prompt_cache_key,
    )
    elapsed = (time.perf_counter() - started) * 1000
    log.info("model client ready after %.0fms, loaded in the background", elapsed)
    return llm


AdapterFactory = Callable[[], Adapter]


def adapter_factories(
    settings: Settings,
    args: argparse.Namespace,
    runtime: AgentRuntime,
    clock: Timer,
    roles: Coordination,
) -> list[tuple[str, AdapterFactory]]:
    """The adapters to run, by startup-phase name. A platform's library is imported only when
    that platform is configured, inside its phase, so the startup line shows its cost.
    ``roles`` (the storage) elects the Telegram poller and owns Discord shards among the bot
    processes on one database."""
    factories: list[tuple[str, AdapterFactory]] = []
    if settings.telegram.token:
        factories.append(("telegram", lambda: _telegram(settings, runtime, roles)))
    if settings.discord.token:
        factories.append(("discord", lambda: _discord(settings, runtime, roles)))
    if not factories:
        factories.append(("console", lambda: _console(settings, runtime, clock, args.user)))
    return factories


def _telegram(settings: Settings, runtime: AgentRuntime, roles: Coordination) -> Adapter:
    from bots.telegram import TelegramAdapter, build_application  # noqa: PLC0415

    config = settings.telegram
    application = build_application(config.token.reveal(), config.base_url)
    return TelegramAdapter(
        application,
        runtime,
        roles=roles,
        shared=bool(settings.database_url),
        webhook=(config.webhook_url, config.webhook_listen) if config.webhook_url else None,
        grace=settings.runtime.shutdown_grace,
        max_file_bytes=settings.agent.media.max_file_bytes,
        edit_seconds=settings.streaming.edit_seconds,
    )


def _discord(settings: Settings, runtime: AgentRuntime, roles: Coordination) -> Adapter:
    from bots.discord import build_discord_adapter  # noqa: PLC0415

    return build_discord_adapter(settings, runtime, roles)


def _console(settings: Settings, runtime: AgentRuntime, clock: Timer, user: str | None) -> Adapter:
    from bots.console import ConsoleAdapter, console_user  # noqa: PLC0415

    return ConsoleAdapter(
        runtime, clock, console_user(user), max_file_bytes=settings.agent.media.max_file_bytes
    )


async def serve(
    settings: Settings, args: argparse.Namespace, timer: StartupTimer, clock: Timer
) -> int:
    if settings.database_url:  # PostgreSQL: any number of processes may share the database
        return await _serve(settings, args, timer, clock)
    lock = InstanceLock(settings.database)
    try:
        lock.acquire()
    except AdapterError as exc:
        log.error("%s", exc)
        return 1
    try:
        return await _serve(settings, args, timer, clock)
    finally:
        lock.release()


async def _serve(
    settings: Settings, args: argparse.Namespace, timer: StartupTimer, clock: Timer
) -> int:
    try:
        with timer.phase("db"):
            storage = await open_storage(settings)
    except StorageError as exc:
        hint = (
            "check AGENTCORE_DB and that the server accepts this user"
            if settings.database_url
            else "check that the file and its folder are writable, or set AGENTCORE_DB"
        )
        log.error("cannot open the database at %s (%s): %s", database_shown(settings), exc, hint)
        return 2
    with timer.phase("llm"):
        llm = LazyLLM(lambda: build_llm(settings))
        model = build_model(settings, llm)
        other = settings.consolidation.model  # consolidation's own model, if it has one
        consolidating = LazyLLM(lambda: build_llm(settings, other)) if other else None
        consolidation_model = build_model(settings, consolidating) if consolidating else None
    doorbell = Doorbell()
    transcriber = build_transcriber(settings)
    embedder = build_embedder(settings)
    runtime = runtime_over(
        settings, storage, model, clock, transcriber, consolidation_model, doorbell=doorbell
    )
    scheduler = build_scheduler(settings, storage, runtime, clock, doorbell)
    started: list[Adapter] = []
    signals: _Signals | None = None
    background: list[asyncio.Task[None]] = []
    try:
        for name, make in adapter_factories(settings, args, runtime, clock, storage):
            with timer.phase(name):
                adapter = make()
                await adapter.start()
            started.append(adapter)
            scheduler.attach(adapter)
        run = timer.finish(clock.now())
        log.info(format_startup(run))
        log.info(search_mode(settings))
        llm.start()  # load the model client now that every adapter is receiving
        background += [
            asyncio.ensure_future(_check_model(llm, model)),
            asyncio.ensure_future(runtime.background()),  # consolidation of ended sessions
        ]
        scheduler.start()  # reminders that came due while the bot was down go out now
        if embedder is not None:
            background.append(asyncio.ensure_future(_embed(settings, storage, embedder, clock)))
        await storage.record_startup(run)
        signals = _Signals()
        return await _until_stopped(started, signals.stop)
    except AdapterError as exc:
        log.error("%s", exc)
        return 1
    finally:
        for task in background:
            task.cancel()
        if background:  # let them end (release what they hold) before the database closes
            await asyncio.wait(background, timeout=BACKGROUND_STOP_SECONDS)
        now = signals.now if signals else None
        await _stop(started, scheduler, runtime, now, settings.runtime.shutdown_grace)
        if consolidating is not None:
            await consolidating.close()
        if embedder is not None:
            await embedder.close()


BACKGROUND_STOP_SECONDS = 5.0  # at most this long for background work to end once cancelled
EMBEDDER = "embedding worker"  # the role of the one process that embeds new rows


async def _embed(settings: Settings, storage: Storage, embedder: Embedder, clock: Clock) -> None:
    """Search by meaning, and the embedding of every row in the background: by one process
    among those sharing the database (the others stand by, and one takes over if it stops)."""
    try:
        worker = await start_embeddings(settings, storage, embedder, clock)
        role = await storage.take_role(EMBEDDER, wait=True)
        try:
            await worker.run()
        finally:
            if role is not None:
                await role.release()
    except Exception:  # background work must never take the bot down; search stays lexical
        log.exception("embeddings stopped")


async def _check_model(llm: LazyLLM[OpenAICompatibleLLM], model: ToolCallingLLM) -> None:
    """The endpoint check, off the critical path: it never delays readiness or a turn."""
    try:
        await check_endpoint(await llm.ready(), model)
    except Exception:  # a background check must never take the bot down
        log.exception("the model endpoint check failed")


class _Signals:
    """SIGINT and SIGTERM: the first asks for a graceful stop (running turns finish), a second
    one for a stop now."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.now = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._received)

    def _received(self) -> None:
        (self.now if self.stop.is_set() else self.stop).set()


async def _stop(
    adapters: Sequence[Adapter],
    scheduler: Scheduler,
    runtime: AgentRuntime,
    now: asyncio.Event | None,
    grace: float,
) -> None:
    """Stop the scheduler (reminders being sent get ``grace`` seconds), the adapters, then the
    runtime, letting running turns finish; if ``now`` is set meanwhile, cut that short: cancel
    what still runs and close the database and the model. Messages are stored before their turn
    starts, so a turn cut short loses nothing; a reminder cut short keeps its claim, which runs
    out, and goes out again."""
    stopping = _stop_gracefully(adapters, scheduler, runtime, grace)
    if now is None:  # stopped before the signal handlers were set up
        await stopping
        return
    graceful = asyncio.ensure_future(stopping)
    hurry = asyncio.ensure_future(now.wait())
    await asyncio.wait([graceful, hurry], return_when=asyncio.FIRST_COMPLETED)
    hurry.cancel()
    if graceful.done():
        graceful.result()
        return
    log.warning("stopping now, on a second signal")
    graceful.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await graceful
    await runtime.shutdown(grace=0)


async def _stop_gracefully(
    adapters: Sequence[Adapter], scheduler: Scheduler, runtime: AgentRuntime, grace: float
) -> None:
    await scheduler.stop(grace)
    for adapter in reversed(adapters):
        await adapter.stop()
    await runtime.shutdown()


async def _until_stopped(adapters: Sequence[Adapter], stop: asyncio.Event) -> int:
    """Wait for a stop signal or for an adapter to finish on its own; return the exit code."""
    waiters = [asyncio.ensure_future(a.finished()) for a in adapters]
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait([stopper, *waiters], return_when=asyncio.FIRST_COMPLETED)
    code = 0 if stopper in done else max((w.result() for w in waiters if w in done), default=0)
    for task in [stopper, *waiters]:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    if stopper in done:
        log.info("stopping on signal")
    return code


if __name__ == "__main__":
    sys.exit(main())
