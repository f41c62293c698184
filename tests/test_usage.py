"""Usage accounting and budgets through the runtime, as people and operators meet them."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from agentcore.clock import ManualClock
from agentcore.llm.base import LLMRequest, LLMResponse, Usage
from agentcore.llm.fake import FunctionLLM, call, last_message, last_user_text, reply
from agentcore.memory.consolidation import INSTRUCTIONS
from agentcore.records import UsageDay
from agentcore.runtime import AgentRuntime
from agentcore.storage.sqlite import SQLiteStorage
from agentcore.types import AgentKey, Reply, ReplyKind, SystemEvent
from agentcore.usage.meter import EVERYONE_OVER, PERSON_OVER
from bots.compose import build_runtime
from tests.conftest import make_settings, message
from tests.process import bot_env, run_bot

ALICE, BOB, CAROL, OPERATOR = "telegram:1", "telegram:2", "telegram:3", "telegram:99"
ADMINS = frozenset({AgentKey.parse(OPERATOR)})
MONTH = date(2025, 1, 1)
TODAY = date(2025, 1, 6)  # the ManualClock starts on 2025-01-06 09:00 UTC
SESSION_GAP = timedelta(hours=4, minutes=1)  # just over the default session gap


def answering(prompt: int, completion: int, cached: int = 0) -> FunctionLLM:
    """A model that answers "ok: <message>" and reports this usage for every call."""

    def answer(request: LLMRequest) -> LLMResponse:
        usage = Usage(prompt, completion, cached)
        return LLMResponse(f"ok: {last_user_text(request)}", usage=usage)

    return FunctionLLM(answer)


def runtime_for(
    storage: SQLiteStorage, llm: FunctionLLM, clock: ManualClock, **usage: object
) -> AgentRuntime:
    settings = make_settings(runtime={"admins": ADMINS}, usage=usage)
    return build_runtime(settings, storage, llm, clock)


async def say(runtime: AgentRuntime, clock: ManualClock, text: str, user: str = ALICE) -> Reply:
    clock.advance(timedelta(minutes=1))
    return await runtime.handle(message(clock, text, user))


async def usage_of(storage: SQLiteStorage, user: str) -> list[UsageDay]:
    agent = await storage.load_agent(AgentKey.parse(user))
    assert agent is not None
    return await storage.usage(agent.id, MONTH)


async def test_every_call_is_recorded_with_the_providers_cached_tokens(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    runtime = runtime_for(storage, answering(1000, 50, cached=600), clock)
    await say(runtime, clock, "hi")
    await say(runtime, clock, "again")
    assert await usage_of(storage, ALICE) == [UsageDay(TODAY, "gpt-4o-mini", 2, 2000, 1200, 100)]


async def test_a_provider_without_usage_is_counted_by_estimate_and_marked(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    runtime = runtime_for(storage, FunctionLLM(lambda r: reply("Hello there, Alice!")), clock)
    await say(runtime, clock, "hi")
    [day] = await usage_of(storage, ALICE)
    assert day.estimated_calls == 1 and day.cached_tokens == 0
    assert day.completion_tokens == 5  # 19 characters, about four a token
    assert day.prompt_tokens > 100  # instructions, memory and the message, estimated locally


async def test_summaries_are_metered_for_the_person_they_serve(
    storage: SQLiteStorage, clock: ManualClock, db_path: Path
) -> None:
    def model(request: LLMRequest) -> LLMResponse:
        if "running summary" in (request.messages[0].content or ""):
            return reply("They talked at length.")
        return reply("ok " * 150)

    settings = make_settings(memory={"context_window": 3000}, runtime={"admins": ADMINS})
    runtime = build_runtime(settings, storage, FunctionLLM(model), clock)
    for i in range(12):
        await say(runtime, clock, f"message {i} " + "words " * 120)
    agent = await storage.load_agent(AgentKey.parse(ALICE))
    assert agent is not None and agent.summary == "They talked at length."
    with sqlite3.connect(db_path) as conn:
        purposes = set(conn.execute("SELECT purpose, agent_id FROM llm_calls").fetchall())
    assert purposes == {("turn", agent.id), ("summary", agent.id)}


async def test_over_budget_one_notice_messages_kept_answered_after_midnight(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    llm = answering(900, 200)
    runtime = runtime_for(storage, llm, clock, person_daily_tokens=1000)
    assert (await say(runtime, clock, "hi")).text == "ok: hi"
    notice = await say(runtime, clock, "are you there?")
    assert notice.kind is ReplyKind.NOTICE
    assert notice.text == PERSON_OVER.format(when="at 00:00 UTC (in 14 hours)")
    assert (await say(runtime, clock, "hello??")).text == ""  # one notice, not one per message
    assert len(llm.requests) == 1
    agent = await storage.load_agent(AgentKey.parse(ALICE))
    assert agent is not None
    kept = [m.content for m in await storage.all_messages(agent.id)]
    assert kept == ["hi", "ok: hi", "are you there?", "hello??"]
    clock.set(datetime(2025, 1, 7, 0, 1, tzinfo=UTC))
    assert (await say(runtime, clock, "morning")).text == "ok: morning"
    history = [m.content for m in llm.requests[-1].messages]
    assert "are you there?" in history and "hello??" in history


async def test_the_day_follows_the_configured_time_zone(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    from zoneinfo import ZoneInfo  # noqa: PLC0415

    settings = make_settings(
        memory={"timezone": ZoneInfo("Asia/Tokyo")},
        usage={"person_daily_tokens": 1000},
    )
    runtime = build_runtime(settings, storage, answering(900, 200), clock)
    await say(runtime, clock, "hi")  # 18:01 in Tokyo
    notice = await say(runtime, clock, "again")
    assert "at 00:00 JST (in 5 hours)" in notice.text
    clock.set(datetime(2025, 1, 6, 15, 1, tzinfo=UTC))  # 00:01 on the 7th in Tokyo
    assert (await say(runtime, clock, "new day")).text == "ok: new day"


async def test_a_turn_that_began_within_budget_finishes(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    steps = iter(
        [
            call("core_memory_append", label="human", content="Likes tea"),
            reply("Noted, you like tea."),
        ]
    )

    def model(request: LLMRequest) -> LLMResponse:
        step = next(steps)
        return LLMResponse(step.content, step.tool_calls, Usage(900, 200))

    runtime = runtime_for(storage, FunctionLLM(model), clock, person_daily_tokens=1000)
    assert (await say(runtime, clock, "I like tea")).text == "Noted, you like tea."
    [day] = await usage_of(storage, ALICE)
    assert day.calls == 2 and day.tokens == 2200  # over the limit, but never half an answer


async def test_operators_are_exempt(storage: SQLiteStorage, clock: ManualClock) -> None:
    runtime = runtime_for(
        storage, answering(900, 200), clock, person_daily_tokens=1000, total_daily_tokens=1500
    )
    for text in ("one", "two", "three"):
        assert (await say(runtime, clock, text, OPERATOR)).text == f"ok: {text}"
    assert "operator" in (await say(runtime, clock, "/usage", OPERATOR)).text


async def test_everyones_cap_stops_everyone_but_operators(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    runtime = runtime_for(storage, answering(900, 200), clock, total_daily_tokens=2000)
    assert (await say(runtime, clock, "hi", ALICE)).text == "ok: hi"
    assert (await say(runtime, clock, "hi", BOB)).text == "ok: hi"  # 1,100 spent before it
    notice = await say(runtime, clock, "hi", CAROL)
    assert notice.text == EVERYONE_OVER.format(when="at 00:00 UTC (in 14 hours)")
    assert (await say(runtime, clock, "hi", OPERATOR)).text == "ok: hi"


async def test_usage_command_shows_today_this_month_and_the_limit(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    runtime = runtime_for(storage, answering(1000, 50, 750), clock, person_daily_tokens=50_000)
    assert "haven't used" in (await say(runtime, clock, "/usage")).text
    clock.set(datetime(2025, 1, 2, 12, tzinfo=UTC))
    await say(runtime, clock, "earlier this month")
    clock.set(datetime(2025, 1, 6, 9, tzinfo=UTC))
    await say(runtime, clock, "hi")
    shown = await say(runtime, clock, "/usage")
    assert shown.private
    assert "today: 1 call, 1,050 tokens, 75% of prompt tokens cached" in shown.text
    assert "this month: 2 calls, 2,100 tokens, 75% of prompt tokens cached" in shown.text
    assert "Daily limit: 1,050 of 50,000 tokens used; it resets at 00:00 UTC" in shown.text
    assert "$" not in shown.text  # costs are the operator's business


async def test_admin_usage_and_stats_show_cache_share_and_estimated_cost(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    runtime = runtime_for(storage, answering(1_000_000, 100_000, 600_000), clock)
    await say(runtime, clock, "hi", ALICE)
    await say(runtime, clock, "hi", BOB)
    await say(runtime, clock, "hi", BOB)
    # gpt-4o-mini: 400k input at $0.15, 600k cached at $0.075, 100k output at $0.60 per million
    per_call = "about $0.1650"
    one = await say(runtime, clock, f"/admin usage {ALICE}", OPERATOR)
    assert f"today: 1 call, 1,100,000 tokens, 60% of prompt tokens cached; {per_call}" in one.text
    everyone = await say(runtime, clock, "/admin usage", OPERATOR)
    assert "today: 3 calls, 3,300,000 tokens, 60% of prompt tokens cached; about $0.4950" in (
        everyone.text
    )
    ranking = everyone.text.split("most tokens this month:\n")[1].splitlines()
    assert ranking[0].startswith(f"  {BOB} “2”: 2 calls") and ranking[1].startswith(f"  {ALICE}")
    stats = await say(runtime, clock, "/admin stats", OPERATOR)
    assert "model use today: 3 calls, 3,300,000 tokens, 60% of prompt tokens cached" in stats.text
    audit = await say(runtime, clock, "/admin audit", OPERATOR)
    assert f"usage {ALICE}" in audit.text and "usage *" in audit.text


async def test_a_model_without_a_price_is_counted_but_not_priced(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    runtime = runtime_for(storage, answering(1000, 10), clock, prices={})
    await say(runtime, clock, "hi")
    shown = await say(runtime, clock, f"/admin usage {ALICE}", OPERATOR)
    assert "today: 1 call, 1,010 tokens" in shown.text
    assert "no price for gpt-4o-mini in [usage] prices" in shown.text


async def test_forget_erases_a_persons_usage(storage: SQLiteStorage, clock: ManualClock) -> None:
    runtime = runtime_for(storage, answering(1000, 10), clock)
    await say(runtime, clock, "hi")
    agent = await storage.load_agent(AgentKey.parse(ALICE))
    assert agent is not None
    await say(runtime, clock, "/forget")
    await say(runtime, clock, "/forget confirm")
    assert await storage.usage(agent.id, MONTH) == []
    assert await storage.usage_by_person(MONTH, 10) == []
    everyone = await say(runtime, clock, "/admin usage", OPERATOR)
    assert "today: 1 call, 1,010 tokens" in everyone.text  # the total names no one


@pytest.mark.parametrize("value", ["-1", "lots", "2.5", ""])
def test_a_budget_must_be_a_whole_number_of_at_least_zero(value: str) -> None:
    from config import ConfigError, load_settings  # noqa: PLC0415

    env = {"OPENAI_API_KEY": "sk-x", "AGENTCORE_USAGE__DAILY_TOKENS_PER_PERSON": value}
    with pytest.raises(ConfigError, match=r"^setting usage\.daily_tokens_per_person from "):
        load_settings(env=env, dotenv_file=None)


async def test_a_bad_budget_stops_the_bot_at_start_with_one_line(tmp_path: Path) -> None:
    env = bot_env(tmp_path, "http://127.0.0.1:9/v1", AGENTCORE_USAGE__DAILY_TOKENS_TOTAL="-5")
    code, out, err = await run_bot("hi\n", env, tmp_path)
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        "error: setting usage.daily_tokens_total from environment variable "
        "AGENTCORE_USAGE__DAILY_TOKENS_TOTAL: expected a whole number of at least 0, got '-5'"
    ]


async def test_export_includes_the_persons_usage(
    storage: SQLiteStorage, clock: ManualClock
) -> None:
    import json  # noqa: PLC0415

    runtime = runtime_for(storage, answering(1000, 10, 400), clock)
    await say(runtime, clock, "hi")
    [attachment] = (await say(runtime, clock, "/export")).attachments
    exported = json.loads(attachment.data)["agentcore"]["usage"]
    assert exported == [
        {
            "day": "2025-01-06",
            "model": "gpt-4o-mini",
            "calls": 1,
            "prompt_tokens": 1000,
            "cached_tokens": 400,
            "completion_tokens": 10,
            "estimated_calls": 0,
        }
    ]


async def test_calls_recorded_before_the_upgrade_are_in_the_daily_totals(tmp_path: Path) -> None:
    from agentcore.storage.sqlite.migrate import load_migrations  # noqa: PLC0415

    path = tmp_path / "old.db"
    migrations = load_migrations()
    usage = next(m.version for m in migrations if m.name.endswith("_usage.sql"))
    with sqlite3.connect(path) as conn:
        for migration in migrations[: usage - 1]:
            for statement in migration.statements:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {usage - 1}")
        conn.execute("INSERT INTO agents (platform, user_id, created_at) VALUES ('t', '1', 0)")
        for agent_id, tokens in ((1, 100), (1, 50), (None, 7)):
            conn.execute(
                "INSERT INTO llm_calls (agent_id, created_at, latency_ms, ok, prompt_tokens,"
                " completion_tokens) VALUES (?, ?, 1.0, 1, ?, 1)",
                (agent_id, 1_736_150_400_000, tokens),  # 2025-01-06 08:00 UTC
            )
    storage = await SQLiteStorage.open(path)
    try:
        assert await storage.usage(1, MONTH) == [UsageDay(TODAY, "", 2, 150, 0, 2)]
        [everyone] = await storage.usage(None, MONTH)
        assert (everyone.calls, everyone.tokens) == (3, 160)
    finally:
        await storage.close()


async def test_photo_descriptions_are_metered_for_the_person(
    storage: SQLiteStorage, clock: ManualClock, db_path: Path
) -> None:
    import io  # noqa: PLC0415

    from PIL import Image  # noqa: PLC0415

    from agentcore.media import intake  # noqa: PLC0415
    from agentcore.types import InboundFile, InboundMessage  # noqa: PLC0415

    def model(request: LLMRequest) -> LLMResponse:
        if request.messages[0].content == intake.DESCRIBE:
            return LLMResponse("A red square.", usage=Usage(800, 5, 0))
        return LLMResponse("Nice photo!", usage=Usage(1000, 5, 0))

    picture = io.BytesIO()
    Image.new("RGB", (40, 40), (200, 0, 0)).save(picture, "PNG")
    photo = InboundFile("a.png", "image/png", picture.getvalue())
    runtime = runtime_for(storage, FunctionLLM(model), clock)
    for _ in range(2):  # the first comes before the person has an agent
        clock.advance(timedelta(minutes=1))
        message = InboundMessage(AgentKey.parse(ALICE), "look", clock.now(), files=(photo,))
        assert (await runtime.handle(message)).text == "Nice photo!"
    agent = await storage.load_agent(AgentKey.parse(ALICE))
    assert agent is not None
    with sqlite3.connect(db_path) as conn:
        calls = conn.execute("SELECT purpose, agent_id FROM llm_calls ORDER BY id").fetchall()
    assert calls == [
        ("image", None),  # counted toward everyone's total only
        ("turn", agent.id),
        ("image", agent.id),
        ("turn", agent.id),
    ]
    [day] = await usage_of(storage, ALICE)
    assert day.calls == 3 and day.prompt_tokens == 2800


def budgeted(request: LLMRequest) -> LLMResponse:
    """Consolidates a session into one note, else answers "ok: " and what it answers (a
    message or a reminder coming due); 1,100 tokens a call."""
    if request.messages[0].content == INSTRUCTIONS:
        text = json.dumps({"notes": ["Alice likes tea"]})
    else:
        text = f"ok: {last_message(request).content}"
    return LLMResponse(text, usage=Usage(900, 200))


def calls_by_purpose(db_path: Path) -> list[tuple[str, int | None]]:
    with sqlite3.connect(db_path) as conn:
        return conn.execute("SELECT purpose, agent_id FROM llm_calls ORDER BY id").fetchall()


async def test_consolidation_is_metered_and_waits_while_the_person_is_over_budget(
    storage: SQLiteStorage, clock: ManualClock, db_path: Path
) -> None:
    settings = make_settings(usage={"person_daily_tokens": 2000}, consolidation={"enabled": True})
    llm = FunctionLLM(budgeted)
    runtime = build_runtime(settings, storage, llm, clock)
    assert (await say(runtime, clock, "I like tea")).text == "ok: I like tea"
    clock.advance(SESSION_GAP)
    assert await runtime.consolidate_ended() == 1  # 2,200 tokens today: over the budget now
    assert (await say(runtime, clock, "anything new?")).kind is ReplyKind.NOTICE
    clock.advance(SESSION_GAP)
    assert await runtime.consolidate_ended() == 0  # that session waits for tomorrow
    assert len(llm.requests) == 2
    clock.set(datetime(2025, 1, 7, 0, 5, tzinfo=UTC))
    assert await runtime.consolidate_ended() == 1
    agent = await storage.load_agent(AgentKey.parse(ALICE))
    assert agent is not None
    assert calls_by_purpose(db_path) == [
        ("turn", agent.id),
        ("consolidation", agent.id),
        ("consolidation", agent.id),
    ]
    days = await usage_of(storage, ALICE)
    assert [(d.day, d.calls, d.tokens) for d in days] == [
        (TODAY, 2, 2200),
        (TODAY + timedelta(days=1), 1, 1100),
    ]


async def test_reminder_turns_are_metered_and_over_budget_a_reminder_still_goes_out(
    storage: SQLiteStorage, clock: ManualClock, db_path: Path
) -> None:
    llm = FunctionLLM(budgeted)
    runtime = runtime_for(storage, llm, clock, person_daily_tokens=2000)
    await say(runtime, clock, "hi")
    alice = AgentKey.parse(ALICE)
    due = SystemEvent(alice, "scheduled: stretch", clock.now(), fallback="Reminder: stretch")
    assert await runtime.run_event(due) == "ok: scheduled: stretch"  # 2,200 tokens: over now
    water = replace(due, text="scheduled: drink water", fallback="Reminder: drink water")
    assert await runtime.run_event(water) == "Reminder: drink water"  # no model call
    checkin = SystemEvent(alice, "check-in: it has been a while", clock.now())
    assert await runtime.run_event(checkin) is None  # a check-in is not worth going over for
    assert len(llm.requests) == 2
    agent = await storage.load_agent(alice)
    assert agent is not None
    assert calls_by_purpose(db_path) == [("turn", agent.id), ("event", agent.id)]
    stored = [m.content for m in await storage.all_messages(agent.id)]
    assert stored[-3:] == ["scheduled: drink water", "Reminder: drink water", checkin.text]
