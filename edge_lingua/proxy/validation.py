"""Parse and check request bodies: every malformed field is named in the error.

Checks only what the proxy reads or rewrites (messages, their text, the compression
marks, ``stream``, ``user``, tool calls, the ``edge_lingua`` options); everything else
goes to the upstream, which judges it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from edge_lingua.cascade.prompt import COMPRESS_KEY, PINS_KEY
from edge_lingua.errors import InvalidFieldError, RequestTooLargeError
from edge_lingua.proxy.config import Limits

EXTENSION_KEY = "edge_lingua"  # optional request field: {"rate", "target_token", "compress"}
RESPONSES_TEXT_TYPES = ("input_text", "output_text", "text")


def parse(raw: bytes, limits: Limits) -> dict[str, Any]:
    """The body as a JSON object, nested at most ``limits.max_depth`` deep."""
    try:
        body = json.loads(raw)
    except RecursionError:
        raise InvalidFieldError("body", f"nests deeper than {limits.max_depth} levels") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidFieldError("body", f"is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidFieldError("body", "must be a JSON object")
    _check_depth(body, limits.max_depth)
    return body


def _check_depth(value: Any, limit: int) -> None:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise InvalidFieldError("body", f"nests deeper than {limit} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def options(body: Mapping[str, Any]) -> dict[str, Any]:
    """The ``edge_lingua`` options object, checked."""
    value = body.get(EXTENSION_KEY, {})
    if value is None:
        return {}
    _object(value, EXTENSION_KEY)
    if "compress" in value:
        _boolean(value["compress"], f"{EXTENSION_KEY}.compress")
    if "rate" in value and value["rate"] is not None:
        rate = value["rate"]
        if not _number(rate) or not 0 < rate <= 1:
            raise InvalidFieldError(f"{EXTENSION_KEY}.rate", "must be a number in (0, 1]")
    if "target_token" in value and value["target_token"] is not None:
        target = value["target_token"]
        if not isinstance(target, int) or isinstance(target, bool) or target < 1:
            raise InvalidFieldError(f"{EXTENSION_KEY}.target_token", "must be an integer >= 1")
    return dict(value)


def chat(body: Mapping[str, Any], limits: Limits) -> None:
    """Check a ``/v1/chat/completions`` body."""
    _common(body)
    messages = _messages(body, "messages", limits)
    chars = 0
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        _message(message, where)
        for key in ("name", "tool_call_id"):
            if key in message and message[key] is not None:
                _string(message[key], f"{where}.{key}")
        chars += _content(message.get("content"), f"{where}.content", ("text",), nullable=True)
        _tool_calls(message.get("tool_calls"), f"{where}.tool_calls")
    _check_chars(chars, limits)


def responses(body: Mapping[str, Any], limits: Limits) -> None:
    """Check a ``/v1/responses`` body (text input items are what the proxy compresses)."""
    _common(body)
    chars = 0
    if body.get("instructions") is not None:
        chars += len(_string(body["instructions"], "instructions"))
    value = body.get("input")
    if isinstance(value, str):
        chars += len(value)
    else:
        items = _messages(body, "input", limits)
        for i, item in enumerate(items):
            where = f"input[{i}]"
            _object(item, where)
            if item.get("type", "message") != "message":
                continue
            _message(item, where)
            chars += _content(item.get("content"), f"{where}.content", RESPONSES_TEXT_TYPES)
    _check_chars(chars, limits)


def messages(body: Mapping[str, Any], limits: Limits) -> None:
    """Check an Anthropic ``/v1/messages`` body."""
    _common(body)
    chars = 0
    if body.get("system") is not None:
        system = body["system"]
        if isinstance(system, str):
            chars += len(system)
        else:
            chars += _content(system, "system", ("text",))
    for i, message in enumerate(_messages(body, "messages", limits)):
        where = f"messages[{i}]"
        _message(message, where)
        chars += _content(message.get("content"), f"{where}.content", ("text",))
    _check_chars(chars, limits)


# --- pieces ------------------------------------------------------------------------------
def _common(body: Mapping[str, Any]) -> None:
    if "stream" in body and body["stream"] is not None:
        _boolean(body["stream"], "stream")
    if "user" in body and body["user"] is not None:
        _string(body["user"], "user")
    if "model" in body and body["model"] is not None:
        _string(body["model"], "model")


def _messages(body: Mapping[str, Any], key: str, limits: Limits) -> list[Any]:
    value = body.get(key)
    if not isinstance(value, list) or not value:
        raise InvalidFieldError(key, "must be a non-empty list")
    if len(value) > limits.max_messages:
        raise RequestTooLargeError(key, f"has {len(value)} entries; the limit is "
                                        f"{limits.max_messages}")
    return value


def _message(value: Any, where: str) -> None:
    """A message or message item: an object with a string role and valid marks."""
    _object(value, where)
    _string(value.get("role"), f"{where}.role")
    _marks(value, where)


def _content(value: Any, where: str, text_types: tuple[str, ...], nullable: bool = False) -> int:
    """Characters of text in a content field (a string or a list of parts)."""
    if value is None and nullable:
        return 0
    if isinstance(value, str):
        return len(value)
    if not isinstance(value, list):
        raise InvalidFieldError(where, "must be a string or a list of content parts")
    chars = 0
    for j, part in enumerate(value):
        at = f"{where}[{j}]"
        _object(part, at)
        _string(part.get("type"), f"{at}.type")
        _marks(part, at)
        if part["type"] in text_types:
            chars += len(_string(part.get("text"), f"{at}.text"))
    return chars


def _tool_calls(value: Any, where: str) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        raise InvalidFieldError(where, "must be a list")
    for k, call in enumerate(value):
        at = f"{where}[{k}]"
        _object(call, at)
        function = call.get("function")
        if function is None:
            continue
        _object(function, f"{at}.function")
        for key in ("name", "arguments"):
            if key in function:
                _string(function[key], f"{at}.function.{key}")


def _marks(value: Mapping[str, Any], where: str) -> None:
    if COMPRESS_KEY in value:
        _boolean(value[COMPRESS_KEY], f"{where}.{COMPRESS_KEY}")
    if PINS_KEY in value:
        pins = value[PINS_KEY]
        if not isinstance(pins, list):
            raise InvalidFieldError(f"{where}.{PINS_KEY}", "must be a list of strings")
        for k, pin in enumerate(pins):
            _string(pin, f"{where}.{PINS_KEY}[{k}]")


def _check_chars(chars: int, limits: Limits) -> None:
    if chars > limits.max_chars:
        raise RequestTooLargeError("messages", f"hold {chars} characters of text; the limit "
                                               f"is {limits.max_chars}")


def _object(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise InvalidFieldError(where, f"must be an object, not {_kind(value)}")


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidFieldError(where, f"must be a string, not {_kind(value)}")
    return value


def _boolean(value: Any, where: str) -> None:
    if not isinstance(value, bool):
        raise InvalidFieldError(where, f"must be true or false, not {_kind(value)}")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string", list: "a list", dict: "an object",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)
