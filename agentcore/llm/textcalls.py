"""Reading what models write into their text instead of the API's fields.

Local models (Ollama, llama.cpp, vLLM) often answer a tool call in the message text rather than
in ``tool_calls``, each family in its own way, and reasoning models think aloud in ``<think>``.
These pure functions turn that text into what a disciplined model would have sent:

- ``strip_reasoning``: ``<think>…</think>`` removed (an unclosed one at the start swallows the
  rest; a closing tag without an opening one, as templates that open the block themselves
  produce, ends the reasoning).
- ``read_tool_calls``: tool calls written as text, recognised in these forms:

  ======================  ================================================================
  Hermes / Qwen           ``<tool_call>{"name": …, "arguments": {…}}</tool_call>`` (one or
                          more; the last may be unclosed)
  Mistral                 ``[TOOL_CALLS][{"name": …, "arguments": {…}}]`` and the newer
                          ``[TOOL_CALLS]name[ARGS]{…}``
  Llama 3.x               ``<|python_tag|>{"name": …, "parameters": {…}}`` or
                          ``<|python_tag|>name.call(key="value")``
  bare JSON               the reply *starts with* (or is a fenced block holding) an object
                          ``{"name": <a known tool>, "arguments"|"parameters": …}``
  ======================  ================================================================

Inside explicit markers every block is a call attempt: broken JSON becomes a call whose
arguments do not parse, so the model gets a tool error back and the person never sees markup.
Without markers only a known tool name with an arguments object counts: JSON that merely looks
like a call (``{"name": "Brad", "age": 30}``) stays an ordinary reply.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class TextCall:
    name: str  # "" when a broken call names nothing readable
    arguments: str  # canonical JSON when it parsed; otherwise the raw text, which will not


@dataclass(frozen=True, slots=True)
class ReadText:
    text: str  # what is left for the person, stripped
    calls: tuple[TextCall, ...] = ()


# --------------------------------------------------------------------- reasoning

_THINK_BLOCK = re.compile(r"<(think|thinking)>.*?</\1>", re.DOTALL | re.IGNORECASE)
_THINK_OPEN = re.compile(r"<(?:think|thinking)>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</(?:think|thinking)>", re.IGNORECASE)


def strip_reasoning(text: str) -> str:
    """The text without its reasoning blocks."""
    text = _THINK_BLOCK.sub("", text)
    closing = list(_THINK_CLOSE.finditer(text))
    if closing:  # the template opened the block in the prompt: all before the tag is thought
        text = text[closing[-1].end() :]
    opening = _THINK_OPEN.search(text)
    if opening:  # cut off mid-thought: nothing after the tag was meant for the person
        text = text[: opening.start()]
    return text.strip()


# --------------------------------------------------------------------- tool calls

_HERMES = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.DOTALL)
_MISTRAL = "[TOOL_CALLS]"
_MISTRAL_NAMED = re.compile(r"([\w.-]+)(?:\[CALL_ID\][\w-]*)?\[ARGS\]", re.DOTALL)
_PYTHON_TAG = "<|python_tag|>"
_LLAMA_ENDINGS = re.compile(r"<\|(?:eom_id|eot_id|end_of_text)\|>")
_FENCED = re.compile(r"```[ \t]*(?:json|tool_call|tool_code)?[ \t]*\n(.*?)```", re.DOTALL)
_NAME_IN_BROKEN = re.compile(r"""["']name["']\s*:\s*["']([^"']+)["']""")
_KNOWN_NAME_START = re.compile(r"""\A\{\s*["']name["']\s*:\s*["']([^"']+)["']""")
_ARGUMENT_KEYS = ("arguments", "parameters")
# Chat-template tokens a server failed to strip, and stray call tags: never for the person.
_STRAY_MARKUP = re.compile(r"<\|[a-z_]+\|>|</?tool_call>|</?tool_response>")


def read_tool_calls(text: str, tools: Collection[str]) -> ReadText:
    """The tool calls written in ``text`` and what is left of it for the person.

    ``tools`` are the names the request offered; without marker tags a call must name one.
    """
    read = ReadText(text)
    for reader in (_read_hermes, _read_mistral, _read_python_tag, _read_fenced, _read_bare):
        found = reader(text, tools)
        if found is not None:
            read = found
            break
    return ReadText(_STRAY_MARKUP.sub("", read.text).strip(), read.calls)


def _read_hermes(text: str, tools: Collection[str]) -> ReadText | None:
    blocks = list(_HERMES.finditer(text))
    if not blocks:
        return None
    calls = [call for block in blocks for call in _marked_calls(block.group(1), tools)]
    return ReadText(_HERMES.sub("", text).strip(), tuple(calls))


def _read_mistral(text: str, tools: Collection[str]) -> ReadText | None:
    if _MISTRAL not in text:
        return None
    before, _, rest = text.partition(_MISTRAL)
    calls: list[TextCall] = []
    for segment in rest.split(_MISTRAL):
        body = segment.strip().removesuffix("</s>").strip()
        named = _MISTRAL_NAMED.match(body)
        if named:
            arguments = _first_json(body[named.end() :])
            calls.append(TextCall(named.group(1), arguments))
        elif body.startswith(("[", "{")):
            calls.extend(_marked_calls(body, tools))
        else:
            return None  # the marker in prose, with no call after it
    return ReadText(before.strip(), tuple(calls))


def _read_python_tag(text: str, tools: Collection[str]) -> ReadText | None:
    if _PYTHON_TAG not in text:
        return None
    before, _, rest = text.partition(_PYTHON_TAG)
    body = _LLAMA_ENDINGS.sub("", rest).strip()
    calls = _python_calls(body, tools) if body else []
    return ReadText(before.strip(), tuple(calls))


def _read_fenced(text: str, tools: Collection[str]) -> ReadText | None:
    blocks = list(_FENCED.finditer(text))
    calls: list[TextCall] = []
    for block in blocks:
        found = _bare_calls(block.group(1).strip(), tools)
        if found is None or found[1].strip():
            return None  # a code block that is not (only) a call: an ordinary reply
        calls.extend(found[0])
    if not calls:
        return None
    return ReadText(_FENCED.sub("", text).strip(), tuple(calls))


def _read_bare(text: str, tools: Collection[str]) -> ReadText | None:
    stripped = text.strip()
    found = _bare_calls(stripped, tools)
    if found is not None:
        return ReadText(found[1].strip(), tuple(found[0]))
    started = _KNOWN_NAME_START.match(stripped)
    if started and _tool_name(started.group(1), tools) in tools and not _starts_json(stripped):
        # It starts as a call to one of our tools and then does not parse: a broken call.
        return ReadText("", (TextCall(_tool_name(started.group(1), tools), stripped),))
    return None


# --------------------------------------------------------------------- decoding


def _marked_calls(body: str, tools: Collection[str]) -> list[TextCall]:
    """Calls inside explicit markers: anything there is an attempt, so a body that does not
    parse becomes one broken call."""
    body = body.strip()
    values = list(_json_values(body))
    if values and values[-1][1].strip() == "":
        calls = [_call_of(item, tools) for value, _ in values for item in _listed(value)]
        if all(call is not None for call in calls):
            return [call for call in calls if call is not None]
    literal = _literal(body)
    if literal is not None:
        calls = [_call_of(item, tools) for item in _listed(literal)]
        if all(call is not None for call in calls):
            return [call for call in calls if call is not None]
    named = _NAME_IN_BROKEN.search(body)
    return [TextCall(_tool_name(named.group(1), tools) if named else "", body)]


def _bare_calls(text: str, tools: Collection[str]) -> tuple[list[TextCall], str] | None:
    """Calls to known tools at the start of ``text`` (JSON objects or a list of them), and the
    text after them; None if the text does not start with one."""
    calls: list[TextCall] = []
    rest = text
    for value, after in _json_values(text):
        found = [_call_of(item, tools, strict=True) for item in _listed(value)]
        if not found or any(call is None for call in found):
            break
        calls.extend(call for call in found if call is not None)
        rest = after
    return (calls, rest) if calls else None


def _json_values(text: str) -> Iterator[tuple[Any, str]]:
    """Consecutive JSON values at the start of ``text`` (separated by whitespace, commas or
    semicolons), each with the text after it."""
    decoder = json.JSONDecoder()
    rest = text.lstrip()
    while rest[:1] in ("{", "["):
        try:
            value, end = decoder.raw_decode(rest)
        except (json.JSONDecodeError, RecursionError):
            return
        rest = rest[end:]
        yield value, rest
        rest = rest.lstrip().lstrip(",;").lstrip()


def _starts_json(text: str) -> bool:
    return next(_json_values(text), None) is not None


def _first_json(text: str) -> str:
    """The JSON value at the start of ``text``, canonical; the raw text if there is none."""
    for value, _ in _json_values(text):
        return _canonical(value)
    return text.strip()


def _literal(text: str) -> Any:
    """A Python literal (single-quoted dicts, True/False), which some models write for JSON."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _call_of(item: Any, tools: Collection[str], *, strict: bool = False) -> TextCall | None:
    """A call object: ``{"name": …, "arguments"|"parameters": …}``, also wrapped as OpenAI's
    ``{"type": "function", "function": {…}}``. ``strict`` (no markers around it): the name must
    be one of ``tools`` and an arguments key must be present."""
    if not isinstance(item, dict):
        return None
    if isinstance(item.get("function"), dict):
        item = item["function"]
    name = item.get("name")
    if not isinstance(name, str):
        return None
    name = _tool_name(name, tools)
    key = next((k for k in _ARGUMENT_KEYS if k in item), None)
    if strict and (name not in tools or key is None):
        return None
    arguments = item[key] if key is not None else {}
    if isinstance(arguments, str):
        return TextCall(name, arguments)
    if not isinstance(arguments, dict):
        return None if strict else TextCall(name, _canonical(arguments))
    return TextCall(name, _canonical(arguments))


def _tool_name(name: str, tools: Collection[str]) -> str:
    """``functions.x`` (as OpenAI-trained models sometimes write it) is tool ``x``."""
    name = name.strip()
    short = name.removeprefix("functions.")
    return short if short in tools else name


def _canonical(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _python_calls(body: str, tools: Collection[str]) -> list[TextCall]:
    """Llama's ``<|python_tag|>`` body: JSON call objects, or Python call syntax
    (``name.call(key="value")``, ``name(key="value")``); a body that is neither is a broken
    call."""
    values = list(_json_values(body))
    if values and values[-1][1].strip() == "":
        return _marked_calls(body, tools)
    try:
        tree = ast.parse(body, mode="exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return _marked_calls(body, tools)
    calls = []
    for statement in tree.body:
        call = _python_call(statement, tools)
        if call is None:
            return _marked_calls(body, tools)
        calls.append(call)
    return calls


def _python_call(statement: ast.stmt, tools: Collection[str]) -> TextCall | None:
    if not isinstance(statement, ast.Expr) or not isinstance(statement.value, ast.Call):
        return None
    call = statement.value
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "call":
        func = func.value  # Llama's built-in tool style: brave_search.call(query=...)
    if not isinstance(func, ast.Name) or call.args:
        return None
    try:
        arguments = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
    except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
        return None
    return TextCall(_tool_name(func.id, tools), _canonical(arguments))
