"""The terminal chat in a real terminal: a prompt_toolkit prompt with line editing and this
session's history (kept in memory only: /forget must leave nothing behind on disk), log lines
printed above the prompt, and replies rendered as Markdown by rich."""

from __future__ import annotations

import contextlib

from prompt_toolkit import PromptSession
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.patch_stdout import patch_stdout
from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown
from rich.text import Text

from agentcore.types import ReplyKind
from bots.console.terminal import Interrupted
from bots.text import visible

_PROMPT = FormattedText([("ansigreen bold", "you> ")])
_STYLES = {ReplyKind.NOTICE: "yellow", ReplyKind.ERROR: "bold red"}


class InteractiveTerminal:
    interactive = True
    closed = False

    def __init__(self) -> None:
        self._session: PromptSession[str] = PromptSession(history=InMemoryHistory())
        self._patched = contextlib.ExitStack()
        # While the prompt waits, anything written to stdout or stderr (log lines above all) is
        # printed above it instead of over it; raw keeps rich's colours.
        self._patched.enter_context(patch_stdout(raw=True))
        # No file given: rich writes to whatever sys.stdout is, i.e. the patched one.
        self._console = Console(force_terminal=True, highlight=False, emoji=False)
        self._live: Live | None = None  # the answer being streamed, if one is

    async def read_line(self) -> str | None:
        try:
            # handle_sigint=False: prompt_toolkit would remove the bot's own SIGINT handler
            # when the prompt ends. Ctrl-C typed at the prompt is a key press here anyway.
            return await self._session.prompt_async(_PROMPT, handle_sigint=False)
        except EOFError:  # Ctrl-D
            return None
        except KeyboardInterrupt:
            raise Interrupted from None

    def show(self, text: str, kind: ReplyKind) -> None:
        style = _STYLES.get(kind)
        rendered = Text(visible(text), style=style) if style else _markdown(text)
        live, self._live = self._live, None
        if live is not None and style is None:  # the streamed answer, in its final form
            live.update(rendered, refresh=True)
            live.stop()
            return
        if live is not None:
            live.stop()
        self._console.print(rendered)

    def grow(self, text: str) -> None:
        # The answer so far, re-rendered as Markdown in place while it is written.
        if self._live is None:
            self._live = Live(console=self._console, auto_refresh=False)
            self._live.start()
        self._live.update(_markdown(text), refresh=True)

    def note(self, text: str) -> None:
        self._console.print(Text(visible(text), style="dim"))

    def close(self) -> None:
        if self._live is not None:  # stopped in the middle of an answer
            self._live.stop()
            self._live = None
        self._patched.close()


def _markdown(text: str) -> Markdown:
    # Stored text may hold escape sequences: they are shown, never sent to the terminal.
    return Markdown(_line_breaks(visible(text)))


def _line_breaks(text: str) -> str:
    """Markdown joins consecutive lines into one paragraph; a chat reply means its line breaks
    (as Telegram and Discord show them), so each one becomes a hard break (two trailing spaces)
    outside code blocks."""
    lines, in_code = [], False
    for line in text.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            in_code = not in_code
        lines.append(line if in_code or not line.strip() else line + "  ")
    return "\n".join(lines)
