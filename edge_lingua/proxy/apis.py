"""The three request shapes the proxy compresses: what to compress in each, and how to
put the compressed text back.

* ``chat`` – OpenAI ``/v1/chat/completions``: messages, handled by
  :func:`edge_lingua.cascade.prompt.prepare` directly;
* ``responses`` – OpenAI ``/v1/responses``: ``instructions`` and the text parts of
  message items in ``input``;
* ``messages`` – Anthropic ``/v1/messages``: ``system`` and the text blocks of messages.

The scope rule is the same everywhere: ``context`` compresses every message but the last,
``all`` every one, ``none`` only what the client marks with ``"compress": true`` (on a
message, item, part or block; ``"pins"`` protect spans as in chat messages).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edge_lingua.cascade.prompt import (
    COMPRESS_KEY,
    PINS_KEY,
    PreparedRequest,
    PromptCompressor,
    TokenCounter,
    prepare,
)
from edge_lingua.proxy import validation
from edge_lingua.proxy.config import Limits

COMPRESSIBLE_ROLES = ("system", "developer", "user", "assistant")


@dataclass(frozen=True)
class Api:
    """One request shape: its upstream path, its check, and its compression."""

    name: str
    path: str
    check: Callable[[dict[str, Any], Limits], None]
    compress: Callable[..., PreparedRequest]


@dataclass
class _Slot:
    """A text the proxy may compress, and where it goes back."""

    holder: dict[str, Any]
    key: str
    role: str
    compress: bool
    pins: list[str]


def mark_scope(messages: list[dict[str, Any]], scope: str) -> list[dict[str, Any]]:
    """Mark chat messages compressible by scope, leaving any mark the client set alone."""
    if scope == "none":
        return messages
    last = len(messages) - 1
    marked = []
    for i, message in enumerate(messages):
        if (
            isinstance(message, dict)
            and COMPRESS_KEY not in message
            and message.get("role") in ("system", "user", "assistant")
            and (scope == "all" or i < last)
        ):
            message = {**message, COMPRESS_KEY: True}
        marked.append(message)
    return marked


def _chat(body: dict[str, Any], compressor: PromptCompressor | None, count: TokenCounter,
          scope: str, **budget: Any) -> PreparedRequest:
    # with scope "context" the live question stays as written and steers a question-aware model
    prepared = prepare(mark_scope(body["messages"], scope), compressor, count,
                       ask_last_user=scope == "context", **budget)
    body["messages"] = prepared.messages
    return prepared


def _by_scope(scope: str, last: bool) -> bool:
    return scope == "all" or (scope == "context" and not last)


def _mark(holder: dict[str, Any], default: bool) -> tuple[bool, list[str]]:
    """The holder's own mark and pins (removed from it), else ``default``."""
    mark = holder.pop(COMPRESS_KEY, default)
    return bool(mark), list(holder.pop(PINS_KEY, []))


def _content_slots(item: dict[str, Any], role: str, compress: bool, pins: list[str],
                   text_types: tuple[str, ...]) -> list[_Slot]:
    content = item.get("content")
    if isinstance(content, str):
        return [_Slot(item, "content", role, compress, pins)]
    slots = []
    for part in content or ():
        if part.get("type") in text_types:
            mark, own_pins = _mark(part, compress)
            slots.append(_Slot(part, "text", role, mark, [*pins, *own_pins]))
    return slots


def _responses_slots(body: dict[str, Any], scope: str) -> list[_Slot]:
    slots = []
    if isinstance(body.get("instructions"), str):
        slots.append(_Slot(body, "instructions", "system", _by_scope(scope, False), []))
    if isinstance(body.get("input"), str):
        slots.append(_Slot(body, "input", "user", _by_scope(scope, True), []))
        return slots
    items = [item for item in body["input"] if item.get("type", "message") == "message"]
    for i, item in enumerate(items):
        default = _by_scope(scope, i == len(items) - 1) and item["role"] in COMPRESSIBLE_ROLES
        mark, pins = _mark(item, default)
        slots.extend(_content_slots(item, item["role"], mark, pins,
                                    validation.RESPONSES_TEXT_TYPES))
    return slots


def _messages_slots(body: dict[str, Any], scope: str) -> list[_Slot]:
    slots = []
    system = body.get("system")
    if isinstance(system, str):
        slots.append(_Slot(body, "system", "system", _by_scope(scope, False), []))
    elif isinstance(system, list):
        slots.extend(_content_slots({"content": system}, "system", _by_scope(scope, False), [],
                                    ("text",)))
    messages = body["messages"]
    for i, message in enumerate(messages):
        mark, pins = _mark(message, _by_scope(scope, i == len(messages) - 1))
        slots.extend(_content_slots(message, message["role"], mark, pins, ("text",)))
    return slots


@dataclass(frozen=True)
class _SlottedCompression:
    """Compression of a request shape whose texts sit in slots found by ``find``."""

    find: Callable[[dict[str, Any], str], list[_Slot]]

    def __call__(self, body: dict[str, Any], compressor: PromptCompressor | None,
                 count: TokenCounter, scope: str, **budget: Any) -> PreparedRequest:
        slots = self.find(body, scope)
        if not slots:
            return PreparedRequest([], 0, 0, 0.0, None)
        messages = [{"role": s.role, "content": s.holder[s.key], COMPRESS_KEY: s.compress,
                     PINS_KEY: s.pins} for s in slots]
        prepared = prepare(messages, compressor, count, **budget)
        for slot, message in zip(slots, prepared.messages, strict=True):
            slot.holder[slot.key] = message["content"]
        return prepared


CHAT = Api("chat", "/chat/completions", validation.chat, _chat)
RESPONSES = Api("responses", "/responses", validation.responses,
                _SlottedCompression(_responses_slots))
MESSAGES = Api("messages", "/messages", validation.messages, _SlottedCompression(_messages_slots))
