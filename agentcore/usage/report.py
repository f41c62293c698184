"""Sums of model usage as people and operators see them: calls, tokens, the share of prompt
tokens the provider served from its cache, and a cost estimate from the configured prices."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from agentcore.records import UsageDay
from agentcore.settings import Price

_PER_MILLION = 1_000_000


@dataclass(frozen=True, slots=True)
class Totals:
    calls: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    estimated_calls: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cached_share(self) -> float:
        """The share of prompt tokens served from the provider's cache (0..1)."""
        return self.cached_tokens / self.prompt_tokens if self.prompt_tokens else 0.0


def totals(days: Iterable[UsageDay]) -> Totals:
    rows = list(days)
    return Totals(
        calls=sum(d.calls for d in rows),
        prompt_tokens=sum(d.prompt_tokens for d in rows),
        cached_tokens=sum(d.cached_tokens for d in rows),
        completion_tokens=sum(d.completion_tokens for d in rows),
        estimated_calls=sum(d.estimated_calls for d in rows),
    )


def month_start(day: date) -> date:
    return day.replace(day=1)


def on(days: Iterable[UsageDay], day: date) -> list[UsageDay]:
    return [d for d in days if d.day == day]


def by_model(days: Iterable[UsageDay]) -> dict[str, list[UsageDay]]:
    grouped: dict[str, list[UsageDay]] = {}
    for d in days:
        grouped.setdefault(d.model, []).append(d)
    return grouped


@dataclass(frozen=True, slots=True)
class Cost:
    dollars: float  # of the calls whose model has a price
    unpriced: tuple[str, ...]  # models with no price in the settings


def cost(days: Iterable[UsageDay], prices: Mapping[str, Price]) -> Cost:
    dollars = 0.0
    unpriced: set[str] = set()
    for model, rows in by_model(days).items():
        price = prices.get(model)
        if price is None:
            unpriced.add(model or "(unnamed)")
            continue
        t = totals(rows)
        dollars += (
            (t.prompt_tokens - t.cached_tokens) * price.input
            + t.cached_tokens * price.cached
            + t.completion_tokens * price.output
        ) / _PER_MILLION
    return Cost(dollars, tuple(sorted(unpriced)))


def describe(t: Totals) -> str:
    """``12 calls, 34,567 tokens, 61% of prompt tokens cached``."""
    if not t.calls:
        return "no model calls"
    text = (
        f"{t.calls:,} call{'s' if t.calls != 1 else ''}, {t.tokens:,} tokens, "
        f"{t.cached_share:.0%} of prompt tokens cached"
    )
    if t.estimated_calls:
        text += f" ({t.estimated_calls:,} counted by local estimate)"
    return text


def describe_cost(c: Cost) -> str:
    """``about $0.0123``, with the models it could not price."""
    money = f"about ${c.dollars:.4f}" if c.dollars < 1 else f"about ${c.dollars:,.2f}"
    if not c.unpriced:
        return money
    missing = f"no price for {', '.join(c.unpriced)} in [usage] prices"
    return f"{money} ({missing})" if c.dollars else missing


def summary_lines(
    days: Sequence[UsageDay], today: date, prices: Mapping[str, Price] | None = None
) -> list[str]:
    """Today's and this month's use (with cost if ``prices`` is given); ``days`` spans the
    month so far."""
    lines = []
    for label, span in (("today", on(days, today)), ("this month", days)):
        text = f"{label}: {describe(totals(span))}"
        if prices is not None and span:
            text += f"; {describe_cost(cost(span, prices))}"
        lines.append(text)
    return lines
