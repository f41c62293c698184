"""Splitting long replies for platforms with a message size limit (Telegram 4096, Discord 2000).

Parts break at the best boundary available (paragraph, then line, then sentence, then word) and
never inside a code block: a fence open at a break is closed at the end of that part and
reopened, with its language tag, at the start of the next. Only whitespace at the breaks is
dropped; every other character arrives, in order.
"""

from __future__ import annotations

import re

_FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_SENTENCE_END_RE = re.compile(r"[.!?…。！？][)\"'”’]*\s")
_MAX_OPENER = 40  # a longer fence info string is not worth repeating on every part


def split_message(text: str, limit: int) -> list[str]:
    """Split ``text`` into parts of at most ``limit`` characters (see the module docstring)."""
    if limit < 64:
        raise ValueError("limit must be at least 64 characters")
    rest = _strip_start(text.rstrip(), at_line_start=True)
    # Room to close a fence ("\n" + marker). Absurdly long fences are not repeated in full.
    reserve = min(1 + _longest_fence(rest), limit // 4)
    parts: list[str] = []
    carry = ""  # the fence opener that continues into the next part
    while rest:
        candidate = carry + rest
        if len(candidate) <= limit:
            parts.append(candidate)
            break
        cut = _keep_fence_lines_whole(
            candidate, _best_cut(candidate[: limit - reserve], floor=len(carry) + 1), len(carry)
        )
        cut = _no_false_fence(candidate, cut, len(carry) + 1)
        chunk = candidate[:cut].rstrip()
        opener = _open_fence(chunk)
        carry = ""
        if opener is not None and len(_marker(opener)) < reserve:
            chunk += "\n" + _marker(opener)
            carry = _reopen(opener, limit // 4) + "\n"
        parts.append(chunk)
        rest = _strip_start(candidate[cut:], at_line_start=candidate[cut - 1] == "\n")
        if carry and not rest:
            break
    return parts


def _longest_fence(text: str) -> int:
    lengths = [len(m.group(1)) for m in map(_FENCE_RE.match, text.splitlines()) if m]
    return max(lengths, default=3)


def _best_cut(window: str, floor: int) -> int:
    """Where to end a part: the latest good boundary in the second half of ``window``."""
    half = max(floor, len(window) // 2)
    for boundary in ("\n\n", "\n"):
        at = window.rfind(boundary, half)
        if at >= half:
            return at + len(boundary)
    sentences = [m.end() for m in _SENTENCE_END_RE.finditer(window, half)]
    if sentences:
        return sentences[-1]
    at = window.rfind(" ", half)
    if at >= half:
        return at + 1
    return max(floor, len(window))


def _keep_fence_lines_whole(text: str, cut: int, floor: int) -> int:
    """Move a cut that falls inside a fence line to that line's start, so an info string
    (``python``) is never split into the code below it."""
    line_start = text.rfind("\n", 0, cut) + 1
    if line_start <= floor or line_start == cut:
        return cut
    line_end = text.find("\n", line_start)
    line = text[line_start : line_end if line_end != -1 else len(text)]
    return line_start if _FENCE_RE.match(line) else cut


def _no_false_fence(text: str, cut: int, floor: int) -> int:
    """A cut inside a line must not leave backticks (```) at the start of the next part, where
    they would read as a code fence: move the cut back so a character of the line goes along."""
    line_start = text.rfind("\n", 0, cut) + 1
    before = text[line_start:cut]
    rest = text[cut:]
    gap = rest[: len(rest) - len(rest.lstrip())]
    if not before.strip() or "\n" in gap or not _FENCE_RE.match(rest.lstrip().split("\n", 1)[0]):
        return cut
    keep = before.rstrip().rstrip("`~")  # the backticks right before the cut go along too
    back = line_start + len(keep) - 1
    return back if keep.strip() and back > floor else cut


def _strip_start(text: str, *, at_line_start: bool) -> str:
    """``text.lstrip()``, but a line indented too deeply to be a fence (four spaces) keeps its
    indentation when losing it would turn the line into one."""
    stripped = text.lstrip()
    if not _FENCE_RE.match(stripped.split("\n", 1)[0]):
        return stripped
    line_start = text.rfind("\n", 0, len(text) - len(stripped)) + 1
    if line_start == 0 and not at_line_start:
        return stripped  # the cut was inside this line: _no_false_fence's case
    line = text[line_start:].split("\n", 1)[0]
    return stripped if _FENCE_RE.match(line) else text[line_start:]


def _open_fence(chunk: str) -> str | None:
    """The opening line of a code fence still open at the end of ``chunk``, if any."""
    opener: str | None = None
    for line in chunk.splitlines():
        match = _FENCE_RE.match(line)
        if match is None:
            continue
        marker, info = match.group(1), match.group(2)
        if opener is None:
            opener = line.strip()
        elif marker[0] == opener[0] and len(marker) >= len(_marker(opener)) and not info.strip():
            opener = None
    return opener


def _marker(opener: str) -> str:
    match = _FENCE_RE.match(opener)
    assert match is not None
    return match.group(1)


def _reopen(opener: str, budget: int) -> str:
    return opener if len(opener) < min(_MAX_OPENER, budget) else _marker(opener)
