"""Sleep-time consolidation: tokens per session.

Scripted 20-message sessions (10 from the person, 10 answers) go through the bot as
``python -m bots`` builds it; the session gap passes on an injected clock and a consolidation
sweep reads each session in one model call. The model is scripted and answers with the JSON the
bot asks for (the facts the person told), so the figure is the bot's own cost: the request it
builds (instructions, the person's blocks, the session) and that answer, counted by the bot's
local estimate (the scripted model reports no usage). The baseline, in the same run, is the
session's own text alone.

    python -m bench.consolidation [--sessions N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agentcore.clock import ManualClock
from agentcore.llm.base import LLMRequest, LLMResponse
from agentcore.llm.fake import FunctionLLM, reply
from agentcore.memory.consolidation import INSTRUCTIONS
from agentcore.memory.recall import tokens
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import AgentKey, InboundMessage
from bench.bot import bench_settings
from bench.common import percentile, print_table, write_json
from bots.compose import build_runtime

MESSAGES_PER_SESSION = 20
FACTS = [
    "My sister {name} lives in {city}.",
    "I work as a {job} at a small company.",
    "My dog is called {pet}.",
    "I'm training for a half marathon in {month}.",
    "I can't eat {food}, I'm allergic.",
]
CHATTER = [
    "How was your day?",
    "I watched a film about the sea last night, it was slow but lovely.",
    "Work was busy again, lots of meetings.",
    "Any idea what I should cook tonight?",
    "The weather here has been grey all week.",
    "I'm thinking about repainting the kitchen.",
    "Thanks, that helps!",
]
FILL = {
    "name": ["Ana", "Marta", "Joana", "Ines"],
    "city": ["Lisbon", "Porto", "Braga", "Faro"],
    "job": ["nurse", "carpenter", "designer", "teacher"],
    "pet": ["Miso", "Tofu", "Rex", "Luna"],
    "month": ["May", "June", "October"],
    "food": ["peanuts", "shellfish", "gluten"],
}


def session_lines(rng: random.Random) -> list[str]:
    """The person's 10 messages: three facts among everyday chatter."""
    facts = [f.format(**{k: rng.choice(v) for k, v in FILL.items()}) for f in FACTS]
    lines = rng.sample(facts, 3) + rng.choices(CHATTER, k=MESSAGES_PER_SESSION // 2 - 3)
    rng.shuffle(lines)
    return lines


def model(request: LLMRequest) -> LLMResponse:
    """Chat turns get a short friendly answer; a consolidation gets the facts as JSON."""
    if request.messages[0].content != INSTRUCTIONS:
        return reply("Good to hear from you! Tell me more.")
    session = request.messages[-1].content or ""
    told = re.findall(
        r"user: (My .+?\.|I work .+?\.|I'm training .+?\.|I can't eat .+?\.)", session
    )
    facts = [t.replace("My ", "Their ").replace("I ", "They ") for t in dict.fromkeys(told)]
    return reply(json.dumps({"blocks": {"human": {"add": facts}}}))


async def measure(sessions: int) -> dict[str, Any]:
    rng = random.Random(7)
    settings = bench_settings(
        {"AGENTCORE_CONSOLIDATION__ENABLED": "true"}, rate_limit_per_minute=10**6
    )
    clock = ManualClock(datetime(2025, 3, 1, 9, 0, tzinfo=UTC))
    spent: list[int] = []
    baseline: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        storage = await SQLiteStorage.open(Path(tmp) / "bench.db")
        runtime = build_runtime(settings, storage, FunctionLLM(model, record=False), clock)
        for i in range(sessions):
            key = AgentKey("bench", f"person{i}")
            said = 0
            for line in session_lines(rng):
                answer = await runtime.handle(InboundMessage(key, line, clock.now(), "Sam"))
                said += tokens(line) + tokens(answer.text)
                clock.advance(timedelta(minutes=1))
            clock.advance(settings.agent.memory.session_gap + timedelta(minutes=1))
            before = await storage.consolidation_tokens_since(datetime(2000, 1, 1, tzinfo=UTC))
            assert await runtime.consolidate_ended() == 1
            after = await storage.consolidation_tokens_since(datetime(2000, 1, 1, tzinfo=UTC))
            spent.append(after - before)
            baseline.append(said)
        await runtime.shutdown()
    return {
        "sessions": sessions,
        "messages_per_session": MESSAGES_PER_SESSION,
        "tokens_per_session": _stats(spent),
        "session_text_tokens": _stats(baseline),
    }


def _stats(values: list[int]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "p95": percentile(values, 95),
        "min": min(values),
        "max": max(values),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--smoke", action="store_true", help="a few sessions, for CI")
    args = parser.parse_args()
    result = asyncio.run(measure(3 if args.smoke else args.sessions))
    spent, text = result["tokens_per_session"], result["session_text_tokens"]
    print_table(
        f"Consolidation of a {MESSAGES_PER_SESSION}-message session, tokens (local estimate)",
        ["what", "median", "p95"],
        [
            ["consolidation call (request + answer)", spent["median"], spent["p95"]],
            ["the session's own text (baseline)", text["median"], text["p95"]],
        ],
    )
    print(f"wrote {write_json('consolidation', result)}")


if __name__ == "__main__":
    main()
