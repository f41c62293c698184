"""Telegram update → InboundMessage: a pure function, tested on updates shaped like Telegram's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from telegram import Update

from agentcore.types import AgentKey, ChatKind, InboundMessage
from bots.telegram.translate import (
    BotIdentity,
    FileRef,
    Route,
    Unreadable,
    clean_text,
    file_refs,
    translate,
)
from tests.fakes.telegram_server import (
    BOT_ID,
    PHOTO,
    STICKER,
    VOICE,
    Chat,
    User,
    message_payload,
)

ME = BotIdentity(BOT_ID, "memo_test_bot")
BOT = User(BOT_ID, "Memo", "memo_test_bot", is_bot=True)
ALICE = User(1001, "Alice", "alice_w")
GROUP = Chat(-100555, "supergroup", "Friends")
WHEN = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)


def update(
    text: str | None = None,
    *,
    user: User = ALICE,
    chat: Chat | None = None,
    kind: str = "message",
    **options: Any,
) -> Update:
    chat = chat or Chat(user.id, "private", "")
    payload = message_payload(42, user, chat, text, date=WHEN, **options)
    parsed = Update.de_json({"update_id": 7, kind: payload}, None)
    assert parsed is not None
    return parsed


def inbound(result: object) -> InboundMessage:
    assert isinstance(result, InboundMessage), result
    return result


def test_private_text_uses_the_stable_id_and_the_message_date() -> None:
    message = inbound(translate(update("Hello there"), ME))
    assert message.key == AgentKey("telegram", "1001")
    assert message.text == "Hello there"
    assert message.sent_at == WHEN and message.sent_at.tzinfo is not None
    assert message.display_name == "Alice"
    assert message.chat is ChatKind.PRIVATE
    assert Route.from_json(message.route) == Route(1001, 42, None, 7)


def test_a_renamed_user_is_still_the_same_agent() -> None:
    renamed = User(1001, "Alicia", "alicia_new")
    assert inbound(translate(update("hi", user=renamed), ME)).key == AgentKey("telegram", "1001")


def test_display_name_falls_back_to_the_username() -> None:
    nameless = User(1002, "", "bob_b")
    assert inbound(translate(update("hi", user=nameless), ME)).display_name == "bob_b"


def test_an_old_message_keeps_its_own_date() -> None:
    weeks_ago = WHEN - timedelta(weeks=3)
    chat = Chat(ALICE.id, "private", "")
    payload = message_payload(1, ALICE, chat, "old news", date=weeks_ago)
    parsed = Update.de_json({"update_id": 1, "message": payload}, None)
    assert parsed is not None
    assert inbound(translate(parsed, ME)).sent_at == weeks_ago


@pytest.mark.parametrize(
    "text",
    ["What's the weather?", "@someone_else look at this", "/memory", "/memory@other_bot"],
)
def test_group_messages_not_for_us_are_ignored(text: str) -> None:
    assert translate(update(text, chat=GROUP), ME) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@memo_test_bot what do you know about me?", "what do you know about me?"),
        ("@Memo_Test_Bot, hi", "hi"),
        ("thanks @memo_test_bot!", "thanks!"),
        ("hey @memo_test_bot how are you", "hey how are you"),
        ("/memory@memo_test_bot", "/memory"),
        ("/search@memo_test_bot cats and dogs", "/search cats and dogs"),
    ],
)
def test_group_messages_for_us_are_cleaned_and_marked_as_group(text: str, expected: str) -> None:
    message = inbound(translate(update(text, chat=GROUP), ME))
    assert message.text == expected
    assert message.chat is ChatKind.GROUP
    assert message.key == AgentKey("telegram", "1001")  # the person's agent, not the group's
    assert Route.from_json(message.route).chat_id == GROUP.id


def test_a_reply_to_the_bot_in_a_group_is_for_us() -> None:
    ours = message_payload(9, BOT, GROUP, "I said this")
    message = inbound(translate(update("and why?", chat=GROUP, reply_to=ours), ME))
    assert message.text == "and why?" and message.chat is ChatKind.GROUP


def test_a_reply_to_someone_else_in_a_group_is_not() -> None:
    theirs = message_payload(9, User(3, "Carol"), GROUP, "hello")
    assert translate(update("and why?", chat=GROUP, reply_to=theirs), ME) is None


def test_a_mention_inside_another_word_is_not_a_mention() -> None:
    assert translate(update("mail me at x@memo_test_bot.com", chat=GROUP), ME) is None


def test_forum_topic_is_kept_in_the_route() -> None:
    forum = Chat(-100777, "supergroup", "Forum", is_forum=True)
    message = inbound(translate(update("@memo_test_bot hi", chat=forum, thread_id=55), ME))
    assert Route.from_json(message.route) == Route(-100777, 42, 55, 7)


def test_caption_is_text() -> None:
    message = inbound(translate(update(photo=PHOTO, caption="my cat, Tom"), ME))
    assert message.text == "my cat, Tom"


def test_caption_mention_addresses_the_bot_in_a_group() -> None:
    message = inbound(
        translate(update(photo=PHOTO, caption="@memo_test_bot cute?", chat=GROUP), ME)
    )
    assert message.text == "cute?"


def test_a_sticker_is_unreadable() -> None:
    result = translate(update(sticker=STICKER), ME)
    assert result == Unreadable(
        AgentKey("telegram", "1001"), ChatKind.PRIVATE, Route(1001, 42, None, 7)
    )


@pytest.mark.parametrize(
    ("content", "ref"),
    [
        ({"photo": PHOTO}, FileRef("p1", "photo.jpg", "image/jpeg", None)),
        ({"voice": VOICE}, FileRef("v1", "voice.ogg", "audio/ogg", None, voice=True)),
        (
            {
                "document": {
                    "file_id": "d1",
                    "file_unique_id": "u",
                    "file_name": "a.pdf",
                    "mime_type": "application/pdf",
                    "file_size": 5,
                }
            },
            FileRef("d1", "a.pdf", "application/pdf", 5),
        ),
    ],
)
def test_files_without_a_caption_are_messages_with_files(
    content: dict[str, Any], ref: FileRef
) -> None:
    upd = update(**content)
    assert inbound(translate(upd, ME)).text == ""
    assert upd.message is not None and file_refs(upd.message) == [ref]


def test_unaddressed_sticker_in_a_group_is_ignored() -> None:
    assert translate(update(chat=GROUP, sticker=STICKER), ME) is None


def test_edits_service_messages_bots_and_channels_are_ignored() -> None:
    assert translate(update("changed my mind", kind="edited_message"), ME) is None
    assert translate(update(chat=GROUP, new_chat_title="Renamed"), ME) is None
    other_bot = User(5, "Helper", "helper_bot", is_bot=True)
    assert translate(update("@memo_test_bot hi", user=other_bot, chat=GROUP), ME) is None
    channel = Chat(-100999, "channel", "News")
    assert translate(update("@memo_test_bot hi", chat=channel), ME) is None
    empty = Update.de_json({"update_id": 3}, None)
    assert empty is not None and translate(empty, ME) is None


def test_clean_text_leaves_other_names_alone() -> None:
    assert clean_text("/help@other_bot", "memo_test_bot") == "/help@other_bot"
    assert clean_text("ask @memo_test_bot_2", "memo_test_bot") == "ask @memo_test_bot_2"


def test_route_round_trips_and_rejects_garbage() -> None:
    route = Route(-100, 5, 9, 11)
    assert Route.from_json(route.to_json()) == route
    assert Route.from_json(Route(1, 2).to_json()) == Route(1, 2)
    for garbage in ["", "[]", '{"chat": 1}', '{"chat": "x", "message": 1}']:
        with pytest.raises(ValueError):
            Route.from_json(garbage)
