"""What the commands are called and how command text is parsed (no I/O here)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_COMMAND_RE = re.compile(r"^/([A-Za-z][A-Za-z0-9_]{0,31})(?:\s+(.*))?$", re.DOTALL)

OPERATORS_ONLY = "This command is for the bot's operators."


@dataclass(frozen=True, slots=True)
class CommandInfo:
    name: str
    description: str  # one line, shown in platform command menus (≤ 100 characters)
    usage: str = ""  # the arguments, e.g. "<words>"; empty if it takes none
    # Costly commands (they read a whole history or search it) are refused while the person is
    # over the rate limit; the others, /forget above all, always run.
    costly: bool = False
    rest: bool = False  # the last argument is free text: the rest of the line, spaces and all

    def synopsis(self, prefix: str) -> str:
        """How it is typed, e.g. ``/search <words>`` for prefix ``/``."""
        return f"{prefix}{self.name}{' ' + self.usage if self.usage else ''}"

    @property
    def single_words(self) -> int:
        """How many leading arguments are single words (user names, labels, numbers)."""
        first_form = self.usage.split(" | ")[0].split()
        return len(first_form) - (1 if self.rest else 0)


USER_COMMANDS: tuple[CommandInfo, ...] = (
    CommandInfo("start", "What this bot is and what it remembers"),
    CommandInfo("help", "List the commands and what the bot stores"),
    CommandInfo("memory", "Show what I keep in mind about you (your core memory)"),
    CommandInfo("search", "Search our past messages, newest first", "<words>", costly=True),
    CommandInfo("usage", "How much of the model I've used for you today and this month"),
    CommandInfo("reset", "Start a fresh conversation window (memories stay)"),
    CommandInfo("documents", "List the documents you sent me, or delete one", "[delete <number>]"),
    CommandInfo("export", "Download everything I store about you (Agent File)", costly=True),
    CommandInfo("forget", "Erase everything I store about you", "[confirm]"),
    CommandInfo("reminders", "Your reminders with their ids; cancel one", "[cancel <id>]"),
    CommandInfo("timezone", "Show or set your time zone, e.g. Europe/Lisbon", "[zone]"),
    CommandInfo("quiet", "Hours when reminders wait, e.g. 22:00-07:00", "[hours|off|default]"),
    CommandInfo("checkins", "Let me write after a long silence, or not", "[on|off]"),
)
ADMIN_COMMAND = CommandInfo(
    "admin", "Operator tools: view, edit and audit memory", "<verb> ...", costly=True
)
ADMIN_VERBS: tuple[CommandInfo, ...] = (
    CommandInfo("users", "Users with last seen, message count, core-memory size", "[N]"),
    CommandInfo("memory", "A user's core memory blocks", "<user> [label]"),
    CommandInfo("set", "Replace a user's block", "<user> <label> <text>", rest=True),
    CommandInfo("append", "Append to a user's block", "<user> <label> <text>", rest=True),
    CommandInfo("history", "A block's versions with who, when and a diff", "<user> <label>"),
    CommandInfo("revert", "Restore a block version", "<user> <label> <version>"),
    CommandInfo("search", "Search a user's stored messages", "<user> <words>", rest=True),
    CommandInfo(
        "shared",
        "Set or delete a read-only block shown to every agent",
        "<label> <text> | <label> --delete",
        rest=True,
    ),
    CommandInfo(
        "import",
        "Create or replace a user's agent from an Agent File (shell only)",
        "<user> <file.af>",
        rest=True,
    ),
    CommandInfo("stats", "Users, messages, database size, startups, model calls and cost"),
    CommandInfo("usage", "Model calls, tokens, cache share and estimated cost", "[user]"),
    CommandInfo(
        "backup", "A consistent copy of the database, taken live (shell only)", "<path>", rest=True
    ),
    CommandInfo("audit", "The latest operator reads and writes", "[N]"),
)


def parse_command(text: str) -> tuple[str, str] | None:
    """``("memory", "args")`` for ``/memory args``; None if the text is not a command."""
    match = _COMMAND_RE.match(text.strip())
    if match is None:
        return None
    return match.group(1).lower(), (match.group(2) or "").strip()


def is_costly(name: str) -> bool:
    """Whether the command ``/name`` is refused while its sender is over the rate limit."""
    return any(c.costly for c in (*USER_COMMANDS, ADMIN_COMMAND) if c.name == name)


def usage_line(prefix: str, info: CommandInfo) -> str:
    return f"Usage: {info.synopsis(prefix)}"
