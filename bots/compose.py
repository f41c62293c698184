"""Building the core from settings and the injected seams (storage, model, clock).

The one place the runtime is wired: ``python -m bots``, the operator CLI, the benchmarks and the
tests all call these functions, so what is tested and measured is what runs.
"""

from __future__ import annotations

from agentcore.agent import AgentLoop
from agentcore.clock import Clock
from agentcore.commands import Commands
from agentcore.consolidator import Consolidator
from agentcore.llm.base import ClosableLLM, LLMClient
from agentcore.llm.tooling import ToolCallingLLM
from agentcore.llm.wrappers import ConcurrencyCappedLLM
from agentcore.runtime import AgentRuntime, AgentSlots
from agentcore.storage.protocols import Storage
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


def build_model(settings: Settings, llm: ClosableLLM) -> ToolCallingLLM:
    """The model as the agent loop talks to it: behind the configured concurrency cap, with
    tools sent the way the endpoint takes them and every answer read into content and calls."""
    capped = ConcurrencyCappedLLM(llm, settings.runtime.llm_concurrency)
    return ToolCallingLLM(capped, settings.llm.tools)


def build_runtime(
    settings: Settings, storage: Storage, llm: ClosableLLM, clock: Clock
) -> AgentRuntime:
    """The runtime adapters talk to, over the model client ``llm``."""
    return runtime_over(settings, storage, build_model(settings, llm), clock)


def runtime_over(
    settings: Settings,
    storage: Storage,
    model: ToolCallingLLM,
    clock: Clock,
    consolidation_model: LLMClient | None = None,
) -> AgentRuntime:
    """The runtime over a model ``build_model`` made (the composition root keeps a hold of it
    for the endpoint check); consolidation uses ``consolidation_model`` if given."""
    slots = AgentSlots(settings.runtime.max_cached_agents)
    consolidator = Consolidator(
        storage=storage,
        llm=consolidation_model or model,
        clock=clock,
        locks=slots,
        memory=settings.agent.memory,
        settings=settings.consolidation,
        model=settings.consolidation.model or settings.llm.model,
    )
    return AgentRuntime(
        storage=storage,
        llm=model,
        loop=AgentLoop(storage=storage, llm=model, clock=clock, settings=settings.agent),
        commands=build_commands(settings, storage, clock),
        clock=clock,
        settings=settings.runtime,
        slots=slots,
        consolidator=consolidator,
    )
