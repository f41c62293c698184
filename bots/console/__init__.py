"""The terminal chat: the same core and database, one local user, stdin in and stdout out."""

from bots.console.adapter import ConsoleAdapter, console_user

__all__ = ["ConsoleAdapter", "console_user"]
