"""Running the real ``python -m bots`` process in tests: its environment, a model that
remembers names, and starting it."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path
from typing import Any

from tests.fakes.openai_server import Completion, last_user, system

REPO = Path(__file__).resolve().parents[1]


def remembering_model(body: dict[str, Any]) -> Completion:
    """Saves "My name is X" to core memory; answers "What is my name?" from the system prompt;
    echoes anything else."""
    if body["messages"][-1]["role"] == "tool":
        return Completion(content="Nice to meet you!")
    text = last_user(body)
    said = re.search(r"My name is (\w+)", text)
    if said:
        return Completion(
            tool_calls=[("core_memory_append", {"label": "human", "content": f"Name: {said[1]}"})]
        )
    known = re.search(r"Name: (\w+)", system(body))
    if "name" in text.lower():
        return Completion(content=f"Your name is {known[1]}." if known else "I don't know yet.")
    return Completion(content=f"echo: {text}")


def bot_env(tmp_path: Path, base_url: str, **extra: str) -> dict[str, str]:
    """A clean environment: the model at ``base_url``, the database under ``tmp_path``."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PYTHONPATH": str(REPO),
        "OPENAI_BASE_URL": base_url,
        "AGENTCORE_DB": str(tmp_path / "bot.db"),
    }
    return env | extra


async def spawn_bot(
    *args: str,
    env: dict[str, str],
    cwd: Path = REPO,
    stdin: bool = True,
    preexec: Any = None,
    stdio: int | None = None,
    stdout: int | None = None,
) -> asyncio.subprocess.Process:
    """``python -m bots *args`` with stdout and stderr piped (stdin too, unless ``stdin`` is
    False: then it reads nothing, as a service does), or all three on the file descriptor
    ``stdio`` (a terminal), or stdout on the file descriptor ``stdout``."""
    piped = asyncio.subprocess.PIPE
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bots",
        *args,
        stdin=stdio if stdio is not None else piped if stdin else asyncio.subprocess.DEVNULL,
        stdout=stdio if stdio is not None else stdout if stdout is not None else piped,
        stderr=stdio if stdio is not None else piped,
        env=env,
        cwd=cwd,
        preexec_fn=preexec,
    )


async def run_bot(stdin: str, env: dict[str, str], cwd: Path, *args: str) -> tuple[int, str, str]:
    """Run the bot to the end of ``stdin``: its exit code, stdout and stderr."""
    proc = await spawn_bot(*args, env=env, cwd=cwd)
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
