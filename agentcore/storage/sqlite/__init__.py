"""The SQLite backend (see ``storage``)."""

from agentcore.storage.sqlite.storage import SQLiteStorage

__all__ = ["SQLiteStorage"]
