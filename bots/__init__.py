"""Thin platform adapters (terminal, Telegram, Discord) and the composition root."""
