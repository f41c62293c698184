"""Building the core from settings and the injected seams (storage, model, clock).

The one place the runtime is wired: ``python -m bots``, the operator CLI, the benchmarks and the
tests all call these functions, so what is tested and measured is what runs.
"""

from __future__ import annotations

from agentcore.agent import AgentLoop
from agentcore.clock import Clock
from agentcore.commands import Commands
from agentcore.llm.base import ClosableLLM
from agentcore.llm.wrappers import ConcurrencyCappedLLM
from agentcore.runtime import AgentRuntime
from agentcore.storage.base import Storage
from config import Settings


def build_commands(settings: Settings, storage: Storage, clock: Clock) -> Commands:
    """The chat and operator commands (the operator CLI needs only these)."""
    return Commands(
        storage=storage,
        clock=clock,
        settings=settings.agent,
        admins=settings.runtime.admins,
        model=settings.llm.model,
    )


def build_runtime(
    settings: Settings, storage: Storage, llm: ClosableLLM, clock: Clock
) -> AgentRuntime:
    """The runtime adapters talk to, with the model behind the configured concurrency cap."""
    capped = ConcurrencyCappedLLM(llm, settings.runtime.llm_concurrency)
    return AgentRuntime(
        storage=storage,
        llm=capped,
        loop=AgentLoop(storage=storage, llm=capped, clock=clock, settings=settings.agent),
        commands=build_commands(settings, storage, clock),
        clock=clock,
        settings=settings.runtime,
    )
