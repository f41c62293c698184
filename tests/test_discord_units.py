"""Pure parts of the Discord adapter: message translation, reply planning, mentions, slash
command building, endpoints and fatal-error lines. Messages are real ``discord.Message`` objects
built from the same payloads the fake gateway sends."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import discord
import pytest

from agentcore.commands import ADMIN_VERBS, USER_COMMANDS, CommandInfo
from agentcore.types import AgentKey, Attachment, ChatKind, Reply
from bots.discord.connect import (
    BAD_TOKEN,
    MISSING_INTENT,
    fatal_reason,
    intents,
    make_client,
    rest_base,
)
from bots.discord.send import (
    MESSAGE_LIMIT,
    NO_PINGS,
    allowed_mentions_for,
    plan_messages,
)
from bots.discord.slash import build_app_commands, option_name
from bots.discord.translate import (
    DiscordRoute,
    addresses_bot,
    content_notice,
    to_inbound,
)
from tests.fakes.discord_server import FakeDiscord, snowflake, user_payload

if TYPE_CHECKING:  # a runtime import would be circular inside discord.py
    from discord.types.message import Message as MessagePayload

FAKE = FakeDiscord()  # only its payload builders are used here
BOT_ID = FAKE.bot_id
ALICE = user_payload(snowflake(), "Alice")
BOB = user_payload(snowflake(), "Bob")


def state(*, cached_guild: bool = False) -> Any:
    client = discord.Client(intents=intents())
    connection = client._connection
    connection.user = discord.ClientUser(state=connection, data=FAKE.bot)  # type: ignore[arg-type]
    if cached_guild:
        connection._add_guild_from_data(FAKE.guild_payload())  # type: ignore[arg-type]
    return connection


def message(**kwargs: Any) -> discord.Message:
    """A ``discord.Message`` from a fake MESSAGE_CREATE payload (guild not cached by default)."""
    cached_guild = kwargs.pop("cached_guild", False)
    kwargs.setdefault("author", ALICE)
    kwargs.setdefault("channel_id", FAKE.channel_id if kwargs.get("guild") else snowflake())
    payload = FAKE.message_payload(**kwargs)
    connection = state(cached_guild=cached_guild)
    channel, _ = connection._get_guild_channel(payload)
    return discord.Message(state=connection, channel=channel, data=cast("MessagePayload", payload))


# ---------------------------------------------------------------- translation


def test_a_dm_becomes_a_private_message_from_the_author_with_its_own_timestamp() -> None:
    sent = datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
    msg = message(content="hello there", sent_at=sent)
    inbound = to_inbound(msg, BOT_ID)
    assert inbound is not None
    assert inbound.key == AgentKey("discord", ALICE["id"])
    assert inbound.text == "hello there"
    assert inbound.sent_at == sent
    assert inbound.display_name == "Alice"
    assert inbound.chat is ChatKind.PRIVATE
    assert DiscordRoute.parse(inbound.route) == DiscordRoute(msg.channel.id, msg.id, None)


@pytest.mark.parametrize("cached_guild", [True, False])
def test_a_guild_mention_is_a_group_message_with_the_mention_stripped(cached_guild: bool) -> None:
    msg = message(
        content=f"<@{BOT_ID}>, what did I tell you about <@{BOB['id']}>?",
        guild=True,
        mentions=[FAKE.bot, BOB],
        cached_guild=cached_guild,
    )
    inbound = to_inbound(msg, BOT_ID)
    assert inbound is not None
    assert inbound.text == "what did I tell you about @Bob?"
    assert inbound.chat is ChatKind.GROUP
    route = DiscordRoute.parse(inbound.route)
    assert (route.guild_id, route.channel_id, route.message_id) == (
        FAKE.guild_id,
        FAKE.channel_id,
        msg.id,
    )


def test_the_nickname_form_of_the_mention_is_stripped_too() -> None:
    inbound = to_inbound(message(content=f"hey <@!{BOT_ID}> hi", guild=True), BOT_ID)
    assert inbound is not None and inbound.text == "hey hi"


def test_guild_chatter_and_everyone_pings_are_not_for_the_bot() -> None:
    assert to_inbound(message(content="just chatting", guild=True), BOT_ID) is None
    assert to_inbound(message(content="@everyone meeting now", guild=True), BOT_ID) is None
    assert to_inbound(message(content=f"<@{BOB['id']}> hi", guild=True), BOT_ID) is None


def test_a_reply_to_the_bot_addresses_it_without_a_mention() -> None:
    bots_message = FAKE.message_payload(
        author=FAKE.bot, content="earlier answer", channel_id=FAKE.channel_id, guild=True
    )
    msg = message(content="tell me more", guild=True, referenced=bots_message)
    assert addresses_bot(msg, BOT_ID)
    inbound = to_inbound(msg, BOT_ID)
    assert inbound is not None and inbound.text == "tell me more"
    other = FAKE.message_payload(author=BOB, content="hi", channel_id=FAKE.channel_id, guild=True)
    assert to_inbound(message(content="agreed", guild=True, referenced=other), BOT_ID) is None


def test_bots_webhooks_itself_and_system_messages_are_ignored() -> None:
    other_bot = user_payload(snowflake(), "OtherBot", bot=True)
    assert to_inbound(message(author=other_bot, content="hi"), BOT_ID) is None
    assert to_inbound(message(author=FAKE.bot, content="hi"), BOT_ID) is None
    assert to_inbound(message(content="hi", webhook_id=snowflake()), BOT_ID) is None
    pinned = message(content="", kind=discord.MessageType.pins_add.value)
    assert to_inbound(pinned, BOT_ID) is None


def test_attachments_go_to_the_core_and_only_stickers_alone_get_a_notice() -> None:
    photo = FAKE.attachment_payload("cat.png", 1234)
    alone = message(content="", attachments=[photo])
    inbound = to_inbound(alone, BOT_ID)
    assert inbound is not None and content_notice(alone, inbound) is None
    captioned = message(content="look at my cat", attachments=[photo])
    inbound = to_inbound(captioned, BOT_ID)
    assert inbound is not None and inbound.text == "look at my cat"
    assert content_notice(captioned, inbound) is None
    bare_mention = message(content=f"<@{BOT_ID}>", guild=True)
    inbound = to_inbound(bare_mention, BOT_ID)
    assert inbound is not None and inbound.text == ""
    assert content_notice(bare_mention, inbound) is None  # the core answers empty text


def test_routes_round_trip_and_reject_garbage() -> None:
    route = DiscordRoute(1, 2, 3)
    assert DiscordRoute.parse(route.to_json()) == route
    assert DiscordRoute.parse(DiscordRoute(1, 2).to_json()) == DiscordRoute(1, 2, None)
    for garbage in ("", "[]", '{"channel": 1}', "not json"):
        with pytest.raises(ValueError):
            DiscordRoute.parse(garbage)


# ---------------------------------------------------------------- replies


def test_a_long_reply_is_planned_as_ordered_parts_with_files_on_the_last() -> None:
    export = Attachment("memory.af", b"{}", "application/json")
    planned = plan_messages(Reply("word " * 1000, attachments=(export,)))
    assert len(planned) == 3
    assert all(p.content and len(p.content) <= MESSAGE_LIMIT for p in planned)
    assert [p.attachments for p in planned] == [(), (), (export,)]


def test_files_alone_and_many_files_are_planned() -> None:
    files = tuple(Attachment(f"f{i}.txt", b"x") for i in range(12))
    planned = plan_messages(Reply("", attachments=files))
    assert [(p.content, len(p.attachments)) for p in planned] == [(None, 10), (None, 2)]
    assert plan_messages(Reply("  ")) == []


def test_only_the_author_may_be_pinged_and_only_when_mentioned() -> None:
    author = 42
    assert allowed_mentions_for("@everyone @here <@&7> hi", author) is NO_PINGS
    assert dict(NO_PINGS.to_dict()) == {"parse": []}
    pinging = allowed_mentions_for("thanks <@42>!", author).to_dict()
    assert pinging == {"parse": [], "users": [42], "replied_user": True}
    assert allowed_mentions_for("thanks <@!42>", author).to_dict()["users"] == [42]
    assert allowed_mentions_for("thanks <@420>", author) is NO_PINGS


# ---------------------------------------------------------------- slash commands


async def _ignore(interaction: discord.Interaction, name: str, args: str) -> None:
    return None


def test_every_core_command_becomes_a_slash_command() -> None:
    *built, admin = build_app_commands(_ignore)
    assert [c.name for c in built] == [c.name for c in USER_COMMANDS]
    assert [c.description for c in built] == [c.description for c in USER_COMMANDS]
    assert isinstance(admin, discord.app_commands.Group) and admin.name == "admin"
    assert [c.name for c in admin.commands] == [v.name for v in ADMIN_VERBS]


def test_a_usage_with_an_argument_gives_one_optional_text_option() -> None:
    search = CommandInfo("search", "Search your past messages", "/search <words>")
    admin = CommandInfo("admin", "Operator commands", "/admin <verb> [args]")
    plain = CommandInfo("reset", "Start afresh", "/reset")
    assert [option_name(c) for c in (search, admin, plain)] == ["words", "arguments", None]
    assert option_name(CommandInfo("x", "y", "free text")) == "free"
    tree = discord.app_commands.CommandTree(discord.Client(intents=intents()))
    payloads = [c.to_dict(tree) for c in build_app_commands(_ignore, (search, plain), ())]
    option = payloads[0]["options"][0]
    assert (option["name"], option["type"], option["required"]) == ("words", 3, False)
    assert option["description"] == "/search <words>"
    assert payloads[1]["options"] == []


# ---------------------------------------------------------------- connection


def test_rest_base_adds_the_api_path_to_a_bare_host() -> None:
    assert rest_base("http://127.0.0.1:8080") == "http://127.0.0.1:8080/api/v10"
    assert rest_base("http://127.0.0.1:8080/") == "http://127.0.0.1:8080/api/v10"
    assert rest_base("https://proxy.example/api/v10/") == "https://proxy.example/api/v10"


def test_the_client_asks_for_message_content_and_pings_nobody() -> None:
    for sharded, cls in ((False, discord.Client), (True, discord.AutoShardedClient)):
        client = make_client(sharded=sharded)
        assert type(client) is cls
        assert client.intents.message_content and client.intents.dm_messages
        assert client.intents.guild_messages and not client.intents.members
        assert client.allowed_mentions is not None
        assert dict(client.allowed_mentions.to_dict()) == {"parse": []}


def test_fatal_errors_name_their_fix() -> None:
    assert fatal_reason(discord.LoginFailure("Improper token")) == BAD_TOKEN
    assert fatal_reason(discord.PrivilegedIntentsRequired(None)) == MISSING_INTENT
    assert "DISCORD_TOKEN" in BAD_TOKEN and "Message Content Intent" in MISSING_INTENT
    refused = fatal_reason(ConnectionRefusedError(111, "Connection refused"))
    assert refused is not None and refused.startswith("cannot reach Discord (REST ")
    with pytest.raises(AttributeError) as failed_first_connect:
        _discord_failing_its_first_connect()
    assert fatal_reason(failed_first_connect.value) == refused
    assert fatal_reason(RuntimeError("a bug")) is None


def _discord_failing_its_first_connect() -> None:
    """discord.py 2.7 reads ``self.ws.sequence`` (still None) after a failed first connect."""
    try:
        raise ConnectionRefusedError(111, "Connection refused")
    except OSError:
        raise AttributeError("'NoneType' object has no attribute 'sequence'")  # noqa: B904


def test_a_route_json_is_small() -> None:
    route = DiscordRoute(snowflake(), snowflake(), snowflake())
    assert set(json.loads(route.to_json())) == {"channel", "message", "guild"}
    assert len(route.to_json()) < 100
