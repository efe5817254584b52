"""The proxy's limits at the byte and its usage counting, on its ASGI parts and helpers alone
(no server, no socket)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from starlette.requests import Request

from edge_lingua.errors import InvalidArgumentError
from edge_lingua.proxy.app import HeadLimit, HTTPError, _read_body, completion_tokens
from edge_lingua.proxy.config import Limits

# a request head of 5 + 3 path and query bytes and two headers of 4 + 1 + 4 and 6 + 2 + 4:
# 29 bytes as the limit counts them (name, value, ": " and CRLF)
SCOPE = {"type": "http", "method": "GET", "raw_path": b"/path", "query_string": b"a=1",
         "headers": [(b"host", b"x"), (b"accept", b"*/")]}


def _head_limit(max_bytes: int) -> tuple[bool, list[dict[str, Any]]]:
    """Whether the app behind ``HeadLimit(max_bytes)`` was called, and what was sent."""
    called, sent = [], []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append(scope)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(HeadLimit(app, max_bytes)(dict(SCOPE), receive, send))
    return bool(called), sent


def test_a_head_of_exactly_the_limit_passes_and_one_byte_more_is_a_431() -> None:
    assert _head_limit(29) == (True, [])
    called, sent = _head_limit(28)
    assert not called and sent[0]["status"] == 431
    assert (b"connection", b"close") in sent[0]["headers"]
    assert json.loads(sent[1]["body"]) == {"error": {
        "message": "the request head is over the limit of 28 bytes",
        "type": "request_too_large", "param": "headers", "code": 431}}


def _read(chunks: list[bytes], limit: int, declared: int | None = None) -> bytes:
    headers = [] if declared is None else [(b"content-length", str(declared).encode())]
    pending = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
               for i, c in enumerate(chunks)]

    async def receive() -> dict[str, Any]:
        return pending.pop(0)

    request = Request({"type": "http", "method": "POST", "headers": headers}, receive)
    return asyncio.run(_read_body(request, Limits(max_body_bytes=limit)))


def test_a_body_of_exactly_the_limit_is_read_whole() -> None:
    assert _read([b"12345", b"67890"], 10, declared=10) == b"1234567890"
    assert _read([b"1234567890"], 10) == b"1234567890"


@pytest.mark.parametrize(("chunks", "declared"), [
    ([b"12345", b"67890", b"1"], None),  # counted across chunks, none over the limit alone
    ([b"1234567890", b"1"], None),
    ([b"1"], 11),  # refused on the declared length, before reading
])
def test_one_byte_over_the_body_limit_is_a_413(chunks: list[bytes], declared: int | None) -> None:
    with pytest.raises(HTTPError) as raised:
        _read(chunks, 10, declared)
    response = raised.value.response
    assert response.status_code == 413 and response.headers["connection"] == "close"
    assert json.loads(response.body)["error"]["message"] == (
        "the request body is over the limit of 10 bytes")


@pytest.mark.parametrize(("field", "value", "message"), [
    ("workers", True, "workers must be a positive number, got True"),
    ("max_depth", "3", "max_depth must be a positive number, got '3'"),
    ("body_timeout_s", 0, "body_timeout_s must be a positive number, got 0"),
    ("keep_alive_s", -1.5, "keep_alive_s must be a positive number, got -1.5"),
    ("max_connections", 2.5, "max_connections must be an integer, got 2.5"),
])
def test_limits_refuse_what_is_not_a_positive_number_of_the_right_kind(
    field: str, value: Any, message: str
) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        Limits(**{field: value})
    assert str(raised.value) == message


def test_limits_take_fractions_of_seconds_and_whole_counts() -> None:
    limits = Limits(header_timeout_s=0.25, max_connections=1, workers=1)
    assert (limits.header_timeout_s, limits.max_connections, limits.workers) == (0.25, 1, 1)


@pytest.mark.parametrize(("answer", "tokens"), [
    ({"usage": {"completion_tokens": 1}}, 1),  # a chat completion
    ({"usage": {"completion_tokens": 0, "output_tokens": 4}}, 4),  # the first positive count
    ({"response": {"usage": {"output_tokens": 7}}}, 7),  # a Responses stream's last event
    ({"message": {"usage": {"output_tokens": 5}}}, 5),  # an Anthropic message_start event
    ({"usage": {"completion_tokens": True}}, 0),
    ({"usage": {"completion_tokens": "9"}}, 0),
    ({"message": "text"}, 0),
    (["usage"], 0),
])
def test_completion_tokens_are_read_from_each_apis_usage(answer: Any, tokens: int) -> None:
    assert completion_tokens(answer) == tokens
