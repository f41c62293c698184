"""The Discord adapter (discord.py). Imported only when DISCORD_TOKEN is set."""

from bots.discord.adapter import DiscordAdapter, build_discord_adapter

__all__ = ["DiscordAdapter", "build_discord_adapter"]
