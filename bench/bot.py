"""The bot as ``python -m bots`` builds it, with a scripted model in place of the network one.

Kept apart from ``bench.common`` so that ``python -m bench`` and ``bench.report``, which only
read and print results, do not import the bot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from agentcore.clock import SystemClock
from agentcore.llm.fake import FunctionLLM, Responder
from agentcore.runtime import AgentRuntime
from agentcore.storage.protocols import Storage
from bots.compose import build_runtime
from config import Settings, load_settings


def bench_settings(env: Mapping[str, str] | None = None, **runtime: Any) -> Settings:
    """The shipped defaults plus ``env`` (no ``.env`` file is read), with the given runtime
    settings replaced. The model is scripted, so its API key is a placeholder. Consolidation
    (a model call per ended session, also at shutdown) is off unless ``env`` turns it on: only
    ``bench.consolidation`` measures it."""
    defaults = {"OPENAI_API_KEY": "unused", "AGENTCORE_CONSOLIDATION__ENABLED": "false"}
    settings = load_settings(env=defaults | dict(env or {}), dotenv_file=None)
    return replace(settings, runtime=replace(settings.runtime, **runtime))


def scripted_runtime(
    storage: Storage, answer: Responder, settings: Settings | None = None
) -> AgentRuntime:
    """The runtime whose model answers with ``answer(request)``, recording nothing (benchmarks
    that send 100,000 messages measure the bot's memory, not a list of requests)."""
    llm = FunctionLLM(answer, record=False)
    return build_runtime(settings or bench_settings(), storage, llm, SystemClock())
