"""The transcription seam: voice notes and audio files to text."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from agentcore.lazy import OnFirstUse


class TranscriptionUnavailable(Exception):
    """The endpoint has no transcription (404, 405, or a 400 refusing the model): an operator
    has to set one up. ``str(err)`` is for the log."""


class Transcriber(Protocol):
    async def transcribe(self, audio: bytes, filename: str, mime_type: str) -> str:
        """What was said ('' for no speech). Raises ``TranscriptionUnavailable``, or
        ``LLMError`` for a failure that may pass (timeouts, 5xx, rate limits)."""
        ...

    async def close(self) -> None: ...


class LazyTranscriber:
    """A ``Transcriber`` built on first use (building one imports the ``openai`` SDK), so a
    bot that never gets a voice note never pays for it."""

    def __init__(self, factory: Callable[[], Awaitable[Transcriber]]) -> None:
        self._built = OnFirstUse(factory)

    async def transcribe(self, audio: bytes, filename: str, mime_type: str) -> str:
        return await (await self._built.get()).transcribe(audio, filename, mime_type)

    async def close(self) -> None:
        await self._built.close()
