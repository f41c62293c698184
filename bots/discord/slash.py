"""Slash commands built from the core's command list, so every command the core gains shows up
in Discord's menu without touching this adapter.

A command whose ``usage`` names an argument (``/search <words>``) gets one optional free-text
option named after it; the invocation reaches the core as the text ``/name option-text``.
Operator verbs form an ``/admin`` group (``/admin memory arguments: telegram:42``), hidden by
default from server members without the Administrator permission; the core still checks who is
an operator.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import discord
from discord import app_commands

from agentcore.commands import ADMIN_COMMAND, ADMIN_VERBS, USER_COMMANDS, CommandInfo

CommandHandler = Callable[[discord.Interaction, str, str], Awaitable[None]]
AppCommand = app_commands.Command[Any, Any, None]
DESCRIPTION_LIMIT = 100  # Discord's limit for command and option descriptions
_OPTION_NAME_LIMIT = 32
_PLACEHOLDER_RE = re.compile(r"[<\[]([^>\]]+)[>\]]")


def option_name(info: CommandInfo) -> str | None:
    """The free-text option ``info`` takes according to its usage, or None.

    ``"/search <words>"`` → ``"words"``; several placeholders (``"/admin <verb> [args]"``) →
    ``"arguments"``, one option holding the whole rest of the line (the usage is its
    description); an empty usage, or one that is just the command, → None.
    """
    rest = re.sub(rf"^/?{re.escape(info.name)}\b", "", info.usage.strip(), flags=re.I).strip()
    if not rest:
        return None
    placeholders = _PLACEHOLDER_RE.findall(rest)
    if len(placeholders) > 1:
        return "arguments"
    word = placeholders[0] if placeholders else rest.split()[0]
    name = re.sub(r"[^a-z0-9_-]+", "_", word.lower()).strip("_")[:_OPTION_NAME_LIMIT]
    return name or "text"


def build_app_commands(
    handler: CommandHandler,
    commands: Sequence[CommandInfo] = USER_COMMANDS,
    admin_verbs: Sequence[CommandInfo] = ADMIN_VERBS,
) -> list[AppCommand | app_commands.Group]:
    built: list[AppCommand | app_commands.Group] = [
        _app_command(info, handler) for info in commands
    ]
    if admin_verbs:
        built.append(_admin_group(handler, admin_verbs))
    return built


def _admin_group(handler: CommandHandler, verbs: Sequence[CommandInfo]) -> app_commands.Group:
    group = app_commands.Group(
        name=ADMIN_COMMAND.name,
        description=ADMIN_COMMAND.description[:DESCRIPTION_LIMIT],
        default_permissions=discord.Permissions(administrator=True),
    )

    async def run_admin(interaction: discord.Interaction, name: str, args: str) -> None:
        await handler(interaction, ADMIN_COMMAND.name, f"{name} {args}".strip())

    for verb in verbs:
        group.add_command(_app_command(verb, run_admin))
    return group


def _app_command(info: CommandInfo, handler: CommandHandler) -> AppCommand:
    name = info.name.lower()
    option = option_name(info)
    callback: Callable[..., Awaitable[None]]
    if option is None:

        async def run(interaction: discord.Interaction) -> None:
            await handler(interaction, name, "")

        callback = run
    else:

        async def run_with_text(interaction: discord.Interaction, text: str | None = None) -> None:
            await handler(interaction, name, text or "")

        describe = (info.usage or info.description)[:DESCRIPTION_LIMIT]
        callback = app_commands.rename(text=option)(
            app_commands.describe(text=describe)(run_with_text)
        )
    return app_commands.Command(
        name=name,
        description=(info.description or name)[:DESCRIPTION_LIMIT],
        callback=callback,
    )
