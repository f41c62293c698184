"""Startup: ``python -m bots`` with Telegram and Discord configured (against their fakes on
loopback), until both adapters are receiving, against a bare import of the same libraries
measured in the same run:

    python -c "import discord, telegram.ext, openai, aiosqlite, psutil"

The bot's total comes from its own ``startup:`` log line (counted from process start, interpreter
included); the baseline is the wall time of the bare import process. Target: ratio ≤ 1.0,
RSS at ready ≤ 90 MB.

    python -m bench.startup            # median of 5
    python -m bench.startup --runs 2   # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from bench.common import REPO, print_table, write_json
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.openai_server import Completion, FakeOpenAI
from tests.fakes.telegram_server import FakeTelegram

BARE_IMPORT = "import discord, telegram.ext, openai, aiosqlite, psutil"
_LINE = re.compile(r"startup: (?P<phases>.*) total=(?P<total>\d+)ms rss=(?P<rss>[\d.]+)MB")


async def bare_import_seconds() -> float:
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", BARE_IMPORT, cwd=REPO)
    assert await proc.wait() == 0
    return time.perf_counter() - started


async def bot_startup(env: dict[str, str]) -> dict[str, Any]:
    """One start of the bot: its startup line, parsed; then a clean SIGTERM stop."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bots",
        env=env,
        cwd=REPO,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    try:
        while True:
            line = (await asyncio.wait_for(proc.stderr.readline(), 60)).decode()
            if not line:
                raise RuntimeError("the bot exited before its startup line")
            found = _LINE.search(line)
            if found:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 60)
    phases = dict(p.split("=") for p in found["phases"].split())
    return {
        "total_ms": float(found["total"]),
        "rss_mb": float(found["rss"]),
        "phases_ms": {k: float(v.removesuffix("ms")) for k, v in phases.items()},
    }


async def measure(runs: int) -> dict[str, Any]:
    async with AsyncExitStack() as stack:
        telegram = await stack.enter_async_context(FakeTelegram())
        discord = await stack.enter_async_context(FakeDiscord())
        model = await stack.enter_async_context(FakeOpenAI(lambda b: Completion(content="hi")))
        folder = stack.enter_context(tempfile.TemporaryDirectory())
        env = {
            "PATH": os.environ["PATH"],
            "HOME": folder,
            "PYTHONPATH": str(REPO),
            "AGENTCORE_DB": str(Path(folder) / "bot.db"),
            "OPENAI_BASE_URL": model.base_url,
            "TELEGRAM_TOKEN": telegram.token,
            "TELEGRAM_BASE_URL": telegram.root,
            "DISCORD_TOKEN": discord.token,
            "DISCORD_API_BASE": discord.api_base,
            "DISCORD_GATEWAY_URL": discord.gateway_url,
        }
        await bot_startup(env)  # first run creates and migrates the database; not counted
        baseline, bot = [], []
        for _ in range(runs):  # interleaved, so both see the same machine load
            baseline.append(await bare_import_seconds() * 1000)
            bot.append(await bot_startup(env))
    return {"baseline_ms": baseline, "bot": bot}


def summarize(raw: dict[str, Any]) -> dict[str, Any]:
    totals = [b["total_ms"] for b in raw["bot"]]
    rss = [b["rss_mb"] for b in raw["bot"]]
    base = raw["baseline_ms"]
    phases = {
        name: statistics.median(b["phases_ms"][name] for b in raw["bot"])
        for name in raw["bot"][0]["phases_ms"]
    }
    return {
        "bot_total_ms": {
            "median": statistics.median(totals),
            "min": min(totals),
            "max": max(totals),
        },
        "bare_import_ms": {"median": statistics.median(base), "min": min(base), "max": max(base)},
        "ratio": round(statistics.median(totals) / statistics.median(base), 3),
        "rss_at_ready_mb": {"median": statistics.median(rss), "max": max(rss)},
        "phases_median_ms": phases,
        "runs": len(totals),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="one run, for CI")
    args = parser.parse_args()
    runs = 1 if args.smoke else args.runs
    result = summarize(asyncio.run(measure(runs)))
    bot, base = result["bot_total_ms"], result["bare_import_ms"]
    print_table(
        f"Startup, both adapters against loopback fakes (median of {runs}; min-max)",
        ["what", "median ms", "min-max ms"],
        [
            [
                "python -m bots, until receiving",
                bot["median"],
                f"{bot['min']:.0f}-{bot['max']:.0f}",
            ],
            ["bare import (baseline)", base["median"], f"{base['min']:.0f}-{base['max']:.0f}"],
        ],
    )
    print(
        f"ratio {result['ratio']} (target <= 1.0); RSS at ready "
        f"{result['rss_at_ready_mb']['median']:.1f} MB (target <= 90)"
    )
    print(
        "phases (median): "
        + " ".join(f"{k}={v:.0f}ms" for k, v in result["phases_median_ms"].items())
    )
    print(f"wrote {write_json('startup', result)}")


if __name__ == "__main__":
    main()
