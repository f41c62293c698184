"""Startup timing: named phases, total since the process began, and RSS from psutil.

The total counts from the kernel's record of when this process started (``/proc/self/stat``),
so interpreter start-up and imports are included; psutil's ``create_time`` is rounded to the
boot clock's second and is too coarse for that.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from agentcore.records import StartupRun


def process_age_seconds() -> float:
    """Seconds since this process was started by the kernel (0.0 where /proc is missing)."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat_file:
            stat = stat_file.read()
        with open("/proc/uptime", encoding="ascii") as uptime_file:
            uptime = float(uptime_file.read().split()[0])
    except OSError:
        return 0.0
    # Field 22 (starttime, in clock ticks since boot) comes after the ")" closing the name.
    start_ticks = int(stat.rsplit(")", 1)[1].split()[19])
    return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))


def rss_mb() -> float:
    import psutil  # noqa: PLC0415  (psutil is only needed when the line is written)

    return float(psutil.Process().memory_info().rss) / (1024 * 1024)


class StartupTimer:
    """Collects phases in order; ``imports`` is everything before the timer was made."""

    def __init__(self) -> None:
        self._origin = time.perf_counter() - process_age_seconds()
        self._phases: list[tuple[str, float]] = [("imports", self._elapsed_ms())]
        self._started_at: datetime | None = None

    def _elapsed_ms(self) -> float:
        return (time.perf_counter() - self._origin) * 1000

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, (time.perf_counter() - started) * 1000)

    def add(self, name: str, ms: float) -> None:
        self._phases.append((name, ms))

    @property
    def phases(self) -> tuple[tuple[str, float], ...]:
        return tuple(self._phases)

    def finish(self, started_at: datetime) -> StartupRun:
        """Freeze the run: total since process start and the current RSS."""
        return StartupRun(
            started_at=started_at,
            total_ms=self._elapsed_ms(),
            rss_mb=rss_mb(),
            phases=self.phases,
        )


def format_startup(run: StartupRun) -> str:
    """``startup: imports=120ms config=2ms db=9ms ... total=262ms rss=61.3MB``"""
    phases = " ".join(f"{name}={ms:.0f}ms" for name, ms in run.phases)
    return f"startup: {phases} total={run.total_ms:.0f}ms rss={run.rss_mb:.1f}MB"
