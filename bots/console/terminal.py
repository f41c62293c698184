"""The two ways the terminal chat talks to a person: piped (plain lines) and interactive."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from typing import Protocol

from agentcore.types import ReplyKind
from bots.text import visible


class Interrupted(Exception):
    """Ctrl-C at the prompt."""


class Terminal(Protocol):
    interactive: bool
    closed: bool  # the output went away (e.g. ``| head`` exited): nothing more can be shown

    async def read_line(self) -> str | None:
        """The next line the person typed; None at the end of input. ``Interrupted`` on Ctrl-C
        at an interactive prompt."""
        ...

    def show(self, text: str, kind: ReplyKind) -> None:
        """A reply (or a notice about one) for the person."""
        ...

    def grow(self, text: str) -> None:
        """The answer being written, so far (streaming); the next ``show`` of the same text,
        or of anything else, ends it."""
        ...

    def note(self, text: str) -> None:
        """A line about the chat itself (a greeting, "stopping")."""
        ...

    def close(self) -> None: ...


class PipedTerminal:
    """Lines in from stdin, replies out to stdout as plain text, one per reply; notes go to
    stderr so stdout holds only answers."""

    interactive = False

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.closed = False
        self._grown = ""  # the streamed answer printed so far
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        # A daemon thread, not the default executor: a blocked readline() must not keep the
        # process alive after Ctrl-C.
        threading.Thread(target=self._read_lines, args=(loop,), daemon=True).start()

    def _read_lines(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            for line in sys.stdin:
                loop.call_soon_threadsafe(self._lines.put_nowait, line.rstrip("\r\n"))
        except (OSError, ValueError):
            pass  # stdin closed under us
        finally:
            # RuntimeError: the loop is already closed, we are exiting anyway.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._lines.put_nowait, None)

    async def read_line(self) -> str | None:
        return await self._lines.get()

    def grow(self, text: str) -> None:
        if not text.startswith(self._grown):  # a new step started the answer again
            self._write("\n")
            self._grown = ""
        self._write(text[len(self._grown) :])
        self._grown = text

    def show(self, text: str, kind: ReplyKind) -> None:
        # Streamed text is already out: only the rest follows, so the bytes are the same as
        # when the answer is not streamed.
        grown, self._grown = self._grown, ""
        if grown and text.startswith(grown):
            self._write(text[len(grown) :] + "\n")
            return
        if grown:
            self._write("\n")
        self._write(text + "\n")

    def _write(self, text: str) -> None:
        if self.closed:
            return
        try:
            sys.stdout.write(visible(text))
            sys.stdout.flush()
        except BrokenPipeError:
            # The reader went away. Point stdout at /dev/null so the interpreter's final
            # flush does not fail again, and stop: nobody reads the answers.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            self.closed = True

    def note(self, text: str) -> None:
        print(visible(text), file=sys.stderr, flush=True)

    def close(self) -> None:
        pass
