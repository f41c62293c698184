"""Building the core from settings and the injected seams (storage, model, clock).

The one place the runtime is wired: ``python -m bots``, the operator CLI, the benchmarks and the
tests all call these functions, so what is tested and measured is what runs.
"""

from __future__ import annotations

from agentcore.agent import AgentLoop, Reminders
from agentcore.clock import Clock, Timer
from agentcore.commands import Commands
from agentcore.llm.base import ClosableLLM
from agentcore.llm.wrappers import ConcurrencyCappedLLM
from agentcore.runtime import AgentRuntime
from agentcore.schedule.doorbell import Doorbell
from agentcore.schedule.scheduler import Scheduler
from agentcore.schedule.store import ReminderStorage
from config import Settings


def build_commands(settings: Settings, storage: ReminderStorage, clock: Clock) -> Commands:
    """The chat and operator commands (the operator CLI needs only these)."""
    return Commands(
        storage=storage,
        clock=clock,
        settings=settings.agent,
        admins=settings.runtime.admins,
        model=settings.llm.model,
        reminders=storage,
    )


def build_runtime(
    settings: Settings,
    storage: ReminderStorage,
    llm: ClosableLLM,
    clock: Clock,
    doorbell: Doorbell | None = None,
) -> AgentRuntime:
    """The runtime adapters talk to, with the model behind the configured concurrency cap.
    ``doorbell`` is the scheduler's (see ``build_scheduler``): reminders the agent schedules
    ring it."""
    capped = ConcurrencyCappedLLM(llm, settings.runtime.llm_concurrency)
    reminders = Reminders(storage, doorbell or Doorbell())
    return AgentRuntime(
        storage=storage,
        llm=capped,
        loop=AgentLoop(
            storage=storage, llm=capped, clock=clock, settings=settings.agent, reminders=reminders
        ),
        commands=build_commands(settings, storage, clock),
        clock=clock,
        settings=settings.runtime,
    )


def build_scheduler(
    settings: Settings,
    storage: ReminderStorage,
    runtime: AgentRuntime,
    clock: Timer,
    doorbell: Doorbell,
) -> Scheduler:
    """What sends reminders when they are due, through the adapters attached to it."""
    return Scheduler(
        store=storage,
        runner=runtime,
        clock=clock,
        settings=settings.agent.reminders,
        default_zone=settings.agent.memory.timezone,
        doorbell=doorbell,
    )
