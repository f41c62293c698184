"""``Transcriber`` over an OpenAI-compatible ``/v1/audio/transcriptions`` endpoint (OpenAI's
whisper-1 or gpt-4o-transcribe, a local whisper server such as faster-whisper-server,
speaches or whisper.cpp's server)."""

from __future__ import annotations

import asyncio

import openai

from agentcore.llm.base import LLMTimeout
from agentcore.llm.openai_compat import sdk_client, translate_error
from agentcore.media.voice import TranscriptionUnavailable

# What an endpoint without transcription answers: no such route, no such model, or a request
# it does not understand.
_UNAVAILABLE = frozenset({400, 404, 405, 415, 422, 501})


class OpenAITranscriber:
    def __init__(
        self,
        *,
        model: str,
        base_url: str | None,
        api_key: str | None,
        deadline: float = 60.0,
        max_retries: int = 2,
    ) -> None:
        self._model = model
        self._deadline = deadline
        self._client = sdk_client(base_url, api_key, deadline, max_retries)

    async def transcribe(self, audio: bytes, filename: str, mime_type: str) -> str:
        try:
            async with asyncio.timeout(self._deadline):
                result = await self._client.audio.transcriptions.create(
                    model=self._model,
                    file=(filename, audio, mime_type),
                    response_format="json",
                )
        except TimeoutError as exc:
            raise LLMTimeout(f"no transcription within {self._deadline:.0f}s") from exc
        except openai.APIStatusError as exc:
            if exc.status_code in _UNAVAILABLE:
                raise TranscriptionUnavailable(
                    f"the transcription endpoint answered {exc.status_code}: {exc.message}"
                ) from exc
            raise translate_error(exc) from exc
        except openai.OpenAIError as exc:
            raise translate_error(exc) from exc
        return (result.text or "").strip()

    async def close(self) -> None:
        await self._client.close()
