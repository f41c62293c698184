"""Summarise ``bench/results/*.json`` as one Markdown table (what the README shows), and draw the
scaling plot: per-turn core overhead and search latency against history size.

    python -m bench.report             # after python -m bench
    python -m bench.report --plot      # also redraw docs/bench-scaling.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.common import REPO, RESULTS, machine

PLOT = REPO / "docs" / "bench-scaling.png"


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def search_sizes(backend: str = "", vectors: bool = False) -> list[dict[str, Any]]:
    """The search latency results of a backend ("" for SQLite, or "postgres"), by size: those
    of the histories with vectors (lexical and hybrid) or of those without."""
    name = f"search_latency_{backend}" if backend else "search_latency"
    found = [json.loads(p.read_text()) for p in RESULTS.glob(f"{name}-*.json")]
    found = [r for r in found if ("vector_bytes_per_message" in r) == vectors]
    return sorted(found, key=lambda r: int(r["messages"]))


def rows() -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    if startup := load("startup"):
        bot, base = startup["bot_total_ms"], startup["bare_import_ms"]
        out.append(
            (
                "Startup, both adapters, until receiving (median of "
                f"{startup['runs']}) vs bare import",
                "≤ 1.0×",
                f"{bot['median']:.0f} ms vs {base['median']:.0f} ms = {startup['ratio']:.2f}× "
                f"(bot {bot['min']:.0f}–{bot['max']:.0f} ms)",
            )
        )
        out.append(("RSS at ready", "≤ 90 MB", f"{startup['rss_at_ready_mb']['median']:.1f} MB"))
    for backend, on in (("", ""), ("postgres", " on PostgreSQL")):
        out += core_rows(backend, on) + search_rows(backend, on)
    out += core_rows("postgres_sync_off", " on PostgreSQL, synchronous_commit off")
    if memory := load("memory"):
        out.append(
            (
                f"RSS: ready / after {memory['users']:,} people / after "
                f"{memory['messages_sent']:,} messages",
                "≤ 150 MB after 10k people",
                f"{memory['ready_mb']:.0f} / {memory['after_users_mb']:.0f} / "
                f"{memory['after_messages_mb']:.0f} MB",
            )
        )
    if conc := load("concurrency"):
        out.append(
            (
                f"{conc['messages']:,} messages from {conc['users']:,} people at once, "
                f"{conc['model_latency_s']} s model, cap {conc['cap']}",
                f"≈ {conc['ideal_s']} s, ≤ +20%",
                f"{conc['total_s']} s ({conc['over_ideal']:+.1%}), {conc['errors']} errors, "
                f"{conc['people_out_of_order']} out of order",
            )
        )
    out += multiproc_rows()
    if growth := load("growth"):
        bulk = growth["bulk_insert_seconds"]
        out.append(
            (
                f"Database growth at {growth['messages']:,} messages",
                "bulk 1M < ~2 min",
                f"{growth['bytes_per_message']:.0f} bytes/message; bulk insert "
                f"{bulk if bulk is not None else '(cached)'} s; "
                f"{growth['api_messages_per_second']:,} messages/s one by one",
            )
        )
    if locomo := load("locomo"):
        out.append(
            (
                "LoCoMo recall R@5/10/25/50, categories 1–4",
                "R@10 ≥ 70, R@50 ≥ 88",
                f"{_recalls(locomo)} (p95 {locomo['p95_ms']} ms/query); plain FTS5 in the "
                f"same run: {_recalls(locomo.get('baseline_plain_fts5', {}))}",
            )
        )
        if on_postgres := locomo.get("postgres"):
            out.append(
                (
                    "LoCoMo recall on PostgreSQL, same run, R@5/10/25/50",
                    "as SQLite",
                    f"{_recalls(on_postgres)} (p95 {on_postgres['p95_ms']} ms/query)",
                )
            )
    if locomo and (auto := locomo.get("auto_recall")):
        out.append(
            (
                f"LoCoMo automatic recall, categories 1–4, {auto['budget']}-token budget: "
                "evidence shown (any evidence) vs conversation_search's 10 results; tokens "
                "added per turn median / p95",
                "as often as conversation_search",
                f"{auto['evidence_shown']}% ({auto['any_evidence_shown']}%) vs "
                f"{auto['search_r@10']}% ({auto['search_any@10']}%); "
                f"{auto['tokens_median']:.0f} / {auto['tokens_p95']:.0f} tokens",
            )
        )
    if consolidation := load("consolidation"):
        spent, text = consolidation["tokens_per_session"], consolidation["session_text_tokens"]
        out.append(
            (
                f"Consolidation of a scripted {consolidation['messages_per_session']}-message "
                "session: tokens per session (request + answer, local estimate), median / p95; "
                "the session's own text",
                "",
                f"{spent['median']:.0f} / {spent['p95']:.0f} tokens; session text "
                f"{text['median']:.0f} tokens",
            )
        )
    if docs := load("documents"):
        recall, latency, base = docs["recall"], docs["latency"], docs["baseline_plain_fts5"]
        out.append(
            (
                f"Document paging: {docs['pdf_pages']}-page PDF, {recall['questions']} questions "
                "about random pages, archival_memory_search R@1 / R@5; p95",
                "R@5 ≥ 95 %, p95 ≤ 10 ms",
                f"{recall['r_at_1']} / {recall['r_at_5']} %; {latency['p95_ms']:.2f} ms "
                f"(plain FTS5 in the same run: {base['recall']['r_at_1']} / "
                f"{base['recall']['r_at_5']} %; {base['latency']['p95_ms']:.2f} ms)",
            )
        )
        ingest = docs["ingest"]
        out.append(
            (
                f"Document ingest: {ingest['pages']}-page PDF into archival memory",
                "",
                f"{ingest['pages_per_second']} pages/s; RSS {ingest['rss_before_mb']} MB before, "
                f"peak {ingest['rss_peak_mb']} MB while reading",
            )
        )
    if stream := load("streaming"):
        streamed, whole = stream["streamed"], stream["baseline_not_streamed"]
        counts = streamed["requests_per_answer"]
        out.append(
            (
                f"Streaming on Telegram: {stream['words']}-word answers at "
                f"{stream['tokens_per_second']:g} tokens/s, model's first token → first visible "
                "text (median / p95); requests per answer",
                "",
                f"{streamed['first_text']['median_ms']:.0f} / "
                f"{streamed['first_text']['p95_ms']:.0f} ms (not streamed, in the same run: "
                f"{whole['first_text']['median_ms']:.0f} / {whole['first_text']['p95_ms']:.0f} "
                f"ms); {sum(counts) / len(counts):.1f} sends and edits per answer",
            )
        )
    out += prompt_cache_rows()
    for name, on in (("reminders", ""), ("reminders-postgres", " on PostgreSQL")):
        out += reminder_rows(name, on)
    out += platform_rows()
    return out


def multiproc_rows() -> list[tuple[str, str, str]]:
    figures = load("multiproc")
    if figures is None:
        return []
    zero, unsynced, slow = figures["zero"], figures["zero_async"], figures["slow"]

    def rate(f: dict[str, Any], key: str) -> str:
        return f"{f[key]['per_second']:.0f}"

    def load_of(f: dict[str, Any]) -> str:
        return f"{f['postgres_3']['load_average']:.1f}"

    people = f"{figures['people']:,} people"
    ideal = 3 * slow["cap_per_process"] / slow["model_latency_s"]
    return [
        (
            f"Throughput, zero-latency model, {people} × {zero['messages_each']} messages at "
            "once, answered/s: SQLite 1 process / PostgreSQL 1 process / 3 processes",
            "3 processes ≥ 2.5× one",
            f"{rate(zero, 'sqlite_1')} / {rate(zero, 'postgres_1')} / "
            f"{rate(zero, 'postgres_3')} ({zero['ratio']:.2f}×; load average {load_of(zero)}); "
            f"synchronous_commit off: {rate(unsynced, 'postgres_1')} / "
            f"{rate(unsynced, 'postgres_3')} ({unsynced['ratio']:.2f}×)",
        ),
        (
            f"Throughput, {slow['model_latency_s']} s model, at most {slow['cap_per_process']} "
            f"calls at once per process, {people} × 1 message: SQLite 1 / PostgreSQL 1 / 3",
            f"3 processes → 3× (ideal {ideal:.0f}/s)",
            f"{rate(slow, 'sqlite_1')} / {rate(slow, 'postgres_1')} / {rate(slow, 'postgres_3')}"
            f" ({slow['ratio']:.2f}×; load average {load_of(slow)})",
        ),
        (
            "A person's lock handed over after its holder is killed (SIGKILL), median / p95; "
            "released normally",
            "",
            _pair(figures["hand_over"]["after_kill"], figures["hand_over"]["after_release"]),
        ),
        (
            "Telegram poller failover after SIGKILL (to the standby's first getUpdates), "
            "median / p95; after SIGTERM",
            "",
            _pair(figures["failover"]["after_kill"], figures["failover"]["after_sigterm"]),
        ),
    ]


def _pair(first: dict[str, Any], baseline: dict[str, Any]) -> str:
    return (
        f"{first['median_ms']:.1f} / {first['p95_ms']:.1f} ms; "
        f"{baseline['median_ms']:.1f} / {baseline['p95_ms']:.1f} ms"
    )


def reminder_rows(name: str, on: str) -> list[tuple[str, str, str]]:
    reminders = load(name)
    if reminders is None:
        return []
    fire, rest = reminders["firing"], reminders["idle"]
    d, t = fire["delay"], fire["baseline_turn"]
    return [
        (
            f"Reminder firing delay{on} (due → sent), {fire['pending']:,} pending across "
            f"{fire['people']:,} people, {fire['fired']:,} due in {fire['window_s']:.0f} s; "
            "median / p99",
            "",
            f"{d['median_ms']:.1f} / {d['p99_ms']:.1f} ms (one turn alone: "
            f"{t['median_ms']:.1f} / {t['p99_ms']:.1f} ms)",
        ),
        (
            f"Scheduler idle{on}, {rest['pending']:,} pending none due: CPU per hour; "
            "queries per minute",
            "",
            f"{rest['cpu_ms_per_hour']:.0f} ms (process without it: "
            f"{rest['baseline_cpu_ms_per_hour']:.0f} ms); {rest['queries_per_minute']:g}",
        ),
    ]


def core_rows(backend: str, on: str) -> list[tuple[str, str, str]]:
    core = load(f"core_turn-{backend}" if backend else "core_turn")
    if core is None:
        return []
    return [
        (
            f"Core overhead{on} at {r['messages']:,} messages (1,000 people): agent creation "
            "(a new person's first message); a turn with automatic recall (without it, in the "
            "same run). Median / p99",
            "creation ≤ 1 ms; turn ≤ 5 / ≤ 20 ms",
            f"creation {r['create']['median_ms']:.2f} / {r['create']['p99_ms']:.2f} ms; "
            f"turn {r['turn']['median_ms']:.2f} / {r['turn']['p99_ms']:.2f} ms"
            + _without_recall(r),
        )
        for r in core["results"]
    ]


def _without_recall(result: dict[str, Any]) -> str:
    off = result.get("turn_without_recall")
    return f" (without {off['median_ms']:.2f} / {off['p99_ms']:.2f} ms)" if off else ""


def search_rows(backend: str, on: str) -> list[tuple[str, str, str]]:
    rows = []
    for r in search_sizes(backend):
        one, five = r["results"][0], r["results"][1]
        rows.append(
            (
                f"conversation_search{on} at {r['messages']:,} messages, 1-word / 5-word, "
                "median; p95",
                "p95 ≤ 10 ms",
                f"{one['median_ms']:.2f} / {five['median_ms']:.2f} ms; "
                f"{one['p95_ms']:.2f} / {five['p95_ms']:.2f} ms",
            )
        )
    for r in search_sizes(backend, vectors=True):
        lexical = [f for f in r["results"] if not f["hybrid"]]
        hybrid = [f for f in r["results"] if f["hybrid"]]
        rows.append(
            (
                f"conversation_search{on} at {r['messages']:,} messages with a vector each "
                f"({r['vector_bytes_per_message']:.0f} bytes/message), hybrid vs lexical in the "
                "same run, 1-word / 5-word, median; p95",
                "p95 ≤ 15 ms",
                f"hybrid {_median_p95(hybrid)} (lexical {_median_p95(lexical)})",
            )
        )
    return rows


def _median_p95(figures: list[dict[str, Any]]) -> str:
    """'1.00 / 2.00 ms; 3.00 / 4.00 ms': the medians, then the p95s, of the query lengths."""
    medians = " / ".join(f"{f['median_ms']:.2f}" for f in figures)
    return f"{medians} ms; " + " / ".join(f"{f['p95_ms']:.2f}" for f in figures) + " ms"


def prompt_cache_rows() -> list[tuple[str, str, str]]:
    found = load("prompt_cache")
    if found is None:
        return []
    share = {r["layout"]: r for r in found["reuse"]}
    bot, classic = share["bot"], share["classic"]
    sizes = found["per_size"]
    return [
        (
            f"Prefix reuse over a {bot['turns']}-turn conversation ({bot['memory_edits']} memory "
            f"edits, {bot['folds']} fold{'s' if bot['folds'] != 1 else ''}): prompt tokens "
            "repeating the previous request, bot "
            "layout vs the earlier layout (same run)",
            "≥ 90 %",
            f"{bot['cached_share']:.1%} vs {classic['cached_share']:.1%}",
        ),
        (
            "Prompt tokens per turn (median) at "
            + " / ".join(f"{s['stored']:,}" for s in sizes)
            + " stored messages (share repeating the previous request); the same with automatic "
            "recall off",
            "",
            _per_turn(sizes) + "; recall off: " + _per_turn([s["without_recall"] for s in sizes]),
        ),
    ]


def _per_turn(sizes: list[dict[str, Any]]) -> str:
    return (
        " / ".join(f"{s['median_prompt_tokens']:,.0f}" for s in sizes)
        + " ("
        + " / ".join(f"{s['cached_share']:.0%}" for s in sizes)
        + ")"
    )


def _recalls(figures: dict[str, Any]) -> str:
    return " / ".join(str(figures.get(f"r@{k}", "–")) for k in (5, 10, 25, 50))


# (result name, what it times); each result holds {"rows": [{"scenario", "median_ms", "p95_ms"}]}.
PLATFORMS = (
    ("telegram_latency", "Telegram update → sendMessage"),
    ("discord_latency", "Discord MESSAGE_CREATE → reply POST"),
)


def platform_rows() -> list[tuple[str, str, str]]:
    out = []
    for name, what in PLATFORMS:
        result = load(name) or {"rows": []}
        for r in result["rows"]:
            out.append(
                (
                    f"{what}: {r['scenario']}",
                    "",
                    f"{r['median_ms']:.1f} / {r['p95_ms']:.1f} ms (median / p95)",
                )
            )
    return out


def plot() -> Path | None:
    """Per-turn overhead and search latency against history size (log scale)."""
    core, search = load("core_turn"), search_sizes()
    if core is None or not search:
        return None
    try:
        import matplotlib  # noqa: PLC0415  (the bench extra; not a runtime dependency)

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        print("(matplotlib not installed: pip install -e '.[bench]' for the plot)")
        return None
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    sizes = [r["messages"] for r in core["results"]]
    for stat, style in (("median_ms", "o-"), ("p99_ms", "s--")):
        left.plot(sizes, [r["turn"][stat] for r in core["results"]], style, label=stat[:-3])
    _finish_axis(left, "Per-turn core overhead", target=5, target_label="target median 5 ms")
    sizes = [r["messages"] for r in search]
    for index, label in ((0, "1 word"), (1, "5 words")):
        right.plot(
            sizes, [r["results"][index]["p95_ms"] for r in search], "o-", label=f"{label} p95"
        )
    _finish_axis(right, "conversation_search latency", target=10, target_label="target p95 10 ms")
    info = machine()
    figure.suptitle(f"{info['cores']} cores, Python {info['python']}")
    figure.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(PLOT, dpi=110)
    return PLOT


def _finish_axis(axis: Any, title: str, *, target: float, target_label: str) -> None:
    """Log-scale history sizes, milliseconds from zero, and the target as a dotted line."""
    axis.axhline(target, color="grey", lw=0.8, ls=":", label=target_label)
    axis.set(xscale="log", title=title, xlabel="messages stored", ylabel="ms", ylim=(0, None))
    axis.legend()


def main() -> int:
    draw = "--plot" in sys.argv[1:]
    table = rows()
    if not table:
        print("no results yet: run python -m bench", file=sys.stderr)
        return 1
    info = machine()
    print(f"\nResults ({info['cores']} cores, Python {info['python']}, {info['platform']})\n")
    print("| figure | target | measured |\n|---|---|---|")
    for figure, target, measured in table:
        print(f"| {figure} | {target} | {measured} |")
    drawn = plot() if draw else None
    if drawn is not None:
        print(f"\nplot: {drawn}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
