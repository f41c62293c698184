"""Configuration: shipped defaults (TOML), an optional user file, environment overrides and the
typed settings object built from them once at start."""

from config.settings import ConfigError, Secret, Settings, load_settings

__all__ = ["ConfigError", "Secret", "Settings", "load_settings"]
