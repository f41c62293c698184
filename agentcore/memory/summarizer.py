"""Folding the oldest in-context messages into a recursive running summary.

The cut is always placed just before a user message, so a tool call and its result are never
separated, and the current turn's own message always stays in the window. Folded rows are not
deleted: they stay in recall memory, searchable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from zoneinfo import ZoneInfo

from agentcore.llm.base import LLMClient, LLMRequest
from agentcore.messages import PromptMessage, Role
from agentcore.records import StoredMessage

SUMMARY_INSTRUCTIONS = (
    "You maintain the running summary of a long conversation between an assistant and one "
    "person. Write a new summary that keeps everything still useful from the previous summary "
    "and adds the new messages: facts about the person, decisions, open questions, promises, "
    "and roughly when things were said. Write plain prose in the third person, at most about "
    "{words} words. Answer with the summary only."
)
_MAX_TOOL_TEXT = 300
_MAX_MESSAGE_TEXT = 4000  # a pasted essay should not crowd out the rest of the summary input


def choose_cut(
    rows: Sequence[StoredMessage], keep_tokens: int, tokens_of: Callable[[StoredMessage], int]
) -> int:
    """Index of the first row to keep; 0 means nothing can be folded.

    Keeps as many recent rows as fit in ``keep_tokens``, starting at a user message. If even the
    newest user turn does not fit, keep just that turn.
    """
    user_starts = [i for i, r in enumerate(rows) if r.role is Role.USER]
    if not user_starts:
        return 0
    suffix_tokens = [0] * (len(rows) + 1)
    for i in range(len(rows) - 1, -1, -1):
        suffix_tokens[i] = suffix_tokens[i + 1] + tokens_of(rows[i])
    for start in user_starts:
        if suffix_tokens[start] <= keep_tokens:
            return start
    return user_starts[-1]


def transcript(rows: Sequence[StoredMessage], tz: ZoneInfo) -> str:
    lines = []
    for row in rows:
        stamp = row.created_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
        if row.role is Role.TOOL:
            text = (row.content or "")[:_MAX_TOOL_TEXT]
            lines.append(f"[{stamp}] (tool result) {text}")
            continue
        if row.content:
            lines.append(f"[{stamp}] {row.role.value}: {row.content[:_MAX_MESSAGE_TEXT]}")
        for call in row.tool_calls:
            lines.append(
                f"[{stamp}] (assistant used {call.name} {call.arguments[:_MAX_TOOL_TEXT]})"
            )
    return "\n".join(lines)


async def summarize(
    llm: LLMClient,
    previous_summary: str,
    rows: Sequence[StoredMessage],
    tz: ZoneInfo,
    max_words: int,
) -> str:
    """Ask the model for a new summary that absorbs ``previous_summary`` and ``rows``."""
    body = (
        f"Previous summary:\n{previous_summary or '(none yet)'}\n\n"
        f"New messages to fold in:\n{transcript(rows, tz)}"
    )
    request = LLMRequest(
        messages=(
            PromptMessage(Role.SYSTEM, SUMMARY_INSTRUCTIONS.format(words=max_words)),
            PromptMessage(Role.USER, body),
        )
    )
    response = await llm.complete(request)
    return (response.content or "").strip() or previous_summary
