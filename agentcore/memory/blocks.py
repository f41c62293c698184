"""Core memory blocks: the default set for a new agent and the agent's edit rules."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from agentcore.records import Block, BlockSpec
from agentcore.settings import MemorySettings

PERSONA_DESCRIPTION = (
    "Who you are: your personality and how you speak. Edit it if the person asks you to change."
)
HUMAN_DESCRIPTION = (
    "What you know about the person you are talking to: name, life, preferences, plans. "
    "Keep it up to date."
)


# Labels become tag names in the prompt (<human>...</human>), so they are one plain word.
_LABEL = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,49}")
LABEL_RULE = "one word of letters, digits, _ or - (at most 50 characters, starting with a letter)"


def valid_label(label: str) -> bool:
    return _LABEL.fullmatch(label) is not None


class BlockEditError(Exception):
    """An agent edit was refused; the message is a hint for the model."""


EditFunction = Callable[[Block], str]  # computes a block's new value, or raises BlockEditError


def default_blocks(settings: MemorySettings) -> list[BlockSpec]:
    return [
        BlockSpec("persona", settings.persona, settings.persona_limit, PERSONA_DESCRIPTION),
        BlockSpec("human", settings.human, settings.human_limit, HUMAN_DESCRIPTION),
    ]


def initial_blocks(specs: list[BlockSpec], now: datetime) -> list[Block]:
    """The blocks a freshly created agent has, without reading them back."""
    return [s.block(now) for s in specs]


def find_block(blocks: dict[str, Block], label: str) -> Block:
    block = blocks.get(label)
    if block is None:
        known = ", ".join(sorted(blocks)) or "none"
        raise BlockEditError(f"there is no memory block labelled {label!r}; blocks: {known}")
    if block.read_only:
        raise BlockEditError(f"the {label!r} block is read-only")
    return block


def check_limit(block: Block, new_value: str) -> str:
    if len(new_value) > block.limit:
        raise BlockEditError(
            f"that edit would make {block.label!r} {len(new_value)} characters, over its limit of "
            f"{block.limit}. Condense the block first with memory_rethink (rewrite it shorter, "
            "keeping what matters), or file details with archival_memory_insert."
        )
    return new_value


def appended(block: Block, content: str) -> str:
    if not content.strip():
        raise BlockEditError("content is empty; nothing to append")
    separator = "\n" if block.value else ""
    return check_limit(block, block.value + separator + content)


def replaced(block: Block, old_content: str, new_content: str) -> str:
    if not old_content:
        raise BlockEditError("old_content is empty; quote the exact text to replace")
    if old_content not in block.value:
        raise BlockEditError(
            f"old_content was not found in {block.label!r}; copy it exactly from the block"
        )
    return check_limit(block, block.value.replace(old_content, new_content))


def rethought(block: Block, new_memory: str) -> str:
    return check_limit(block, new_memory)
