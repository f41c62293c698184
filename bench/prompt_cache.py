"""Prompt caching: how much of each prompt repeats the previous one, and prompt size per turn.

The real bot (``bots.compose``, SQLite, the ``openai`` SDK) talks to the fake OpenAI server on
127.0.0.1, which measures, per request, how much of the prompt repeats the same person's previous
request, and reports it as ``usage.prompt_tokens_details.cached_tokens``, which the bot records.
A scripted model answers one person's scripted conversation, a turn a minute: chat of everyday
length, and every ten turns something to remember, which it saves with ``core_memory_append``
before answering.

1. **Prefix reuse** over 200 turns (a memory edit every ten turns, one fold of the history into
   the summary): the share of all prompt tokens (turns and the summary call) that repeat the
   previous request's prefix, with the bot's layout and, in the same run on the same script, the
   layout it replaced (memory metadata in the system message before the history) as the baseline.
2. **Prompt tokens per turn** (median; a turn's calls added up) when 10, 100 and 1,000 messages
   are stored: the window grows with the history until folding bounds it. The same conversation
   runs again with automatic recall off (``[memory] recall_tokens = 0``): the difference is what
   recall's snippets add to each turn (they come after the history, so they cost their own
   tokens and no cache reuse).

    python -m bench.prompt_cache            # full run, about a minute
    python -m bench.prompt_cache --smoke    # a few seconds, for CI
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import zlib
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from agentcore.clock import ManualClock
from agentcore.llm.openai_compat import OpenAICompatibleLLM
from agentcore.memory.prompt import (
    Layout,
    PromptParts,
    history_messages,
    prompt_messages,
    render_blocks,
    render_metadata,
    render_summary,
)
from agentcore.messages import PromptMessage, Role
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import AgentKey, InboundMessage
from bench.bot import bench_settings
from bench.common import print_table, write_json
from bench.dataset import Chatter
from bots.compose import build_runtime
from tests.fakes.openai_server import Completion, FakeOpenAI, last_user, system

PERSON = AgentKey("bench", "sam")
REMEMBER = "Please remember this: "
EDIT_EVERY = 10
SIZES = (10, 100, 1000)  # stored messages at which prompt tokens per turn are reported
SIZE_WINDOW = 20  # turns starting with this many more stored messages count toward a size


def classic_layout(parts: PromptParts) -> tuple[PromptMessage, ...]:
    """The layout the bot used before: one system message of instructions, core memory as it
    is, memory metadata (time to the minute, counts) and summary; then the history, with
    automatic recall in a system message after the person's latest message; then the one-off
    notes."""
    sections = [
        parts.instructions.strip(),
        render_blocks(parts.current),
        render_metadata(parts.facts, parts.tz),
    ]
    if parts.summary:
        sections.append(render_summary(parts.summary))
    history = history_messages(parts.rows, parts.message_cap)
    if parts.recalled:
        latest = max((i for i, m in enumerate(history) if m.role is Role.USER), default=-1)
        history.insert(latest + 1, PromptMessage(Role.SYSTEM, parts.recalled))
    return (
        PromptMessage(Role.SYSTEM, "\n\n".join(sections)),
        *history,
        *(PromptMessage(Role.SYSTEM, note) for note in parts.notes),
    )


LAYOUTS: dict[str, Layout] = {"bot": prompt_messages, "classic": classic_layout}


def script(turns: int) -> list[str]:
    """What the person says: everyday chat, and every tenth turn something to remember."""
    chatter = Chatter(seed=14)
    lines = []
    for turn in range(turns):
        line = chatter.line()
        lines.append(REMEMBER + line if turn % EDIT_EVERY == EDIT_EVERY // 2 else line)
    return lines


class ScriptedModel:
    """Answers like a chatty model, the same way for the same message in every run: saves what
    it is asked to remember, writes the running summary when asked for one."""

    def __init__(self) -> None:
        self._chatter = Chatter(seed=0)
        self.summaries = 0

    def __call__(self, body: dict[str, Any]) -> Completion:
        if "running summary" in system(body):
            self.summaries += 1
            return Completion(content=self._say(f"summary {self.summaries}", 8))
        if body["messages"][-1]["role"] == "tool":
            return Completion(content="Noted, I'll keep that in mind.")
        text = last_user(body)
        if text.startswith(REMEMBER):
            fact = text[len(REMEMBER) :][:120]
            return Completion(
                tool_calls=[("core_memory_append", {"label": "human", "content": fact})]
            )
        return Completion(content=self._say(text, 2))

    def _say(self, seed_text: str, lines: int) -> str:
        self._chatter.rng = random.Random(zlib.crc32(seed_text.encode()))
        return " ".join(self._chatter.line() for _ in range(lines))


@dataclass(frozen=True)
class TurnFigures:
    stored: int  # messages stored before the turn
    folded: bool  # the turn folded the history into the summary first
    calls: int
    prompt_tokens: int
    cached_tokens: int


async def converse(
    layout_name: str, lines: list[str], window: int, *, recall: bool = True
) -> list[TurnFigures]:
    """Run the script through the bot with one layout (automatic recall at its default budget,
    or off); each turn's measured prompt tokens."""
    env = {"AGENTCORE_MEMORY__CONTEXT_WINDOW": str(window)}
    if not recall:
        env["AGENTCORE_MEMORY__RECALL_TOKENS"] = "0"
    settings = bench_settings(env)
    layout = LAYOUTS[layout_name]
    clock = ManualClock()
    model = ScriptedModel()
    figures: list[TurnFigures] = []
    with tempfile.TemporaryDirectory() as tmp:
        storage = await SQLiteStorage.open(Path(tmp) / "bench.db")
        async with FakeOpenAI(model) as server:
            llm = OpenAICompatibleLLM(
                model="bench", base_url=server.base_url, api_key="unused", send_cache_key=True
            )
            runtime = build_runtime(settings, storage, llm, clock, layout=layout)
            for text in lines:
                clock.advance(timedelta(minutes=1))
                agent = await storage.load_agent(PERSON)
                before, summaries = len(server.cache.measured), model.summaries
                await runtime.handle(InboundMessage(PERSON, text, clock.now(), "Sam"))
                measured = server.cache.measured[before:]
                figures.append(
                    TurnFigures(
                        stored=agent.message_count if agent else 0,
                        folded=model.summaries > summaries,
                        calls=len(measured),
                        prompt_tokens=sum(m.prompt_tokens for m in measured),
                        cached_tokens=sum(m.cached_tokens for m in measured),
                    )
                )
            await llm.close()
        await storage.close()
    return figures


def reuse(turns: list[TurnFigures]) -> float:
    prompt = sum(t.prompt_tokens for t in turns)
    return sum(t.cached_tokens for t in turns) / prompt if prompt else 0.0


def per_size(turns: list[TurnFigures], size: int) -> dict[str, Any] | None:
    """Turns that began with ``size`` to ``size + SIZE_WINDOW`` messages stored."""
    chosen = [t for t in turns if size <= t.stored < size + SIZE_WINDOW]
    if not chosen:
        return None
    return {
        "stored": size,
        "turns": len(chosen),
        "median_prompt_tokens": statistics.median(t.prompt_tokens for t in chosen),
        "cached_share": round(reuse(chosen), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=200, help="turns of the reuse figure")
    parser.add_argument("--long-turns", type=int, default=520, help="turns to reach 1,000 stored")
    parser.add_argument("--window", type=int, default=16000, help="context window, tokens")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    args = parser.parse_args()
    if args.smoke:
        args.turns, args.long_turns, args.window = 40, 60, 5000
    lines = script(max(args.turns, args.long_turns))
    long_run = asyncio.run(converse("bot", lines[: args.long_turns], args.window))
    runs = {"bot": long_run[: args.turns]}
    runs["classic"] = asyncio.run(converse("classic", lines[: args.turns], args.window))
    no_recall = asyncio.run(converse("bot", lines[: args.long_turns], args.window, recall=False))
    runs["bot, recall off"] = no_recall[: args.turns]
    edits = sum(1 for text in lines[: args.turns] if text.startswith(REMEMBER))
    reuse_rows = [
        {
            "layout": name,
            "turns": len(turns),
            "memory_edits": edits,
            "folds": sum(t.folded for t in turns),
            "calls": sum(t.calls for t in turns),
            "prompt_tokens": sum(t.prompt_tokens for t in turns),
            "cached_share": round(reuse(turns), 4),
        }
        for name, turns in runs.items()
    ]
    sizes = [
        found | {"without_recall": per_size(no_recall, size)}
        for size in SIZES
        if (found := per_size(long_run, size)) is not None
    ]
    print_table(
        f"Prefix reuse over {args.turns} turns with {edits} memory edits: the share of prompt "
        "tokens repeating the previous request's prefix",
        ["layout", "folds", "model calls", "prompt tokens", "repeated"],
        [
            [r["layout"], r["folds"], r["calls"], r["prompt_tokens"], f"{r['cached_share']:.1%}"]
            for r in reuse_rows
        ],
    )
    print_table(
        "Prompt tokens per turn by messages stored (bot layout), with automatic recall and without",
        ["stored", "turns", "median prompt tokens", "repeated", "recall off", "repeated"],
        [
            [
                s["stored"],
                s["turns"],
                s["median_prompt_tokens"],
                f"{s['cached_share']:.1%}",
                s["without_recall"]["median_prompt_tokens"],
                f"{s['without_recall']['cached_share']:.1%}",
            ]
            for s in sizes
        ],
    )
    path = write_json(
        "prompt_cache",
        {"window": args.window, "reuse": reuse_rows, "per_size": sizes},
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
