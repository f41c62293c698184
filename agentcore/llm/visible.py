"""What of a streaming answer may be shown while it is written.

Models write things that must never reach the person: reasoning in ``<think>…</think>`` (or
``<thinking>``, ``<reasoning>``), and tool calls written as text (``<tool_call>``, Mistral's
``[TOOL_CALLS]``, Llama's ``<|python_tag|>``, a bare JSON object). ``VisibleText`` is fed the
deltas as they arrive and gives the text that is safe to show so far: reasoning is dropped,
anything from a tool-call marker on is held back for good, and a tail that might be the start
of a marker (``"<thi"``) waits for the next delta. An answer that opens with ``{`` or ``[`` is
shown only when the response is complete (it may be a tool call as JSON). The full content is
still parsed afterwards; this only decides what is shown early.
"""

from __future__ import annotations

import re

_THINK_OPEN = re.compile(r"<(think|thinking|reasoning)>", re.IGNORECASE)
_TOOL_MARKERS = ("<tool_call>", "<function=", "[TOOL_CALLS]", "<|python_tag|>", "<|tool_call")
_OPENERS = ("<think>", "<thinking>", "<reasoning>", *_TOOL_MARKERS)
_LOOKS_LIKE_JSON = ("{", "[")


class VisibleText:
    def __init__(self) -> None:
        self._raw = ""
        self._shown = ""
        self._stopped = False  # a tool call written as text began: nothing more is shown

    @property
    def shown(self) -> str:
        return self._shown

    def feed(self, delta: str) -> str:
        """Take the next delta; the visible text so far (it only grows)."""
        self._raw += delta
        if not self._stopped:
            self._shown = max(self._shown, self._visible(), key=len)
        return self._shown

    def _visible(self) -> str:
        text = self._without_reasoning(self._raw)
        if text is None:
            return self._shown
        stripped = text.lstrip()
        if stripped.startswith(_LOOKS_LIKE_JSON):
            return self._shown
        cut = min((i for m in _TOOL_MARKERS if (i := text.find(m)) != -1), default=-1)
        if cut != -1:
            self._stopped = True
            return text[:cut].strip()
        return _without_partial_marker(text).strip()

    @staticmethod
    def _without_reasoning(text: str) -> str | None:
        """The text with complete reasoning spans removed; None while one is still open."""
        while True:
            opened = _THINK_OPEN.search(text)
            if opened is None:
                return text
            closing = f"</{opened.group(1)}>"
            end = text.lower().find(closing, opened.end())
            if end == -1:
                return text[: opened.start()] if opened.start() else None
            text = text[: opened.start()] + text[end + len(closing) :]


def _without_partial_marker(text: str) -> str:
    """``text`` minus a tail that could be the beginning of a marker."""
    start = text.rfind("<")
    bracket = text.rfind("[")
    start = max(start, bracket)
    if start == -1:
        return text
    tail = text[start:].lower()
    if any(marker.lower().startswith(tail) for marker in _OPENERS):
        return text[:start]
    return text
