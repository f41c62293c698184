"""Sleep-time consolidation's pure part: reading a model's answer strictly, and checking the
changes it proposes against the blocks (limits, read-only, exact old text)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agentcore.memory.consolidation import (
    BlockChange,
    BlockEdits,
    InvalidAnswer,
    Proposal,
    Replacement,
    apply,
    read_answer,
)
from agentcore.records import Block

NOW = datetime(2025, 3, 1, tzinfo=UTC)
PLACEHOLDER = "Nothing is known about this person yet."


def block(label: str, value: str, limit: int = 200, read_only: bool = False) -> Block:
    return Block(label, value, limit, "", read_only, 1, NOW)


BLOCKS = {
    "human": block("human", "Name: Brad\nLives in Porto"),
    "persona": block("persona", "I am kind."),
    "server": block("server", "Rules", read_only=True),
}


def test_json_answer() -> None:
    answer = (
        '{"blocks": {"human": {"add": ["Has a beagle called Miso"], '
        '"replace": [{"old": "Lives in Porto", "new": "Lives in Lisbon"}]}}, '
        '"notes": ["Adopted Miso in March 2025"]}'
    )
    assert read_answer(answer) == Proposal(
        {
            "human": BlockEdits(
                ("Has a beagle called Miso",), (Replacement("Lives in Porto", "Lives in Lisbon"),)
            )
        },
        ("Adopted Miso in March 2025",),
    )


def test_json_in_a_fence_after_reasoning() -> None:
    answer = '<think>Let me see.</think>\n```json\n{"notes": ["x"]}\n```'
    assert read_answer(answer) == Proposal({}, ("x",))


def test_line_answer() -> None:
    answer = (
        "ADD human: Has a beagle called Miso\n"
        "REPLACE human: Lives in Porto => Lives in Lisbon\n\n"
        "NOTE: Adopted Miso in March 2025\n"
    )
    assert read_answer(answer) == Proposal(
        {
            "human": BlockEdits(
                ("Has a beagle called Miso",), (Replacement("Lives in Porto", "Lives in Lisbon"),)
            )
        },
        ("Adopted Miso in March 2025",),
    )


def test_nothing() -> None:
    assert read_answer("NOTHING") == Proposal()
    assert read_answer('{"blocks": {}}') == Proposal()


@pytest.mark.parametrize(
    "answer",
    [
        "",
        "Sure! Brad has a dog called Miso.",  # prose
        "ADD human: Miso\nAlso he likes sardines.",  # one line out of the format
        '{"blocks": {"human": {"add": "Miso"}}}',  # a text where a list belongs
        '{"blocks": {"human": {"append": ["Miso"]}}}',  # an unknown key
        '{"blocks": {"human": {"replace": [{"old": "Porto"}]}}}',  # no "new"
        '{"human": {"add": ["Miso"]}}',  # blocks not under "blocks"
        '{"blocks": {"human": {"add": ["Miso"]}}',  # broken JSON
        '["ADD human: Miso"]',
        "[" * 5000,
    ],
)
def test_answers_out_of_format_are_refused(answer: str) -> None:
    with pytest.raises(InvalidAnswer):
        read_answer(answer)


def test_apply_edits_and_notes() -> None:
    proposal = read_answer(
        "ADD human: Has a beagle called Miso\n"
        "REPLACE human: Lives in Porto => Lives in Lisbon\n"
        "ADD persona: I call Brad by his name\n"
        "NOTE: Adopted Miso in March 2025"
    )
    changes = apply(proposal, BLOCKS, PLACEHOLDER)
    assert changes.blocks == (
        BlockChange("human", "Name: Brad\nLives in Lisbon\nHas a beagle called Miso"),
        BlockChange("persona", "I am kind.\nI call Brad by his name"),
    )
    assert changes.notes == ("Adopted Miso in March 2025",) and changes.refused == ()


def test_a_block_whose_edits_break_a_rule_is_left_alone() -> None:
    proposal = Proposal(
        {
            "human": BlockEdits(("x" * 300,)),  # over the limit of 200
            "persona": BlockEdits(replace=(Replacement("I am cruel.", "I am kind."),)),
            "server": BlockEdits(("New rule",)),
            "pets": BlockEdits(("Miso",)),
        }
    )
    changes = apply(proposal, BLOCKS, PLACEHOLDER)
    assert changes.empty
    assert len(changes.refused) == 4
    assert any("over its limit of 200" in r for r in changes.refused)
    assert any("read-only" in r for r in changes.refused)


def test_facts_already_known_are_not_repeated_and_the_placeholder_goes() -> None:
    blocks = {"human": block("human", PLACEHOLDER)}
    changes = apply(
        Proposal({"human": BlockEdits(("Name: Brad", "name: brad", "  "))}), blocks, PLACEHOLDER
    )
    assert changes.blocks == (BlockChange("human", "Name: Brad"),)
    unchanged = apply(Proposal({"human": BlockEdits(("Lives in Porto",))}), BLOCKS, PLACEHOLDER)
    assert unchanged.empty and unchanged.refused == ()


def test_notes_are_bounded() -> None:
    proposal = Proposal(notes=(*(f"note {i}" for i in range(15)), "n" * 2000, "note 1"))
    changes = apply(proposal, BLOCKS, PLACEHOLDER)
    assert changes.notes == tuple(f"note {i}" for i in range(10))
    assert len(changes.refused) == 2
