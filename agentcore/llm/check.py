"""The endpoint check: once, in the background after start, the operator learns whether the model
endpoint is reachable, accepts the key, serves the model and takes tool definitions, in one log
line that names the fix. People whose turns fail for such a reason are told the operator knows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Protocol

from agentcore.llm.base import ClosableLLM
from agentcore.llm.tooling import ToolCallingLLM

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EndpointReport:
    endpoint: str
    model: str
    problem: str | None = None  # one line naming the fix
    tools_rejected: str | None = None  # the server's words, if it refused tool definitions

    def with_problem(self, problem: str) -> EndpointReport:
        return replace(self, problem=problem)

    def with_tools_rejected(self, detail: str) -> EndpointReport:
        return replace(self, tools_rejected=detail)


class CheckableLLM(ClosableLLM, Protocol):
    async def check_endpoint(self) -> EndpointReport: ...


async def check_endpoint(client: CheckableLLM, tooling: ToolCallingLLM) -> EndpointReport:
    """Run the check and tell the operator; an endpoint that refuses tools moves ``tooling`` to
    prompted tools (in auto mode) before any person's turn has to find out."""
    report = await client.check_endpoint()
    if report.problem is not None:
        log.error("model endpoint problem: %s", report.problem)
    elif report.tools_rejected is not None:
        tooling.tools_refused(report.tools_rejected)
    else:
        log.info(
            "model endpoint ok: %s serves %r, tools %s",
            report.endpoint,
            report.model,
            "prompted" if tooling.prompted else "native",
        )
    return report
