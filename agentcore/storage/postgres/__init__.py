"""The PostgreSQL backend (see ``storage``)."""

from agentcore.storage.postgres.storage import PostgresStorage

__all__ = ["PostgresStorage"]
