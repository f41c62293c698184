"""Run every benchmark, then print the summary and draw the plot.

python -m bench            # full sizes (tens of minutes; builds a 1M-message database once)
python -m bench --smoke    # tiny sizes, a minute or two: what CI runs so nothing rots
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench.common import REPO, RESULTS

PG = ["--backend", "postgres"]
SIZES = ["--sizes", "10000", "100000", "1000000"]
# (module, the variant's arguments, the sizes of a full run); --smoke replaces the sizes.
SUITE: list[tuple[str, list[str], list[str]]] = [
    ("bench.startup", [], []),
    ("bench.core_turn", [], SIZES),
    ("bench.core_turn", PG, SIZES),
    ("bench.core_turn", [*PG, "--synchronous-commit", "off"], SIZES),
    ("bench.search_latency", [], ["--messages", "10000"]),
    ("bench.search_latency", [], ["--messages", "100000"]),
    ("bench.search_latency", [], ["--messages", "1000000"]),
    ("bench.search_latency", PG, ["--messages", "100000"]),
    ("bench.search_latency", PG, ["--messages", "1000000"]),
    ("bench.search_latency", ["--vectors"], ["--messages", "1000000"]),  # lexical vs hybrid
    ("bench.search_latency", [*PG, "--vectors"], ["--messages", "1000000"]),
    ("bench.memory", [], []),
    ("bench.concurrency", [], []),
    ("bench.multiproc", [], []),
    ("bench.growth", [], []),
    ("bench.locomo", [], []),
    ("bench.prompt_cache", [], []),
    ("bench.consolidation", [], []),
    ("bench.documents", [], []),
    ("bench.streaming", [], []),
    ("bench.telegram_latency", [], []),
    ("bench.discord_latency", [], []),
    ("bench.reminders", [], []),
    ("bench.reminders", PG, []),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--only", nargs="*", help="module names to run (default: all)")
    args = parser.parse_args()
    failed = []
    if not args.only:  # a fresh suite run: figures from earlier runs must not mix in
        for old in RESULTS.glob("*.json"):
            old.unlink()
    runs = [(module, [*variant, *sizes]) for module, variant, sizes in SUITE]
    if args.smoke:  # each variant once, at smoke size
        runs = list({(m, " ".join(v)): (m, [*v, "--smoke"]) for m, v, _ in SUITE}.values())
    for module, arguments in runs:
        if args.only and module.split(".")[-1] not in args.only:
            continue
        started = time.perf_counter()
        print(f"\n=== {module} {' '.join(arguments)}", flush=True)
        command = [sys.executable, "-m", module, *arguments]
        if subprocess.run(command, cwd=REPO, check=False).returncode != 0:
            failed.append(f"{module} {' '.join(arguments)}")
        print(f"({time.perf_counter() - started:.0f}s)", flush=True)
    # The plot in docs/ shows full-size runs only; a smoke run must not replace it.
    report = [sys.executable, "-m", "bench.report", *([] if args.smoke else ["--plot"])]
    subprocess.run(report, cwd=REPO, check=False)
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
