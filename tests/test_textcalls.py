"""The text tool-call and reasoning reader on real samples of each format, and near misses.

Samples are as the model families write them (Hermes 2 Pro, Qwen 2.5/3, Mistral 7B v0.3 and
Small 3.x, Llama 3.1/3.2), with the whitespace their chat templates produce.
"""

from __future__ import annotations

import json

import pytest

from agentcore.llm.textcalls import ReadText, TextCall, read_tool_calls, strip_reasoning

TOOLS = {
    "core_memory_append",
    "core_memory_replace",
    "conversation_search",
    "archival_memory_insert",
    "send_message",
}
APPEND = {"label": "human", "content": "Sister Ana lives in Lisbon"}


def call(name: str, **arguments: object) -> TextCall:
    return TextCall(name, json.dumps(arguments, ensure_ascii=False))


def read(text: str) -> ReadText:
    return read_tool_calls(text, TOOLS)


# --------------------------------------------------------------------- recognised formats


def test_hermes_2_pro() -> None:
    text = (
        "<tool_call>\n"
        '{"arguments": {"label": "human", "content": "Sister Ana lives in Lisbon"}, '
        '"name": "core_memory_append"}\n'
        "</tool_call>"
    )
    assert read(text) == ReadText("", (call("core_memory_append", **APPEND),))


def test_qwen_two_calls_with_text_before() -> None:
    text = (
        "Let me note that and look back.\n"
        "<tool_call>\n"
        '{"name": "core_memory_append", "arguments": {"label": "human", "content": '
        '"Sister Ana lives in Lisbon"}}\n'
        "</tool_call>\n"
        "<tool_call>\n"
        '{"name": "conversation_search", "arguments": {"query": "sister"}}\n'
        "</tool_call>"
    )
    assert read(text) == ReadText(
        "Let me note that and look back.",
        (call("core_memory_append", **APPEND), call("conversation_search", query="sister")),
    )


def test_qwen3_thinking_then_call() -> None:
    text = (
        "<think>\nThe user told me where their sister lives. I should save it.\n</think>\n\n"
        '<tool_call>\n{"name": "core_memory_append", "arguments": {"label": "human", '
        '"content": "Sister Ana lives in Lisbon"}}\n</tool_call>'
    )
    assert read(strip_reasoning(text)) == ReadText("", (call("core_memory_append", **APPEND),))


def test_unclosed_tool_call_at_the_end() -> None:
    text = '<tool_call>\n{"name": "conversation_search", "arguments": {"query": "sister"}}\n'
    assert read(text).calls == (call("conversation_search", query="sister"),)


def test_mistral_v3_list() -> None:
    text = (
        '[TOOL_CALLS] [{"name": "core_memory_append", "arguments": {"label": "human", '
        '"content": "Sister Ana lives in Lisbon"}}]</s>'
    )
    assert read(text) == ReadText("", (call("core_memory_append", **APPEND),))


def test_mistral_nemo_with_ids() -> None:
    text = (
        '[TOOL_CALLS][{"name": "conversation_search", "arguments": {"query": "sister"}, '
        '"id": "aBcDeFgH9"}, {"name": "core_memory_append", "arguments": {"label": "human", '
        '"content": "Sister Ana lives in Lisbon"}, "id": "zYxWvUt12"}]'
    )
    assert read(text).calls == (
        call("conversation_search", query="sister"),
        call("core_memory_append", **APPEND),
    )


def test_mistral_small_named_form() -> None:
    text = (
        '[TOOL_CALLS]conversation_search[ARGS]{"query": "sister"}'
        '[TOOL_CALLS]core_memory_append[CALL_ID]a1b2c3d4e[ARGS]{"label": "human", '
        '"content": "Sister Ana lives in Lisbon"}'
    )
    assert read(text).calls == (
        call("conversation_search", query="sister"),
        call("core_memory_append", **APPEND),
    )


def test_llama_python_tag_json() -> None:
    text = (
        '<|python_tag|>{"name": "core_memory_append", "parameters": {"label": "human", '
        '"content": "Sister Ana lives in Lisbon"}}<|eom_id|>'
    )
    assert read(text) == ReadText("", (call("core_memory_append", **APPEND),))


def test_llama_python_tag_builtin_call_syntax() -> None:
    text = '<|python_tag|>conversation_search.call(query="sister", limit=5)<|eom_id|>'
    assert read(text).calls == (call("conversation_search", query="sister", limit=5),)


def test_llama_bare_json_with_parameters() -> None:
    text = (
        '{"name": "core_memory_append", "parameters": {"label": "human", '
        '"content": "Sister Ana lives in Lisbon"}}'
    )
    assert read(text) == ReadText("", (call("core_memory_append", **APPEND),))


def test_bare_json_followed_by_words() -> None:
    text = (
        '{"name": "core_memory_append", "arguments": {"label": "human", "content": '
        '"Sister Ana lives in Lisbon"}}\nI have saved that.'
    )
    assert read(text) == ReadText("I have saved that.", (call("core_memory_append", **APPEND),))


def test_fenced_json_call() -> None:
    text = (
        "I'll remember that.\n```json\n"
        '{"name": "core_memory_append", "arguments": {"label": "human", "content": '
        '"Sister Ana lives in Lisbon"}}\n```'
    )
    assert read(text) == ReadText("I'll remember that.", (call("core_memory_append", **APPEND),))


def test_openai_wrapped_and_prefixed_names() -> None:
    text = (
        '<tool_call>{"type": "function", "function": {"name": "functions.conversation_search", '
        '"arguments": "{\\"query\\": \\"sister\\"}"}}</tool_call>'
    )
    assert read(text).calls == (TextCall("conversation_search", '{"query": "sister"}'),)


def test_single_quoted_python_dict_inside_markers() -> None:
    text = (
        "<tool_call>{'name': 'conversation_search', 'arguments': {'query': 'sister'}}</tool_call>"
    )
    assert read(text).calls == (call("conversation_search", query="sister"),)


def test_unicode_survives_canonical_form() -> None:
    text = (
        '<tool_call>{"name": "core_memory_append", "arguments": {"label": "human", '
        '"content": "Zoë lebt in Köln 🏡"}}</tool_call>'
    )
    [found] = read(text).calls
    assert json.loads(found.arguments)["content"] == "Zoë lebt in Köln 🏡"
    assert "Köln" in found.arguments  # stored as written, not \\u-escaped


# --------------------------------------------------------------------- broken calls


def test_broken_json_in_markers_is_a_call_that_will_not_parse() -> None:
    text = (
        "<tool_call>\n"
        '{"name": "core_memory_append", "arguments": {"label": "human", "content": "Ana"}\n'
        "</tool_call>"
    )
    [broken] = read(text).calls
    assert broken.name == "core_memory_append" and read(text).text == ""
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.arguments)


def test_markers_with_no_name_are_a_nameless_call() -> None:
    assert read("<tool_call>save this please</tool_call>") == ReadText(
        "", (TextCall("", "save this please"),)
    )


def test_bare_call_to_a_known_tool_that_breaks_off() -> None:
    text = '{"name": "core_memory_append", "arguments": {"label": "human", "content": "Ana'
    assert read(text) == ReadText("", (TextCall("core_memory_append", text),))


def test_mistral_named_form_with_broken_arguments() -> None:
    [broken] = read('[TOOL_CALLS]conversation_search[ARGS]{"query": "sis').calls
    assert broken.name == "conversation_search" and broken.arguments == '{"query": "sis'


# --------------------------------------------------------------------- near misses


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "Brad", "age": 30}',  # JSON about a person, not a call
        '{"name": "Lisbon", "arguments": {"population": 545000}}',  # names no tool
        '{"name": "core_memory_append"}',  # a known name but no arguments: talk about a tool
        'Here is your data:\n```json\n{"city": "Lisbon"}\n```',
        'You could call it like {"name": "conversation_search", "arguments": {"query": "x"}}.',
        "[1] Lisbon is the capital. [2] Porto is second.",
        "Mistral models emit a [TOOL_CALLS] token before their calls.",
        "I like JSON. {not json at all",
        "```python\nprint({'name': 'core_memory_append', 'arguments': {}})\n```",
    ],
)
def test_near_misses_stay_ordinary_replies(text: str) -> None:
    assert read(text) == ReadText(text.strip())


def test_plain_text_is_untouched() -> None:
    assert read("  Your sister Ana lives in Lisbon.\n") == ReadText(
        "Your sister Ana lives in Lisbon."
    )


def test_stray_template_tokens_are_removed() -> None:
    assert read("Your sister lives in Lisbon.<|eot_id|>") == ReadText(
        "Your sister lives in Lisbon."
    )


def test_no_tools_offered_means_bare_json_is_text() -> None:
    text = '{"name": "core_memory_append", "arguments": {"label": "human", "content": "x"}}'
    assert read_tool_calls(text, ()) == ReadText(text)


# --------------------------------------------------------------------- reasoning


@pytest.mark.parametrize(
    ("text", "visible"),
    [
        (
            "<think>\nThey asked about Ana.\n</think>\n\nAna lives in Lisbon.",
            "Ana lives in Lisbon.",
        ),
        ("<think>first</think>Ana <think>second</think>lives in Lisbon.", "Ana lives in Lisbon."),
        ("<THINKING>x</THINKING>Hi", "Hi"),
        # DeepSeek-R1 / QwQ templates open the block in the prompt: only the closing tag comes.
        ("They asked about Ana, so...\n</think>\n\nAna lives in Lisbon.", "Ana lives in Lisbon."),
        ("<think>\nStill thinking when the tokens ran out", ""),
        ("<think>\n\n</think>", ""),
        ("Ana lives in Lisbon. <think>should I add more", "Ana lives in Lisbon."),
        ("No reasoning here.", "No reasoning here."),
        ("I think <thinking> is a nice word", "I think"),
    ],
)
def test_strip_reasoning(text: str, visible: str) -> None:
    assert strip_reasoning(text) == visible


_DEEP = "[" * 5000 + "]" * 5000


@pytest.mark.parametrize(
    ("text", "arguments"),
    [
        # Inside a marker it is a call attempt that names nothing and will not parse: the model
        # is told, the person is shown nothing.
        ("<tool_call>" + _DEEP + "</tool_call>", _DEEP),
        ("<|python_tag|>" + "(" * 3000, "(" * 3000),
        ("[TOOL_CALLS]" + "{" * 3000, "{" * 3000),
        ("<tool_call>\x00\ud800</tool_call>", "\x00\ud800"),
    ],
    ids=["hermes-deep", "llama-parens", "mistral-braces", "hermes-nul-surrogate"],
)
def test_hostile_markup_is_one_unreadable_call_and_nothing_shown(text: str, arguments: str) -> None:
    assert read(text) == ReadText("", (TextCall("", arguments),))


@pytest.mark.parametrize("text", [_DEEP, "{" * 10000], ids=["brackets", "braces"])
def test_hostile_text_without_markers_stays_an_ordinary_reply(text: str) -> None:
    assert read(text) == ReadText(text)
