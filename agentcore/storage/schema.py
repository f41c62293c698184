"""Numbered, forward-only migration files shipped with a backend (``migrations/NNNN_name.sql``).

A shipped file is never edited: a schema change is the next number. Each backend applies the
files it has not seen yet and records the last one applied in the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

_NAME_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True, slots=True)
class MigrationFile:
    version: int
    name: str
    script: str


def migration_files(package: str) -> list[MigrationFile]:
    """The migrations in ``package``'s ``migrations`` folder, in order; numbered 1..N."""
    found = []
    for entry in resources.files(package).joinpath("migrations").iterdir():
        match = _NAME_RE.match(entry.name)
        if match:
            found.append(MigrationFile(int(match.group(1)), entry.name, entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migration numbers must run 1..N without gaps, found {versions}")
    return found
