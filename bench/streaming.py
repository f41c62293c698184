"""Streaming answers on Telegram: how soon the first words show, and how many edits it takes.

The real runtime and Telegram adapter (python-telegram-bot) run against the fake Bot API, and
the real ``openai`` SDK against the fake OpenAI server, which streams each answer at a fixed
token rate (words per second, like a local model). For each answer: the time from the model's
first token leaving the server to the first visible text arriving at the Bot API (streamed),
and the number of sendMessage + editMessageText requests it took. Baseline in the same run: the
same answers with streaming off, where the first text shows only once the whole answer is done.

    python -m bench.streaming            # 10 answers of 300 words at 50 tokens/s
    python -m bench.streaming --smoke    # 2 answers of 60 words at 100 tokens/s
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

from agentcore.clock import SystemClock
from agentcore.llm.openai_compat import OpenAICompatibleLLM
from agentcore.storage.sqlite import SQLiteStorage
from bench.bot import bench_settings
from bench.common import print_table, summary_ms, write_json
from bots.compose import build_runtime
from bots.telegram import TelegramAdapter, build_application
from tests.fakes.openai_server import Completion, FakeOpenAI
from tests.fakes.telegram_server import FakeTelegram, User

WORD = "lighthouse "


async def run(answers: int, words: int, rate: float, *, stream: bool) -> dict[str, Any]:
    """``answers`` questions from different people, one after another."""
    answer = Completion((WORD * words).strip(), token_rate=rate, completion_tokens=words)
    settings = bench_settings({"AGENTCORE_STREAMING__ENABLED": str(stream).lower()})
    waits, requests = [], []
    async with FakeOpenAI(lambda body: answer) as server, FakeTelegram() as fake:
        with tempfile.TemporaryDirectory() as folder:
            storage = await SQLiteStorage.open(Path(folder) / "stream.db")
            llm = OpenAICompatibleLLM(model="m", base_url=server.base_url, api_key="k")
            runtime = build_runtime(settings, storage, llm, SystemClock())
            adapter = TelegramAdapter(
                build_application(fake.token, fake.root, rate_limited=False), runtime
            )
            await adapter.start()
            try:
                for i in range(answers):
                    person = User(5000 + i, f"P{i}")
                    fake.private(person, "tell me about the lighthouse")
                    chat = person.id
                    await fake.wait_until(lambda: _done(fake, chat, words), 120)  # noqa: B023
                    first_text = fake.to_chat(person.id)[0].at
                    waits.append(first_text - server.first_token_at[i])
                    edits = fake.to_chat(person.id, "editMessageText")
                    requests.append(len(fake.to_chat(person.id)) + len(edits))
            finally:
                await adapter.stop()
                await runtime.shutdown()
    return {"first_text": summary_ms(waits), "requests_per_answer": requests}


def _done(fake: FakeTelegram, chat: int, words: int) -> bool:
    return sum(s.plain.count(WORD.strip()) for s in fake.to_chat(chat)) == words


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--answers", type=int, default=10)
    parser.add_argument("--words", type=int, default=300)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.answers, args.words, args.rate = 2, 60, 100.0
    streamed = asyncio.run(run(args.answers, args.words, args.rate, stream=True))
    whole = asyncio.run(run(args.answers, args.words, args.rate, stream=False))
    rows = []
    for name, result in (("streamed", streamed), ("not streamed (baseline)", whole)):
        first, counts = result["first_text"], result["requests_per_answer"]
        rows.append(
            [name, first["median_ms"], first["p95_ms"], sum(counts) / len(counts), max(counts)]
        )
    print_table(
        f"Streaming on Telegram: {args.answers} answers of {args.words} words at "
        f"{args.rate:g} tokens/s (model's first token → first visible text)",
        ["answers", "median ms", "p95 ms", "requests/answer", "max"],
        rows,
    )
    write_json(
        "streaming",
        {
            "smoke": args.smoke,
            "answers": args.answers,
            "words": args.words,
            "tokens_per_second": args.rate,
            "streamed": streamed,
            "baseline_not_streamed": whole,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
