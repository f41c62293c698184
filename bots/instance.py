"""One bot process per database: a second one refuses to start instead of racing the first.

An exclusive ``flock`` on ``<database>.lock`` is held for the life of the process; the kernel
releases it when the process ends, however it ends (even SIGKILL), so a crash never leaves a
stale lock behind. The operator CLI does not take it: it is safe beside a running bot.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from bots.adapter import AdapterError


class InstanceBusy(AdapterError):
    """Another process holds the database."""

    def __init__(self, message: str, holder: str) -> None:
        super().__init__(message)
        self.holder = holder  # its pid, as it wrote it


class InstanceLock:
    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise ``AdapterError`` naming the process that holds it."""
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise InstanceBusy(
                f"another bot process (pid {holder}) is already running on "
                f"{self.path.with_suffix('')}: stop it first, or set AGENTCORE_DB to another file",
                holder,
            ) from None
        with contextlib.suppress(OSError):  # a read-only lock file still locks
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def _open(self) -> int:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            refused = exc  # why it could not be created: what the operator must fix
        try:
            return os.open(self.path, os.O_RDONLY)  # an existing lock file may still lock
        except OSError:
            raise AdapterError(
                f"cannot use {self.path.parent} for the database ({refused.strerror}): check "
                "AGENTCORE_DB and that the directory exists and is writable"
            ) from None

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None
