"""The model seam: a one-method ``LLMClient`` protocol and its implementations.

``agentcore.llm.openai_compat`` imports the ``openai`` SDK; nothing else here does, so the
composition root can load it off the startup critical path.
"""

from agentcore.llm.base import (
    LLMAuthError,
    LLMBadResponse,
    LLMClient,
    LLMConfigError,
    LLMError,
    LLMRateLimited,
    LLMRequest,
    LLMResponse,
    LLMTimeout,
    LLMToolsRejected,
    LLMUnavailable,
    ToolSpec,
    Usage,
)

__all__ = [
    "LLMAuthError",
    "LLMBadResponse",
    "LLMClient",
    "LLMConfigError",
    "LLMError",
    "LLMRateLimited",
    "LLMRequest",
    "LLMResponse",
    "LLMTimeout",
    "LLMToolsRejected",
    "LLMUnavailable",
    "ToolSpec",
    "Usage",
]
