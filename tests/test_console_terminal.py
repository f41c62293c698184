"""The terminal chat in a real terminal: ``python -m bots`` on a pseudo-terminal (its controlling
terminal, so Ctrl-C is a real SIGINT from the line discipline), against the fake model."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import re
import sqlite3
import struct
import termios
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tests.fakes.openai_server import Completion, FakeOpenAI, Responder, last_user
from tests.process import bot_env, spawn_bot

CTRL_C, CTRL_D = b"\x03", b"\x04"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _controlling_terminal() -> None:
    """In the child, before exec: make the pseudo-terminal (already its stdin) the session's
    controlling terminal, as a login shell's terminal is."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """The far side of the bot's pseudo-terminal: what a person types and sees."""

    def __init__(self, master: int, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self._master = master
        self._seen = bytearray()
        self._changed = asyncio.Event()
        asyncio.get_running_loop().add_reader(master, self._read)

    def _read(self) -> None:
        try:
            data = os.read(self._master, 65536)
        except OSError:  # the bot exited and closed its side
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self._master)
        self._seen += data
        self._changed.set()

    @property
    def raw(self) -> str:
        return self._seen.decode(errors="replace")

    @property
    def text(self) -> str:
        """What is shown, without colour and cursor codes."""
        return _ANSI.sub("", self.raw)

    def type(self, keys: bytes) -> None:
        os.write(self._master, keys)

    async def shows(self, fragment: str, after: str = "") -> None:
        """Wait until ``fragment`` is shown (after the first ``after``, if given)."""

        def seen() -> bool:
            text = self.text
            return after in text and fragment in text[text.index(after) + len(after) :]

        async def wait() -> None:
            while not seen():
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(wait(), 30)
        except TimeoutError:
            raise AssertionError(f"{fragment!r} never shown; the screen:\n{self.text}") from None

    async def exit_code(self) -> int:
        try:
            return await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            raise AssertionError(f"the chat never exited; the screen:\n{self.text}") from None


@contextlib.asynccontextmanager
async def terminal_chat(model: Responder, tmp_path: Path) -> AsyncIterator[Terminal]:
    """The bot chatting as console:brad in a 100x40 terminal, its model answering ``model``."""
    async with FakeOpenAI(model) as server:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
        env = bot_env(tmp_path, server.base_url, TERM="xterm-256color", PROMPT_TOOLKIT_NO_CPR="1")
        process = await spawn_bot(
            "--user", "brad", env=env, cwd=tmp_path, stdio=slave, preexec=_controlling_terminal
        )
        os.close(slave)
        try:
            yield Terminal(master, process)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            asyncio.get_running_loop().remove_reader(master)
            os.close(master)


class SlowModel:
    """Answers once released; tells the test when a request has arrived."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.asked = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, body: dict[str, Any]) -> Completion:
        self.asked.set()
        await self.release.wait()
        return Completion(content=f"{self.answer} ({last_user(body)})")


def stored(tmp_path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(tmp_path / "bot.db") as db:
        return list(db.execute("SELECT role, content FROM messages ORDER BY id"))


async def test_replies_are_markdown_and_stored_escapes_never_reach_the_terminal(
    tmp_path: Path,
) -> None:
    hostile = "**Noted.** \x1b]0;pwned\x07\x1b[2J done"
    async with terminal_chat(lambda body: Completion(content=hostile), tmp_path) as term:
        await term.shows("Chatting as console:brad")
        await term.shows("you> ")
        term.type(b"hello\r")
        await term.shows("done")
        assert "\x1b[1mNoted.\x1b[0m" in term.raw  # Markdown rendered: bold, no asterisks
        assert "**Noted.**" not in term.text
        assert "␛]0;pwned␇␛[2J done" in term.text  # shown, not obeyed
        assert "\x1b]0;" not in term.raw and "\x1b[2J" not in term.raw
        term.type(b"/memory\r")
        await term.shows("messages stored")
        assert "**persona**" not in term.text
        assert re.search(r"\npersona \(\d+/5000 chars\) *\r?\nI am ", term.text)  # lines kept
        # Only once the prompt is back: before it, the terminal is in cooked mode, where the line
        # discipline itself takes a Ctrl-D and the chat never sees it (as for a person).
        await term.shows("you> ", after="messages stored")
        term.type(CTRL_D)
        assert await term.exit_code() == 0
    assert ("user", "hello") in stored(tmp_path)


async def test_log_lines_are_printed_above_the_prompt(tmp_path: Path) -> None:
    async with terminal_chat(lambda body: Completion(content="ok"), tmp_path) as term:
        # Logged in the background while the prompt waits (the model client loads after the
        # chat is ready).
        await term.shows("model client ready")
        await term.shows("you> ", after="model client ready")  # the prompt is redrawn below
        term.type(CTRL_D)
        assert await term.exit_code() == 0


async def ctrl_c_while_answering(term: Terminal, model: SlowModel, text: str) -> None:
    """Say ``text``, then press Ctrl-C while the model is still answering it."""
    await term.shows("you> ")
    term.type(text.encode() + b"\r")
    await model.asked.wait()
    term.type(CTRL_C)
    await term.shows("Stopping after this answer; press Ctrl-C again to stop now.")


async def test_first_ctrl_c_finishes_the_answer_then_quits(tmp_path: Path) -> None:
    model = SlowModel("Here you go")
    async with terminal_chat(model, tmp_path) as term:
        await ctrl_c_while_answering(term, model, "tell me a long story")
        model.release.set()
        await term.shows("Here you go (tell me a long story)")
        assert await term.exit_code() == 0
    assert stored(tmp_path) == [
        ("user", "tell me a long story"),
        ("assistant", "Here you go (tell me a long story)"),
    ]


async def test_second_ctrl_c_stops_now_and_keeps_the_message(tmp_path: Path) -> None:
    model = SlowModel("never sent")
    async with terminal_chat(model, tmp_path) as term:
        await ctrl_c_while_answering(term, model, "are you there?")
        term.type(CTRL_C)
        await term.shows("Stopped. Your message is saved")
        assert await term.exit_code() == 0
        assert "never sent" not in term.text
        model.release.set()  # the fake server waits for its handlers when it stops
    assert stored(tmp_path) == [("user", "are you there?")]


async def test_ctrl_c_at_the_prompt_quits_at_once(tmp_path: Path) -> None:
    async with terminal_chat(lambda body: Completion(content="ok"), tmp_path) as term:
        await term.shows("you> ")
        term.type(CTRL_C)
        assert await term.exit_code() == 0
        assert "Traceback" not in term.text
