"""Sleep-time consolidation, the pure part: what the model is asked after a session ends, how its
answer is read (strictly), and how the changes it proposes are checked against the blocks.

The model sees the person's core memory blocks and the session's messages and answers with the
changes to make, as JSON or, for models that cannot keep to JSON, as one change per line:

    {"blocks": {"human": {"add": ["Has a beagle called Miso"],
                          "replace": [{"old": "Lives in Porto", "new": "Lives in Lisbon"}]}},
     "notes": ["2025-03-01: Brad adopted Miso, a beagle, from a shelter"]}

    ADD human: Has a beagle called Miso
    REPLACE human: Lives in Porto => Lives in Lisbon
    NOTE: 2025-03-01: Brad adopted Miso, a beagle, from a shelter

(or ``NOTHING``). Anything else is not an answer: nothing changes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from agentcore.llm.base import LLMRequest
from agentcore.llm.textcalls import strip_reasoning
from agentcore.memory.prefix import current_blocks
from agentcore.memory.prompt import render_blocks
from agentcore.memory.summarizer import transcript
from agentcore.messages import PromptMessage, Role
from agentcore.records import Block, StoredMessage
from agentcore.types import clean_text

MAX_NOTES = 10  # archival notes one session may add
MAX_NOTE_CHARS = 1000
INSTRUCTIONS = """You maintain the long-term memory of an assistant that talks with one person \
over weeks. A conversation session has just ended. Decide what the assistant should remember \
from it: in its core memory blocks (always in its view; keep them short) and in archival notes \
(searched later when relevant).

Keep only what will matter in later sessions: names, relationships, places, work, health, \
preferences, plans and dates, and what the assistant promised. Skip small talk, and anything \
a block already says. Write each fact short and in the third person. To correct a block, \
replace its outdated text, quoting that text exactly.

Answer with JSON only, in this shape (leave out what you do not need):
{"blocks": {"human": {"add": ["fact"], "replace": [{"old": "exact text", "new": "new text"}]}}, \
"notes": ["note"]}
If you cannot write JSON, write one change per line instead, and nothing else:
ADD <block label>: <fact>
REPLACE <block label>: <exact old text> => <new text>
NOTE: <note>
If nothing is worth remembering, answer with the single word NOTHING."""

_FENCE = re.compile(r"\A```(?:json)?\s*\n(.*?)\n?```\Z", re.DOTALL)
_ADD = re.compile(r"\AADD ([\w-]+): (.+)\Z")
_REPLACE = re.compile(r"\AREPLACE ([\w-]+): (.+?) => (.*)\Z")
_NOTE = re.compile(r"\ANOTE: (.+)\Z")


class InvalidAnswer(ValueError):
    """The model's answer is neither the JSON nor the line format; nothing is changed."""


@dataclass(frozen=True, slots=True)
class Replacement:
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class BlockEdits:
    add: tuple[str, ...] = ()
    replace: tuple[Replacement, ...] = ()


@dataclass(frozen=True, slots=True)
class Proposal:
    blocks: Mapping[str, BlockEdits] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BlockChange:
    label: str
    value: str


@dataclass(frozen=True, slots=True)
class Changes:
    """What a proposal does to the current blocks, and what of it was refused and why."""

    blocks: tuple[BlockChange, ...] = ()
    notes: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.blocks and not self.notes


# --------------------------------------------------------------------- the request


def consolidation_request(
    blocks: Sequence[Block], session: Sequence[StoredMessage], tz: ZoneInfo
) -> LLMRequest:
    """One call, no tools: works with any model."""
    editable = current_blocks([b for b in blocks if not b.read_only], [])
    body = (
        f"The assistant's core memory blocks now:\n{render_blocks(editable)}\n\n"
        f"The session that just ended:\n{transcript(session, tz)}"
    )
    return LLMRequest(
        messages=(PromptMessage(Role.SYSTEM, INSTRUCTIONS), PromptMessage(Role.USER, body))
    )


# --------------------------------------------------------------------- reading the answer


def read_answer(text: str) -> Proposal:
    """The proposal in a model's answer; ``InvalidAnswer`` if it is in neither format."""
    answer = strip_reasoning(text).strip()
    fenced = _FENCE.match(answer)
    if fenced:
        answer = fenced.group(1).strip()
    if answer.startswith("{"):
        return _from_json(answer)
    return _from_lines(answer)


def _from_json(text: str) -> Proposal:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InvalidAnswer(f"not valid JSON: {exc}") from None
    _only_keys(data, {"blocks", "notes"}, "the answer")
    blocks = data.get("blocks", {})
    if not isinstance(blocks, dict):
        raise InvalidAnswer('"blocks" must be an object')
    return Proposal(
        {str(label): _block_edits(label, edits) for label, edits in blocks.items()},
        _strings(data.get("notes", []), '"notes"'),
    )


def _block_edits(label: str, edits: Any) -> BlockEdits:
    _only_keys(edits, {"add", "replace"}, f"block {label!r}")
    replacements = edits.get("replace", [])
    if not isinstance(replacements, list):
        raise InvalidAnswer(f'"replace" of {label!r} must be a list')
    replace = []
    for item in replacements:
        _only_keys(item, {"old", "new"}, f"a replacement in {label!r}")
        old, new = item.get("old"), item.get("new")
        if not isinstance(old, str) or not isinstance(new, str):
            raise InvalidAnswer(f'a replacement in {label!r} needs "old" and "new" texts')
        replace.append(Replacement(old, new))
    return BlockEdits(_strings(edits.get("add", []), f'"add" of {label!r}'), tuple(replace))


def _only_keys(value: Any, allowed: set[str], what: str) -> None:
    if not isinstance(value, dict):
        raise InvalidAnswer(f"{what} must be a JSON object")
    unknown = set(value) - allowed
    if unknown:
        raise InvalidAnswer(f"{what} has unexpected keys {sorted(unknown)}")


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidAnswer(f"{what} must be a list of texts")
    return tuple(value)


def _from_lines(text: str) -> Proposal:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines == ["NOTHING"]:
        return Proposal()
    if not lines:
        raise InvalidAnswer("the answer is empty")
    adds: dict[str, list[str]] = {}
    replaces: dict[str, list[Replacement]] = {}
    notes: list[str] = []
    for number, line in enumerate(lines, 1):
        if added := _ADD.match(line):
            adds.setdefault(added[1], []).append(added[2])
        elif replaced := _REPLACE.match(line):
            replaces.setdefault(replaced[1], []).append(Replacement(replaced[2], replaced[3]))
        elif noted := _NOTE.match(line):
            notes.append(noted[1])
        else:
            # Which line, not what it says: the log is no place for what the person told.
            raise InvalidAnswer(f"line {number} of {len(lines)} is not in the format")
    labels = dict.fromkeys([*adds, *replaces])
    blocks = {
        label: BlockEdits(tuple(adds.get(label, ())), tuple(replaces.get(label, ())))
        for label in labels
    }
    return Proposal(blocks, tuple(notes))


# --------------------------------------------------------------------- checking the changes


def apply(proposal: Proposal, blocks: Mapping[str, Block], placeholder: str) -> Changes:
    """The new values of the blocks ``proposal`` changes, checked against their current values
    and limits. A block whose edits would break a rule (a read-only or unknown block, an old text
    not found, more than its limit) is left as it is; ``placeholder`` (the text a new person's
    block starts with) is dropped once a fact is added."""
    changed: list[BlockChange] = []
    refused: list[str] = []
    for label, edits in proposal.blocks.items():
        block = blocks.get(label)
        try:
            value = _edited(block, label, edits, placeholder)
        except InvalidAnswer as exc:
            refused.append(str(exc))
            continue
        if block is not None and value != block.value:
            changed.append(BlockChange(label, value))
    notes, note_problems = _notes(proposal.notes)
    return Changes(tuple(changed), notes, tuple(refused + note_problems))


def _edited(block: Block | None, label: str, edits: BlockEdits, placeholder: str) -> str:
    if block is None:
        raise InvalidAnswer(f"no block labelled {label!r}")
    if block.read_only:
        raise InvalidAnswer(f"block {label!r} is read-only")
    value = block.value
    for item in edits.replace:
        if not item.old or item.old not in value:
            raise InvalidAnswer(f"{label!r}: the text to replace is not in the block")
        value = value.replace(item.old, clean_text(item.new).strip(), 1)
    for proposed in edits.add:
        fact = " ".join(clean_text(proposed).split())
        if not fact or fact.lower() in value.lower():
            continue  # empty, or said already
        if value.strip() == placeholder.strip():
            value = ""
        value = f"{value}\n{fact}" if value else fact
    if len(value) > block.limit:
        raise InvalidAnswer(
            f"{label!r}: the edits would make it {len(value)} characters, over its limit of "
            f"{block.limit}"
        )
    return value


def _notes(proposed: Sequence[str]) -> tuple[tuple[str, ...], list[str]]:
    notes: list[str] = []
    problems: list[str] = []
    for note in proposed:
        text = " ".join(clean_text(note).split())
        if not text or text in notes:
            continue
        if len(text) > MAX_NOTE_CHARS:
            problems.append(f"a note of {len(text)} characters (over {MAX_NOTE_CHARS})")
            continue
        notes.append(text)
    if len(notes) > MAX_NOTES:
        problems.append(f"{len(notes) - MAX_NOTES} notes over the {MAX_NOTES} a session may add")
    return tuple(notes[:MAX_NOTES]), problems
