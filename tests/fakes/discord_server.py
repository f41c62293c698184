"""A fake Discord REST API and gateway on 127.0.0.1 (one port for both).

It speaks enough of the real wire protocol for the real ``discord.py`` client: the gateway
handshake (HELLO, IDENTIFY, heartbeat and ACK, READY, GUILD_CREATE), dispatches
(MESSAGE_CREATE, INTERACTION_CREATE), RESUME with a replay of missed events and RESUMED, and the
REST routes the bot uses (login, ``gateway/bot``, messages as JSON or multipart, typing, opening
a DM, command sync, interaction callbacks and follow-ups). Tests inject failures: a rejected
token, a gateway close code after IDENTIFY (4014 = disallowed intents), 429s with
``retry_after`` and a ``Via`` header (without ``Via`` discord.py takes a 429 for a Cloudflare
ban), and a dropped connection.

Every REST request and gateway payload is recorded; ``wait_until`` waits for a condition on
them, so tests never sleep.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import BodyPartReader, web

DISCORD_EPOCH_MS = 1_420_070_400_000
API_PREFIX = "/api/v10"
FLAG_EPHEMERAL = 64
OP_DISPATCH, OP_HEARTBEAT, OP_IDENTIFY, OP_RESUME = 0, 1, 2, 6
OP_INVALID_SESSION, OP_HELLO, OP_HEARTBEAT_ACK = 9, 10, 11

T = TypeVar("T")
_increment = itertools.count(1)


def snowflake(at: datetime | None = None) -> int:
    """A Discord id: milliseconds since the Discord epoch, then a counter."""
    ms = int((at or datetime.now(UTC)).timestamp() * 1000) - DISCORD_EPOCH_MS
    return (ms << 22) | (next(_increment) & 0x3FFFFF)


def dm_channel_of(user_id: int) -> int:
    """The id of a user's DM channel with the bot (stable, derived from the user id)."""
    return user_id + 1


def user_payload(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {
        "id": str(user_id),
        "username": name.lower(),
        "global_name": name,
        "discriminator": "0",
        "avatar": None,
        "bot": bot,
    }


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


@dataclass
class Recorded:
    """One REST request as the fake received it."""

    method: str
    path: str  # without the /api/v10 prefix
    query: dict[str, str]
    json: Any
    files: list[tuple[str, bytes]]
    headers: dict[str, str]
    at: float = field(default_factory=time.perf_counter)
    created_id: str = ""  # the message a POST created


@dataclass
class Injected:
    """A canned failure for the next ``count`` requests matching method + path prefix."""

    method: str
    path_prefix: str
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    count: int


@dataclass
class _Session:
    """One gateway session (per shard): its sequence, its events, its live socket."""

    session_id: str
    shard: int
    seq: int = 0
    backlog: list[dict[str, Any]] = field(default_factory=list)
    socket: web.WebSocketResponse | None = None


class FakeDiscord:
    def __init__(
        self,
        *,
        token: str = "fake-bot-token-0123456789",
        shards: int = 1,
        heartbeat_ms: int = 41_250,
        guild_shard: int = 0,  # the shard the guild's events go to
    ) -> None:
        self.token = token
        self.shards = shards
        self.heartbeat_ms = heartbeat_ms
        self.bot = user_payload(snowflake(), "MemoryBot", bot=True)
        self.bot_id = int(self.bot["id"])
        self.application_id = snowflake()
        self.guild_id = snowflake_on_shard(guild_shard, shards)
        self.channel_id = snowflake()  # the guild's text channel
        self.role_id = snowflake()
        # Failure injection.
        self.reject_token = False
        self.close_code_after_identify: int | None = None
        self._injected: list[Injected] = []
        # What happened.
        self.requests: list[Recorded] = []
        self._posted: dict[int, list[Recorded]] = {}  # channel id -> messages the bot created
        self.gateway_received: list[dict[str, Any]] = []  # every payload a client sent
        self.replayed: list[dict[str, Any]] = []  # events sent again after a RESUME
        self.dispatched_at: dict[int, float] = {}  # message id -> when MESSAGE_CREATE was sent
        self._files: dict[str, bytes] = {}  # attachment id -> bytes served by the "CDN"
        self._reading: dict[int, dict[str, str]] = {}  # channel -> message id -> content now
        self.downloads: list[str] = []  # attachment ids fetched
        self.connections = 0
        self.identified: list[tuple[int, float]] = []  # (shard, when) of each IDENTIFY
        self._sessions: dict[int, _Session] = {}
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self.port = 0

    # ------------------------------------------------------------------ lifecycle

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"  # the gateway lives at the root, like Discord's

    async def __aenter__(self) -> FakeDiscord:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/", self._gateway)
        app.router.add_get("/attachments/{id}/{name}", self._cdn)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for socket in list(self._sockets):
            await socket.close()
        assert self._runner is not None
        await self._runner.cleanup()

    # ------------------------------------------------------------------ waiting

    async def wait_until(self, check: Callable[[], T | None], within: float = 10.0) -> T:
        """Wait until ``check()`` returns something truthy (re-checked on every event)."""

        async def poll() -> T:
            async with self._changed:
                while not (result := check()):
                    await self._changed.wait()
                return result

        return await asyncio.wait_for(poll(), within)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------------ queries

    def calls(self, method: str, path_prefix: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    def posted(self, channel_id: int | None = None) -> list[Recorded]:
        """Messages the bot created in channels (not interaction responses), in order."""
        if channel_id is not None:
            return list(self._posted.get(channel_id, []))
        return sorted((r for rs in self._posted.values() for r in rs), key=lambda r: r.at)

    def reading(self, channel_id: int) -> list[str]:
        """The bot's messages in a channel as they read now (after their edits), in order."""
        return list(self._reading.get(channel_id, {}).values())

    def reads_now(self, posted: Recorded) -> str | None:
        """What a message the bot posted reads now (after its edits); None once deleted."""
        return self._reading.get(int(posted.path.split("/")[2]), {}).get(posted.created_id)

    def edits(self, channel_id: int) -> list[Recorded]:
        """The bot's edits of its messages in a channel, in order."""
        return self.calls("PATCH", f"/channels/{channel_id}/messages/")

    def typing(self, channel_id: int) -> list[Recorded]:
        return self.calls("POST", f"/channels/{channel_id}/typing")

    def session_id(self, shard: int = 0) -> str:
        return self._sessions[shard].session_id

    def sent_ops(self, op: int) -> list[dict[str, Any]]:
        return [p for p in self.gateway_received if p.get("op") == op]

    def fail_next(
        self,
        method: str,
        path_prefix: str,
        *,
        status: int = 429,
        retry_after: float = 0.05,
        via: bool = True,
        count: int = 1,
    ) -> None:
        """Answer the next matching requests with an error (by default a real rate limit)."""
        body: dict[str, Any] = {"message": "You are being rate limited.", "global": False}
        headers = {"X-RateLimit-Scope": "user"}
        if status == 429:
            body["retry_after"] = retry_after
            headers["Retry-After"] = str(max(1, round(retry_after)))
        else:
            body = {"message": f"{status}: injected", "code": 0}
        if via:
            headers["Via"] = "1.1 google"
        self._injected.append(Injected(method, path_prefix, status, body, headers, count))

    # ------------------------------------------------------------------ REST

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        recorded = await self._record(request, path)
        injected = self._take_injected(request.method, path)
        if injected is not None:
            return _json(injected.body, injected.status, injected.headers)
        if _needs_auth(path) and request.headers.get("Authorization") != f"Bot {self.token}":
            return _json({"message": "401: Unauthorized", "code": 0}, 401)
        if self.reject_token and path == "/users/@me":
            return _json({"message": "401: Unauthorized", "code": 0}, 401)
        return self._route(request.method, path, recorded)

    async def _record(self, request: web.Request, path: str) -> Recorded:
        payload: Any = None
        files: list[tuple[str, bytes]] = []
        if request.content_type == "application/json":
            payload = await request.json()
        elif request.content_type == "multipart/form-data":
            payload, files = await _read_multipart(request)
        recorded = Recorded(
            request.method, path, dict(request.query), payload, files, dict(request.headers)
        )
        self.requests.append(recorded)
        parts = path.strip("/").split("/")
        if request.method == "POST" and parts[0] == "channels" and parts[-1] == "messages":
            self._posted.setdefault(int(parts[1]), []).append(recorded)
        await self._notify()
        return recorded

    def _take_injected(self, method: str, path: str) -> Injected | None:
        for injected in self._injected:
            if injected.method == method and path.startswith(injected.path_prefix):
                injected.count -= 1
                if injected.count <= 0:
                    self._injected.remove(injected)
                return injected
        return None

    def _route(self, method: str, path: str, recorded: Recorded) -> web.Response:
        parts = path.strip("/").split("/")
        body = recorded.json if isinstance(recorded.json, dict) else {}
        if (method, path) == ("GET", "/users/@me"):
            return _json(self.bot)
        if (method, path) == ("GET", "/oauth2/applications/@me"):
            return _json(self._application())
        if (method, path) == ("GET", "/gateway/bot"):
            return _json(self._gateway_bot())
        if (method, path) == ("POST", "/users/@me/channels"):  # open a DM
            recipient = int(body["recipient_id"])
            return _json(
                {
                    "id": str(dm_channel_of(recipient)),
                    "type": 1,
                    "last_message_id": None,
                    "recipients": [user_payload(recipient, "someone")],
                }
            )
        if method == "POST" and parts[0] == "channels" and parts[-1] == "typing":
            return web.Response(status=204)
        if method == "POST" and parts[0] == "channels" and parts[-1] == "messages":
            created = self._created_message(int(parts[1]), body, recorded.files)
            self._reading.setdefault(int(parts[1]), {})[created["id"]] = created["content"]
            recorded.created_id = created["id"]
            return _json(created)
        if method == "PATCH" and parts[0] == "channels" and parts[2] == "messages":
            edited = self._created_message(int(parts[1]), body, recorded.files)
            self._reading.setdefault(int(parts[1]), {})[parts[3]] = edited["content"]
            return _json(edited | {"id": parts[3], "edited_timestamp": iso(datetime.now(UTC))})
        if method == "DELETE" and parts[0] == "channels" and parts[2] == "messages":
            self._reading.get(int(parts[1]), {}).pop(parts[3], None)
            return web.Response(status=204)
        if method == "PUT" and parts[0] == "applications" and parts[-1] == "commands":
            guild = int(parts[3]) if len(parts) == 5 else None
            return _json([self._synced_command(c, guild) for c in recorded.json])
        if method == "POST" and parts[0] == "interactions":
            return _json(self._callback(int(parts[1]), body))
        if parts[0] == "webhooks" and method in {"POST", "PATCH"}:
            return _json(self._created_message(self.channel_id, body, recorded.files))
        if parts[0] == "webhooks" and method == "DELETE":
            return web.Response(status=204)
        return _json({"message": "404: Not Found", "code": 0}, 404)

    def _application(self) -> dict[str, Any]:
        return {
            "id": str(self.application_id),
            "name": "MemoryBot",
            "icon": None,
            "description": "",
            "rpc_origins": [],
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": user_payload(snowflake(), "Owner"),
            "summary": "",
            "verify_key": "0" * 64,
            "team": None,
            "flags": 1 << 19,  # GATEWAY_MESSAGE_CONTENT_LIMITED
            "interactions_endpoint_url": None,
        }

    def _gateway_bot(self) -> dict[str, Any]:
        return {
            "url": self.gateway_url,
            "shards": self.shards,
            "session_start_limit": {
                "total": 1000,
                "remaining": 999,
                "reset_after": 14_400_000,
                "max_concurrency": 1,
            },
        }

    def _created_message(
        self, channel_id: int, body: dict[str, Any], files: list[tuple[str, bytes]]
    ) -> dict[str, Any]:
        return self.message_payload(
            author=self.bot,
            content=str(body.get("content") or ""),
            channel_id=channel_id,
            attachments=[self.attachment_payload(name, len(data)) for name, data in files],
            flags=int(body.get("flags") or 0),
        )

    def _synced_command(self, command: dict[str, Any], guild: int | None) -> dict[str, Any]:
        synced = dict(command, id=str(snowflake()), application_id=str(self.application_id))
        synced["version"] = str(snowflake())
        if guild is not None:
            synced["guild_id"] = str(guild)
        return synced

    def _callback(self, interaction_id: int, body: dict[str, Any]) -> dict[str, Any]:
        data = body.get("data") or {}
        ephemeral = bool(int(data.get("flags") or 0) & FLAG_EPHEMERAL)
        message = self._created_message(self.channel_id, data, [])
        response: dict[str, Any] = {
            "interaction": {
                "id": str(interaction_id),
                "type": 2,
                "response_message_id": message["id"],
                "response_message_loading": body.get("type") == 5,
                "response_message_ephemeral": ephemeral,
            },
            "resource": {"type": body.get("type"), "message": message},
        }
        return response

    # ------------------------------------------------------------------ payload builders

    def attachment_payload(
        self,
        filename: str,
        size: int,
        *,
        data: bytes | None = None,
        content_type: str = "application/octet-stream",
        voice: bool = False,
    ) -> dict[str, Any]:
        """An attachment; with ``data``, its URL serves those bytes (a CDN on 127.0.0.1)."""
        attachment_id = snowflake()
        url = f"http://127.0.0.1:{self.port}/attachments/{attachment_id}/{filename}"
        if data is not None:
            self._files[str(attachment_id)] = data
        payload: dict[str, Any] = {
            "id": str(attachment_id),
            "filename": filename,
            "size": size,
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
        }
        if voice:
            payload |= {"flags": 0, "duration_secs": 3.0, "waveform": "AAAA"}
        return payload

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        data = self._files.get(request.match_info["id"])
        if data is None:
            return web.Response(status=404, text="Not Found")
        self.downloads.append(request.match_info["id"])
        await self._notify()
        return web.Response(body=data, content_type="application/octet-stream")

    def message_payload(
        self,
        *,
        author: dict[str, Any],
        content: str,
        channel_id: int,
        guild: bool = False,
        mentions: list[dict[str, Any]] | None = None,
        attachments: list[dict[str, Any]] | None = None,
        referenced: dict[str, Any] | None = None,
        webhook_id: int | None = None,
        sent_at: datetime | None = None,
        kind: int = 0,
        flags: int = 0,
    ) -> dict[str, Any]:
        at = sent_at or datetime.now(UTC)
        payload: dict[str, Any] = {
            "id": str(snowflake(at)),
            "channel_id": str(channel_id),
            "author": author,
            "content": content,
            "timestamp": iso(at),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": "@everyone" in content,
            "mentions": mentions or [],
            "mention_roles": [],
            "attachments": attachments or [],
            "embeds": [],
            "pinned": False,
            "type": kind,
            "flags": flags,
        }
        if guild:
            payload["guild_id"] = str(self.guild_id)
            payload["member"] = _member(None)
        if referenced is not None:
            payload["type"] = 19  # a reply
            payload["message_reference"] = {
                "type": 0,
                "message_id": referenced["id"],
                "channel_id": referenced["channel_id"],
                "guild_id": referenced.get("guild_id"),
            }
            payload["referenced_message"] = referenced
        if webhook_id is not None:
            payload["webhook_id"] = str(webhook_id)
        return payload

    def guild_payload(self) -> dict[str, Any]:
        everyone = {
            "id": str(self.guild_id),
            "name": "@everyone",
            "permissions": str(1024 | 2048),
            "position": 0,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }
        members_role = dict(everyone, id=str(self.role_id), name="members", position=1)
        channel = {
            "id": str(self.channel_id),
            "type": 0,
            "guild_id": str(self.guild_id),
            "name": "general",
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
        }
        return {
            "id": str(self.guild_id),
            "name": "Test Server",
            "icon": None,
            "owner_id": str(snowflake()),
            "region": "",
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": [everyone, members_role],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "joined_at": iso(datetime.now(UTC)),
            "large": False,
            "unavailable": False,
            "member_count": 3,
            "voice_states": [],
            "members": [_member(self.bot)],
            "channels": [channel],
            "threads": [],
            "presences": [],
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
        }

    def interaction_payload(
        self,
        name: str,
        user: dict[str, Any],
        *,
        options: dict[str, str] | None = None,
        subcommand: str | None = None,
        guild: bool = True,
        dm_channel_id: int | None = None,
    ) -> dict[str, Any]:
        data: dict[str, Any] = {"id": str(snowflake()), "name": name, "type": 1}
        values = [{"name": k, "type": 3, "value": v} for k, v in (options or {}).items()]
        if subcommand is not None:  # a group's subcommand carries the options one level down
            data["options"] = [{"name": subcommand, "type": 1, "options": values}]
        elif values:
            data["options"] = values
        payload: dict[str, Any] = {
            "id": str(snowflake()),
            "application_id": str(self.application_id),
            "type": 2,
            "data": data,
            "token": f"interaction-token-{snowflake()}",
            "version": 1,
            "app_permissions": "0",
            "locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)},
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if guild:
            channel = {"id": str(self.channel_id), "type": 0, "guild_id": str(self.guild_id)}
            payload |= {
                "guild_id": str(self.guild_id),
                "channel_id": str(self.channel_id),
                "channel": channel,
                "member": _member(user) | {"permissions": "0"},
                "guild_locale": "en-US",
                "context": 0,
            }
        else:
            channel_id = str(dm_channel_id or snowflake())
            payload |= {
                "channel_id": channel_id,
                "channel": {"id": channel_id, "type": 1, "recipients": [user]},
                "user": user,
                "context": 1,
            }
        return payload

    # ------------------------------------------------------------------ gateway: driving

    async def dispatch(self, event: str, data: dict[str, Any], shard: int = 0) -> None:
        """Send an event to the bot (or keep it for replay if the connection is down)."""
        session = self._sessions[shard]
        session.seq += 1
        frame = {"op": OP_DISPATCH, "t": event, "s": session.seq, "d": data}
        session.backlog.append(frame)
        if event == "MESSAGE_CREATE":
            self.dispatched_at[int(data["id"])] = time.perf_counter()
        if session.socket is not None and not session.socket.closed:
            await session.socket.send_str(json.dumps(frame))

    async def send_message(self, **kwargs: Any) -> dict[str, Any]:
        """Build a MESSAGE_CREATE payload (see ``message_payload``) and dispatch it, on the
        guild's shard (direct messages go to shard 0, as Discord sends them)."""
        payload = self.message_payload(**kwargs)
        shard = _guild_shard(self.guild_id, self.shards) if kwargs.get("guild") else 0
        await self.dispatch("MESSAGE_CREATE", payload, shard)
        return payload

    def connected(self, shard: int) -> bool:
        """Whether a client runs ``shard`` now (identified or resumed, its socket open)."""
        session = self._sessions.get(shard)
        return session is not None and session.socket is not None and not session.socket.closed

    async def send_command(self, name: str, user: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        payload = self.interaction_payload(name, user, **kwargs)
        await self.dispatch("INTERACTION_CREATE", payload)
        return payload

    async def drop_connection(self, shard: int = 0, code: int = 4000) -> None:
        """Close the live gateway socket with a resumable code (4000 = unknown error)."""
        session = self._sessions[shard]
        socket, session.socket = session.socket, None
        if socket is not None:
            await socket.close(code=code, message=b"dropped by test")

    # ------------------------------------------------------------------ gateway: protocol

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        self._sockets.add(socket)
        self.connections += 1
        await socket.send_json({"op": OP_HELLO, "d": {"heartbeat_interval": self.heartbeat_ms}})
        try:
            async for frame in socket:
                if frame.type.name != "TEXT":
                    break
                payload = json.loads(frame.data)
                self.gateway_received.append(payload)
                await self._on_gateway_payload(socket, payload)
                await self._notify()
        finally:
            self._sockets.discard(socket)
            for session in self._sessions.values():
                if session.socket is socket:
                    session.socket = None
            await self._notify()
        return socket

    async def _on_gateway_payload(
        self, socket: web.WebSocketResponse, payload: dict[str, Any]
    ) -> None:
        op, data = payload.get("op"), payload.get("d") or {}
        if op == OP_HEARTBEAT:
            await socket.send_json({"op": OP_HEARTBEAT_ACK})
        elif op == OP_IDENTIFY:
            await self._identify(socket, data)
        elif op == OP_RESUME:
            await self._resume(socket, data)

    async def _identify(self, socket: web.WebSocketResponse, data: dict[str, Any]) -> None:
        if data.get("token") != self.token:
            await socket.close(code=4004, message=b"Authentication failed.")
            return
        if self.close_code_after_identify is not None:
            await socket.close(code=self.close_code_after_identify, message=b"Disallowed intents")
            return
        shard = (data.get("shard") or [0, 1])[0]
        self.identified.append((shard, time.perf_counter()))
        session = self._sessions[shard] = _Session(f"session-{snowflake()}", shard, socket=socket)
        ready = {
            "v": 10,
            "user": self.bot,
            "guilds": [{"id": str(self.guild_id), "unavailable": True}],
            "session_id": session.session_id,
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 1 << 19},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
        }
        if data.get("shard"):
            ready["shard"] = data["shard"]
        await self.dispatch("READY", ready, shard)
        if _guild_shard(self.guild_id, self.shards) == shard:
            await self.dispatch("GUILD_CREATE", self.guild_payload(), shard)

    async def _resume(self, socket: web.WebSocketResponse, data: dict[str, Any]) -> None:
        session = next(
            (s for s in self._sessions.values() if s.session_id == data.get("session_id")), None
        )
        if session is None or data.get("token") != self.token:
            await socket.send_json({"op": OP_INVALID_SESSION, "d": False})
            return
        session.socket = socket
        for frame in session.backlog:
            if frame["s"] > (data.get("seq") or 0):
                self.replayed.append(frame)
                await socket.send_str(json.dumps(frame))
        await self.dispatch("RESUMED", {}, session.shard)


def _guild_shard(guild_id: int, shards: int) -> int:
    return (guild_id >> 22) % shards


def snowflake_on_shard(shard: int, shards: int) -> int:
    """A guild id whose events Discord sends on ``shard`` (of ``shards``)."""
    ms = snowflake() >> 22
    return ((ms - ms % shards + shard) << 22) | (next(_increment) & 0x3FFFFF)


def _member(user: dict[str, Any] | None) -> dict[str, Any]:
    member: dict[str, Any] = {
        "roles": [],
        "joined_at": iso(datetime.now(UTC)),
        "nick": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
    }
    if user is not None:
        member["user"] = user
    return member


def _needs_auth(path: str) -> bool:
    """Interaction callbacks and webhook follow-ups are authorised by their token in the path."""
    return not path.startswith(("/interactions/", "/webhooks/"))


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # Exactly "application/json": discord.py only parses JSON when the header is that string, so
    # aiohttp's json_response ("application/json; charset=utf-8") would not do.
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


async def _read_multipart(request: web.Request) -> tuple[Any, list[tuple[str, bytes]]]:
    payload: Any = None
    files: list[tuple[str, bytes]] = []
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue
        data = await part.read()
        if part.name == "payload_json":
            payload = json.loads(data)
        else:
            files.append((part.filename or "", bytes(data)))
    return payload, files
