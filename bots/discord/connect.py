"""Building the discord.py client: intents, where it connects, and what fatal errors mean.

discord.py picks its endpoints from two class attributes: ``discord.http.Route.BASE`` for REST and
``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` for the first gateway connection of a
plain ``Client``. After that the server decides: ``AutoShardedClient`` connects to the ``url``
that REST ``GET /gateway/bot`` returns, and every client resumes at the ``resume_gateway_url``
of the READY event. So a test server or proxy set with DISCORD_API_BASE and DISCORD_GATEWAY_URL
answers those two with its own address, and then every connection goes through it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import discord
import discord.gateway
import discord.http
import yarl

from bots.discord.send import NO_PINGS

# Close codes after which reconnecting cannot help (discord.py raises instead of retrying).
_AUTHENTICATION_FAILED = 4004
_DISALLOWED_INTENTS = 4014
_SHARDING_REQUIRED = 4011

BAD_TOKEN = (
    "Discord rejected the bot token: set DISCORD_TOKEN to the token shown under Developer "
    "Portal → your application → Bot → Reset Token."
)
MISSING_INTENT = (
    "Discord refused the Message Content intent: enable it under Developer Portal → your "
    "application → Bot → Privileged Gateway Intents → Message Content Intent, then restart."
)
SHARDING_REQUIRED = (
    "Discord requires sharding for a bot in this many servers: set AGENTCORE_DISCORD__SHARDED=true."
)


def point_at(api_base: str, gateway_url: str) -> None:
    """Send REST calls to ``api_base`` and the first gateway connection to ``gateway_url``
    (a proxy or test server); empty strings keep Discord's own endpoints."""
    if api_base:
        discord.http.Route.BASE = rest_base(api_base)
    if gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


def rest_base(url: str) -> str:
    """``http://host:port`` → ``http://host:port/api/v10``; a URL with a path is kept as is."""
    url = url.rstrip("/")
    if urlsplit(url).path in {"", "/"}:
        return f"{url}/api/v{discord.http.INTERNAL_API_VERSION}"
    return url


def intents() -> discord.Intents:
    """Servers, their messages, DMs, and message text (privileged: enabled in the portal)."""
    wanted = discord.Intents.none()
    wanted.guilds = True
    wanted.guild_messages = True
    wanted.dm_messages = True
    wanted.message_content = True
    return wanted


Pace = Callable[[], Awaitable[None]]


class _Paced:
    """A client whose every IDENTIFY waits for ``pace`` (spacing them across all the bot's
    processes, as Discord requires) instead of discord.py's own 5 s within one process."""

    def __init__(self, *, pace: Pace, **options: Any) -> None:
        self._pace = pace
        super().__init__(**options)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        await self._pace()


class PacedClient(_Paced, discord.Client):
    pass


class PacedShardedClient(_Paced, discord.AutoShardedClient):
    pass


def make_client(
    *,
    sharded: bool,
    shard_count: int = 0,
    shard_ids: tuple[int, ...] = (),
    pace: Pace | None = None,
) -> discord.Client:
    """A client that caches little (no message or member cache) and pings nobody by default;
    sharded if asked, or if ``shard_count`` is set (then running ``shard_ids``, or all)."""
    # A text-only bot never joins voice: skip discord.py's warnings about voice libraries.
    discord.VoiceClient.warn_nacl = False
    discord.VoiceClient.warn_dave = False
    options: dict[str, Any] = {
        "intents": intents(),
        "allowed_mentions": NO_PINGS,
        "max_messages": None,
        "member_cache_flags": discord.MemberCacheFlags.none(),
        "chunk_guilds_at_startup": False,
    }
    if shard_count:
        options |= {"shard_count": shard_count, "shard_ids": list(shard_ids) or None}
    sharded = sharded or bool(shard_count)
    if pace is None:
        return (discord.AutoShardedClient if sharded else discord.Client)(**options)
    return (PacedShardedClient if sharded else PacedClient)(pace=pace, **options)


def shard_roles(*, sharded: bool, shard_count: int, shard_ids: tuple[int, ...]) -> list[str]:
    """The roles (``Storage.take_role``) a process needs for the gateway connections it runs:
    one per shard, so that no two processes run the same one."""
    if sharded and not shard_count:  # as many shards as Discord says: the whole bot
        return ["discord shards"]
    count = shard_count or 1
    return [f"discord shard {shard} of {count}" for shard in shard_ids or range(count)]


def fatal_reason(exc: BaseException) -> str | None:
    """One line naming the fix for an error that stopped the client, or None if unknown.

    The error's causes count too: when the very first gateway connection fails, discord.py
    raises an unrelated AttributeError whose context is the real (network) error.
    """
    for cause in _causes(exc):
        reason = _known_reason(cause)
        if reason is not None:
            return reason
    return None


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _known_reason(exc: BaseException) -> str | None:
    if isinstance(exc, discord.LoginFailure):
        return BAD_TOKEN
    if isinstance(exc, discord.PrivilegedIntentsRequired):
        return MISSING_INTENT
    if isinstance(exc, discord.ConnectionClosed):
        if exc.code == _AUTHENTICATION_FAILED:
            return BAD_TOKEN
        if exc.code == _DISALLOWED_INTENTS:
            return MISSING_INTENT
        if exc.code == _SHARDING_REQUIRED:
            return SHARDING_REQUIRED
        return f"Discord closed the gateway connection (code {exc.code}: {exc.reason or '?'})."
    if isinstance(
        exc, discord.GatewayNotFound | discord.HTTPException | aiohttp.ClientError | OSError
    ):
        rest = discord.http.Route.BASE
        gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        return (
            f"cannot reach Discord (REST {rest}, gateway {gateway}): {type(exc).__name__}: "
            f"{exc}; check the network and DISCORD_API_BASE / DISCORD_GATEWAY_URL"
        )
    return None
