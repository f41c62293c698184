"""Splitting long replies for platforms with a message size limit (Telegram 4096, Discord 2000).

Parts break at the best boundary available (paragraph, then line, then sentence, then word) and
never inside a code block: a fence open at a break is closed at the end of that part and
reopened, with its language tag, at the start of the next. Only whitespace at the breaks is
dropped; every other character arrives, in order.
"""

from __future__ import annotations

import re

_FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_FENCE_START = re.compile(r" {0,3}(?:`{3}|~{3})")
_SENTENCE_END_RE = re.compile(r"[.!?…。！？][)\"'”’]*\s")
_MAX_OPENER = 40  # a longer fence info string is not worth repeating on every part


def split_message(text: str, limit: int) -> list[str]:
    """Split ``text`` into parts of at most ``limit`` characters (see the module docstring)."""
    if limit < 64:
        raise ValueError("limit must be at least 64 characters")
    if not text.strip():
        return []
    # Only newlines are trimmed at the front: leading spaces can matter ("    ```" is not a fence).
    rest = text.strip("\n").rstrip()
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
        chunk = candidate[:cut].rstrip()
        opener = _open_fence(chunk)
        carry = ""
        if opener is not None and len(_marker(opener)) < reserve:
            chunk += "\n" + _marker(opener)
            carry = _reopen(opener, limit // 4) + "\n"
        parts.append(chunk)
        rest = candidate[cut:].lstrip("\n")
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
    """Adjust a cut so fences keep their meaning: never inside a fence line (its info string
    would fall into the code), and never just before mid-line backticks (which would start the
    next part's first line and so become a fence)."""
    line_start = text.rfind("\n", 0, cut) + 1
    if line_start == cut:
        return cut
    line_end = text.find("\n", line_start)
    line = text[line_start : line_end if line_end != -1 else len(text)]
    if _FENCE_RE.match(line) and line_start > floor:
        return line_start
    while cut > floor + 1 and _FENCE_START.match(text, cut):
        cut -= 1
    return cut


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


# Control characters (C0 but tab and newline, DEL, C1) would act on a terminal: move the cursor,
# recolour, retitle the window. Each is shown as a visible stand-in instead: C0 as its Unicode
# control picture (ESC as ␛), the rest as U+FFFD.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """``text`` safe to print on a terminal: line breaks and tabs kept, every other control
    character replaced by a visible stand-in."""
    return _CONTROLS.sub(_stand_in, text.replace("\r\n", "\n"))


def _stand_in(match: re.Match[str]) -> str:
    code = ord(match.group())
    return chr(0x2400 + code) if code < 0x20 else "\ufffd"
