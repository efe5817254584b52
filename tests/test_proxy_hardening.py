"""The proxy under faults and load, on loopback: malformed bodies, limits, slow clients,
unread bodies, log hygiene, upstream 429/timeouts/garbage, redaction before compression,
200 requests from 20 threads, and the Responses, Messages and Models endpoints through
the official ``openai`` and ``anthropic`` clients."""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NoReturn

import pytest
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Route

from edge_lingua.cascade import Ledger, RemoteClient
from edge_lingua.cascade.redaction import Redactor
from edge_lingua.errors import (
    CircuitOpenError,
    EdgeLinguaError,
    RemoteError,
    RemoteRateLimitedError,
    RemoteRequestError,
    RemoteUnavailableError,
)
from edge_lingua.proxy import Limits, ProxyConfig, ProxyServer
from tests.servers import UPSTREAM_KEY, Action, FaultServer, delay, free_port, status
from tests.test_proxy_server import CLIENT_TOKEN, DOCUMENT, QUESTION

openai = pytest.importorskip("openai", reason="the openai client is a test dependency")
anthropic = pytest.importorskip("anthropic", reason="the anthropic client is a test dependency")

pytestmark = pytest.mark.timeout(120)

MESSAGES = [{"role": "system", "content": DOCUMENT}, {"role": "user", "content": QUESTION}]


def post(proxy: ProxyServer, body: bytes | dict, path: str = "/v1/chat/completions",
         headers: dict | None = None) -> tuple[int, dict, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    connection = http.client.HTTPConnection(*proxy.address, timeout=30)
    try:
        connection.request("POST", path, body=data,
                           headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read())
    finally:
        connection.close()


def raw_exchange(proxy: ProxyServer, data: bytes, wait_s: float = 5.0) -> tuple[bytes, float]:
    """Send raw bytes, read until the server closes; what came back and how long it took."""
    started = time.monotonic()
    with socket.create_connection(proxy.address, timeout=wait_s) as sock:
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return received, time.monotonic() - started


def chat(content, **fields) -> dict:
    return {"model": "m", "messages": [{"role": "user", "content": content, **fields}]}


# --- malformed bodies: a 400 naming the field, never a dropped connection ------------------
@pytest.mark.parametrize(
    ("body", "field"),
    [
        (chat("x", pins=5), "messages[0].pins"),
        (chat("x", pins=None), "messages[0].pins"),
        (chat("x", pins=[1, 2]), "messages[0].pins[0]"),
        (chat("x", compress="false"), "messages[0].compress"),
        ({**chat("x"), "edge_lingua": {"compress": "false"}}, "edge_lingua.compress"),
        ({**chat("x"), "edge_lingua": {"rate": 2}}, "edge_lingua.rate"),
        ({**chat("x"), "edge_lingua": {"target_token": "9"}}, "edge_lingua.target_token"),
        ({**chat("x"), "edge_lingua": []}, "edge_lingua"),
        ({"messages": "hi"}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [5]}, "messages[0]"),
        ({"messages": [{"content": "x"}]}, "messages[0].role"),
        (chat(5), "messages[0].content"),
        (chat([{"type": "text", "text": 5}]), "messages[0].content[0].text"),
        (chat([{"type": "text", "text": "x", "pins": "x"}]), "messages[0].content[0].pins"),
        (chat([7]), "messages[0].content[0]"),
        ({**chat("x"), "stream": "yes"}, "stream"),
        ({**chat("x"), "user": 5}, "user"),
        (chat("x", tool_calls=[{"function": {"name": "f", "arguments": {}}}]),
         "messages[0].tool_calls[0].function.arguments"),
        (chat("x", name=3), "messages[0].name"),
        ([1, 2], "body"),
        (b"{nope", "body"),
        (b"[" * 100_000 + b"]" * 100_000, "body"),
        (b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "body"),
        (json.dumps(chat("x", extra=[[[[[[[[[[[[]]]]]]]]]]]])).encode(), "body"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_every_malformed_field_is_a_400_naming_it(fault, proxy_for, body, field):
    proxy, _ = proxy_for(fault, limits=Limits(max_depth=10))
    code, headers, answer = post(proxy, body)
    assert code == 400, answer
    assert headers.get("connection") != "close"  # the body was read: the connection can stay
    assert answer["error"]["param"] == field
    assert answer["error"]["type"] == "invalid_request_error" and answer["error"]["message"]
    assert fault.received == []


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/responses", {"input": 5}, "input"),
        ("/v1/responses", {"input": [{"role": "user", "content": [{"type": "input_text"}]}]},
         "input[0].content[0].text"),
        ("/v1/responses", {"input": "x", "instructions": 3}, "instructions"),
        ("/v1/messages", {"messages": [{"role": "user", "content": None}]},
         "messages[0].content"),
        ("/v1/messages", {"messages": [{"role": "user", "content": "x"}], "system": 4}, "system"),
    ],
)
def test_malformed_responses_and_messages_bodies_name_the_field(fault, proxy_for, path, body,
                                                                 field):
    proxy, _ = proxy_for(fault, anthropic_api=True)
    code, _, answer = post(proxy, body, path)
    assert code == 400 and answer["error"]["param"] == field


def test_malformed_upstream_answer_is_a_502_with_a_message(fault, proxy_for):
    fault.script(default=Action("raw", body=b'{"choices": [], "usage": "lots"}'))
    proxy, ledger = proxy_for(fault)
    code, _, answer = post(proxy, {"model": "m", "messages": MESSAGES})
    assert code == 502 and "usage" in answer["error"]["message"]
    (row,) = ledger.rows()
    assert row["error"] and row["completion_tokens"] == 0  # nothing came back


# --- limits --------------------------------------------------------------------------------
def test_message_count_and_character_limits_are_413(fault, proxy_for):
    proxy, _ = proxy_for(fault, limits=Limits(max_messages=10, max_chars=500))
    many = {"messages": [{"role": "user", "content": "hi"}] * 11}
    code, _, answer = post(proxy, many)
    assert code == 413 and answer["error"]["param"] == "messages"
    assert answer["error"]["type"] == "request_too_large"
    code, _, answer = post(proxy, chat("word " * 101))
    assert code == 413 and "500" in answer["error"]["message"]
    assert answer["error"]["type"] == "request_too_large"
    assert post(proxy, chat("word " * 99))[0] == 200
    assert len(fault.received) == 1


def test_body_limit_is_413_and_the_unread_body_is_never_a_request(fault, proxy_for, caplog):
    caplog.set_level(logging.DEBUG)
    proxy, _ = proxy_for(fault, limits=Limits(max_body_bytes=2000))
    smuggled = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    body = b'{"secret": "SSN 078-05-1120 card 4111111111111111"}' + smuggled * 60
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            f"\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    received, _ = raw_exchange(proxy, head + body)
    assert received.startswith(b"HTTP/1.1 413") and received.count(b"HTTP/1.1") == 1
    chunked = head.replace(f"Content-Length: {len(body)}".encode(), b"Transfer-Encoding: chunked")
    pieces = b"".join(b"%X\r\n%s\r\n" % (len(body[i:i + 500]), body[i:i + 500])
                      for i in range(0, len(body), 500)) + b"0\r\n\r\n"
    received, _ = raw_exchange(proxy, chunked + pieces)
    assert received.startswith(b"HTTP/1.1 413") and received.count(b"HTTP/1.1") == 1
    assert "078-05-1120" not in caplog.text and "4111111111111111" not in caplog.text
    assert "/health" not in caplog.text
    assert fault.received == []


@pytest.mark.parametrize("status_line", ["401", "404", "405"])
def test_after_an_early_error_the_body_is_not_parsed_as_the_next_request(fault, proxy_for,
                                                                        caplog, status_line):
    caplog.set_level(logging.DEBUG)
    proxy, _ = proxy_for(fault, client_token=CLIENT_TOKEN)
    path = {"401": "/v1/chat/completions", "404": "/v1/nothing", "405": "/health"}[status_line]
    token = "" if status_line == "401" else f"Authorization: Bearer {CLIENT_TOKEN}\r\n"
    body = (b'{"note": "SSN 078-05-1120"}' +
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
    request = (f"POST {path} HTTP/1.1\r\nHost: x\r\n{token}Content-Length: {len(body)}\r\n\r\n"
               ).encode() + body
    received, _ = raw_exchange(proxy, request)
    assert received.startswith(f"HTTP/1.1 {status_line}".encode())
    assert received.count(b"HTTP/1.1 ") == 1
    assert b'"error"' in received
    assert "078-05-1120" not in caplog.text and fault.received == []


@pytest.mark.parametrize(("request_bytes", "code", "kind", "param"), [
    (b"NOT AN HTTP REQUEST\r\n\r\n", 400, "invalid_request_error", None),
    (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: nine\r\n\r\n", 400,
     "invalid_request_error", None),
    (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n", 431,
     "request_too_large", "headers"),
], ids=["garbage", "bad-length", "huge-head"])
def test_unparseable_or_oversized_http_gets_a_json_error(fault, proxy_for, request_bytes, code,
                                                        kind, param):
    proxy, _ = proxy_for(fault, limits=Limits(max_header_bytes=16_384))
    received, _ = raw_exchange(proxy, request_bytes)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d" % code) and b"application/json" in head.lower()
    assert b"\r\nconnection: close" in head.lower()
    error = json.loads(body)["error"]
    assert (error["type"], error["param"], error["code"]) == (kind, param, code)
    assert set(error) == {"message", "type", "param", "code"} and error["message"]


def test_a_request_head_arriving_in_pieces_is_limited_too(fault, proxy_for):
    proxy, _ = proxy_for(fault, limits=Limits(max_header_bytes=1024))
    with socket.create_connection(proxy.address, timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        try:
            for _ in range(40):
                sock.sendall(b"X-Part: " + b"a" * 100 + b"\r\n")
                time.sleep(0.005)
        except OSError:
            pass  # the server may close before all pieces are sent
        data = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(4096):
                data += chunk
    assert data.startswith((b"HTTP/1.1 400", b"HTTP/1.1 431"))


def test_slow_headers_are_cut_off_within_the_header_timeout(fault, proxy_for):
    proxy, _ = proxy_for(fault, limits=Limits(header_timeout_s=0.5))
    socks = [socket.create_connection(proxy.address, timeout=5) for _ in range(5)]
    started = time.monotonic()
    for sock in socks:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
    replies = []
    for sock in socks:
        with sock:
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
            replies.append(data)
    assert time.monotonic() - started < 3
    assert all(reply.startswith(b"HTTP/1.1 408") for reply in replies)
    assert {json.loads(reply.partition(b"\r\n\r\n")[2])["error"]["message"]
            for reply in replies} == {"no complete request head within 0.5s"}


def test_slow_body_is_a_408_within_the_body_timeout(fault, proxy_for):
    proxy, _ = proxy_for(fault, limits=Limits(body_timeout_s=0.5))
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
            b'{"messages"')
    received, took = raw_exchange(proxy, head)
    assert received.startswith(b"HTTP/1.1 408") and took < 3
    assert json.loads(received.split(b"\r\n\r\n", 1)[1])["error"]["param"] == "body"


def test_idle_connections_are_closed_after_the_keep_alive_timeout(fault, proxy_for):
    proxy, _ = proxy_for(fault, limits=Limits(keep_alive_s=0.3, header_timeout_s=5))
    with socket.create_connection(proxy.address, timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
        assert b'{"status":"ok"}' in data and time.monotonic() - started < 2


def test_connections_over_the_limit_get_a_json_503_not_a_drop(fault, proxy_for):
    proxy, _ = proxy_for(fault, limits=Limits(max_connections=1))
    with socket.create_connection(proxy.address, timeout=5) as held:
        # the one connection allowed is served, its request counted once
        held.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert held.recv(4096).startswith(b"HTTP/1.1 200")
        received, took = raw_exchange(proxy, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = received.partition(b"\r\n\r\n")
    # answered and closed at once: raw_exchange reads until the server closes
    assert head.startswith(b"HTTP/1.1 503") and b"\r\nconnection: close" in head.lower()
    assert took < 2 and json.loads(body) == {"error": {
        "message": "the proxy is at its limit of 1 connections", "type": "server_busy",
        "param": None, "code": 503}}
    time.sleep(0.2)
    assert post(proxy, {"model": "m", "messages": MESSAGES})[0] == 200


def test_a_kept_alive_connection_gets_the_header_deadline_again(fault, proxy_for):
    """After each response the next request head has ``header_timeout_s`` to arrive."""
    proxy, _ = proxy_for(fault, limits=Limits(header_timeout_s=0.3, keep_alive_s=30))
    with socket.create_connection(proxy.address, timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        first = b""
        while not first.endswith(b'{"status":"ok"}'):  # the whole first response
            first += sock.recv(4096)
        assert first.startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        sock.sendall(b"GET /health HTTP/1.1\r\n")  # the second head never ends
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.1 408") and time.monotonic() - started < 2


# --- logs ----------------------------------------------------------------------------------
def test_serving_leaves_the_applications_logging_alone(fault, proxy_for):
    """The proxy runs inside an app: uvicorn's own logging setup (handlers printing to
    stderr) stays off. (uvicorn.access is uvicorn's to empty: with access_log off, it does.)"""
    names = ("", "uvicorn", "uvicorn.error")
    before = {name: list(logging.getLogger(name).handlers) for name in names}
    proxy, _ = proxy_for(fault)
    assert post(proxy, {"model": "m", "messages": MESSAGES})[0] == 200
    assert {name: list(logging.getLogger(name).handlers) for name in names} == before


def test_log_lines_escape_control_characters_and_never_hold_bodies(fault, proxy_for, caplog):
    caplog.set_level(logging.DEBUG)
    proxy, _ = proxy_for(fault)
    received, _ = raw_exchange(proxy, b"GET /x%0d%0aFORGED%1b[31m HTTP/1.1\r\nHost: x\r\n"
                                      b"Connection: close\r\n\r\n")
    assert received.startswith(b"HTTP/1.1 404")
    assert post(proxy, {"model": "m", "messages": [
        {"role": "user", "content": "card 4111111111111111 " + DOCUMENT}]})[0] == 200
    lines = [r.getMessage() for r in caplog.records]
    assert any("/x\\x0d\\x0aFORGED\\x1b[31m" in line for line in lines)
    assert not any("\n" in line or "\r" in line or "\x1b" in line for line in lines)
    assert "4111111111111111" not in caplog.text and "ducks" not in caplog.text
    assert UPSTREAM_KEY not in caplog.text


# --- upstream semantics --------------------------------------------------------------------
def test_the_log_formatter_escapes_every_message_but_keeps_traceback_lines():
    from edge_lingua.proxy.logs import EscapingFormatter

    formatter = EscapingFormatter("%(levelname)s %(message)s")
    record = logging.LogRecord("edge_lingua", logging.INFO, __file__, 1,
                               "GET %s", ("/a\r\nFORGED\x1b[31m\u2028",), None)
    assert formatter.format(record) == "INFO GET /a\\x0d\\x0aFORGED\\x1b[31m\\x2028"
    try:
        raise ValueError("boom")
    except ValueError:
        failed = logging.LogRecord("edge_lingua", logging.ERROR, __file__, 1, "x\ny", (),
                                   sys.exc_info())
    lines = formatter.format(failed).splitlines()
    assert lines[0] == "ERROR x\\x0ay" and lines[-1] == "ValueError: boom"


def test_upstream_429_reaches_the_client_with_retry_after_and_spares_the_breaker(fault,
                                                                               proxy_for):
    fault.script(default=status(429, retry_after="120"))
    proxy, _ = proxy_for(fault, breaker_threshold=3)
    for _ in range(4):  # the breaker opens after 3 failures; 429s are not failures
        code, headers, answer = post(proxy, {"model": "m", "messages": MESSAGES})
        assert code == 429 and headers["retry-after"] == "120"
        assert answer["error"]["message"] == "injected 429"
    fault.script(default=Action("ok"))
    assert post(proxy, {"model": "m", "messages": MESSAGES})[0] == 200


@pytest.mark.parametrize(("failure", "code", "kind"), [
    (status(429, retry_after="120"), 429, None), (status(400), 400, None),
    (Action("drop"), 502, "upstream_unavailable"),
], ids=["429", "400", "unreachable"])
def test_upstream_errors_reach_the_client_as_json_with_the_savings_headers(fault, proxy_for,
                                                                         failure, code, kind):
    fault.script(default=failure)
    proxy, ledger = proxy_for(fault)
    status_code, headers, answer = post(proxy, {"model": "m", "messages": MESSAGES})
    headers = {k.lower(): v for k, v in headers.items()}
    assert status_code == code and headers["content-type"] == "application/json"
    assert int(headers["x-edge-lingua-original-tokens"]) > int(headers[
        "x-edge-lingua-sent-tokens"]) > 0
    if kind is None:  # the upstream's own answer, as it came
        assert answer == {"error": {"message": f"injected {code}"}}
    else:
        assert answer["error"]["type"] == kind
        assert answer["error"]["message"] == ledger.rows()[0]["error"] != ""
    if code == 429:
        assert headers["retry-after"] == "120"
    fault.script(default=Action("drop"))
    proxy, _ = proxy_for(fault, breaker_threshold=1)
    post(proxy, {"model": "m", "messages": MESSAGES})
    status_code, headers, answer = post(proxy, {"model": "m", "messages": MESSAGES})
    assert status_code == 503 and answer["error"]["type"] == "upstream_unavailable"
    assert answer["error"]["message"] and "x-edge-lingua-sent-tokens" in {
        k.lower() for k in headers}


def test_timed_out_post_is_retried_only_under_the_clients_idempotency_key(fault, proxy_for):
    proxy, _ = proxy_for(fault, timeout_s=1.0)
    fault.script(delay(1.5))
    code, _, answer = post(proxy, {"model": "m", "messages": MESSAGES})
    assert code == 502 and "not sent again" in answer["error"]["message"]
    assert len(fault.received) == 1
    fault.script(delay(1.5))
    code, _, _ = post(proxy, {"model": "m", "messages": MESSAGES},
                      headers={"Idempotency-Key": "client-key-1"})
    assert code == 200
    assert [r.headers["Idempotency-Key"] for r in fault.received[1:]] == ["client-key-1"] * 2


def test_every_upstream_post_carries_a_fresh_idempotency_key(fault, proxy_for):
    proxy, _ = proxy_for(fault)
    for _ in range(2):
        post(proxy, {"model": "m", "messages": MESSAGES})
    keys = [r.headers.get("Idempotency-Key") for r in fault.received]
    assert all(keys) and keys[0] != keys[1]


# --- privacy -------------------------------------------------------------------------------
SECRETS = {
    "bob@example.com": "Contact bob@example.com for the invoice.",
    "john.doe+news@example.co.uk": "Or mail john.doe+news@example.co.uk any time.",
    "ghp_16C7e42F292c6912E7710c838347Ae178B4a": "token ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    "4111 1111 1111 1111": "Card 4111 1111 1111 1111 expires soon.",
    "+44 20 7946 0958": "Phone +44 20 7946 0958 after nine.",
    "GB82 WEST 1234 5698 7654 32": "IBAN GB82 WEST 1234 5698 7654 32 for transfers.",
}


def _fragments(secret: str) -> list[str]:
    """Pieces of a secret that must not reach the upstream (each 4+ characters long)."""
    words = secret.replace("@", " ").replace(".", " ").replace("+", " ").split()
    return [w for w in words if len(w) >= 4 and w not in ("WEST",)] + [secret]


def test_redaction_runs_before_compression_on_everything_that_leaves(fault, proxy_for):
    proxy, ledger = proxy_for(fault, redactor=Redactor(), rate=0.33)
    context = " ".join(SECRETS.values()) + " " + DOCUMENT
    body = {
        "model": "m", "user": "alice@corp.example.com",
        "messages": [
            {"role": "system", "content": context},
            {"role": "assistant", "content": None, "tool_calls": [{
                "id": "call_1", "type": "function",
                "function": {"name": "mail_bob@example.com",
                             "arguments": json.dumps({"to": "bob@example.com",
                                                      "phone": "020 7946 0958"})}}]},
            {"role": "tool", "tool_call_id": "call_1", "name": "lookup 4155550132",
             "content": "sent"},
            {"role": "user", "content": "Contact bob@example.com " + QUESTION},
        ],
    }
    code, headers, _ = post(proxy, body)
    assert code == 200
    sent = json.dumps(fault.received[0].body)
    for secret in [*SECRETS, "alice@corp", "020 7946 0958", "4155550132"]:
        for fragment in _fragments(secret):
            assert fragment not in sent, fragment
    assert "Contact [EMAIL]" in sent
    assert int(headers["x-edge-lingua-redactions"]) >= 10
    (row,) = ledger.rows()  # the ledger row says what the request cost and what was removed
    assert row["model"] == "m" and row["redactions"] == int(headers["x-edge-lingua-redactions"])
    assert 0 < row["compress_s"] < row["latency_s"]


# --- load ----------------------------------------------------------------------------------
def test_200_requests_from_20_threads_each_reach_the_upstream_once(fault, proxy_for):
    proxy, ledger = proxy_for(fault, compressor=None, timeout_s=30)
    client = openai.OpenAI(base_url=proxy.url + "/v1", api_key="x", max_retries=0, timeout=60)

    def ask(n: int) -> str:
        answer = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": f"request number {n} ends"}])
        return answer.choices[0].message.content

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(ask, range(200)))
    assert answers == [f"request number {n} ends" for n in range(200)]
    contents = sorted(r.body["messages"][0]["content"] for r in fault.received)
    assert contents == sorted(f"request number {n} ends" for n in range(200))
    assert len(ledger.rows()) == 200


# --- API breadth -----------------------------------------------------------------------------
def test_models_are_passed_through(fault, proxy_for):
    proxy, _ = proxy_for(fault)
    client = openai.OpenAI(base_url=proxy.url + "/v1", api_key="x", max_retries=0)
    assert [m.id for m in client.models.list()] == ["echo-1"]
    assert fault.received[0].path == "/v1/models"
    assert fault.received[0].headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_responses_api_compresses_text_input_items(fault, proxy_for, stream):
    proxy, ledger = proxy_for(fault)
    client = openai.OpenAI(base_url=proxy.url + "/v1", api_key="x", max_retries=0)
    request = {"model": "m", "instructions": "Answer briefly.", "input": [
        {"role": "user", "content": [{"type": "input_text", "text": DOCUMENT}]},
        {"role": "user", "content": QUESTION}]}
    if stream:
        with client.responses.stream(**request) as events:
            text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    else:
        text = client.responses.create(**request).output_text
    sent = fault.received[0].body
    assert fault.received[0].path == "/v1/responses" and sent["stream"] is stream
    compressed = sent["input"][0]["content"][0]["text"]
    assert len(compressed) < 0.8 * len(DOCUMENT) and sent["input"][1]["content"] == QUESTION
    assert text == "\n".join([sent["instructions"], compressed, QUESTION])
    deadline = time.monotonic() + 5
    while not ledger.rows() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ledger.rows()[0]["completion_tokens"] == 3


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_anthropic_messages_are_compressed_and_forwarded(fault, proxy_for, stream):
    proxy, ledger = proxy_for(fault, anthropic_api=True, client_token=CLIENT_TOKEN)
    client = anthropic.Anthropic(base_url=proxy.url, api_key=CLIENT_TOKEN, max_retries=0)
    request = {"model": "claude-x", "max_tokens": 16, "system": DOCUMENT,
               "messages": [{"role": "user", "content": [{"type": "text", "text": QUESTION}]}]}
    if stream:
        with client.messages.stream(**request) as events:
            text = "".join(events.text_stream)
    else:
        text = client.messages.create(**request).content[0].text
    received = fault.received[0]
    assert received.path == "/v1/messages" and received.headers["x-api-key"] == UPSTREAM_KEY
    assert "anthropic-version" in received.headers
    assert len(received.body["system"]) < 0.8 * len(DOCUMENT)
    assert received.body["messages"][0]["content"][0]["text"] == QUESTION
    assert text == received.body["system"] + "\n" + QUESTION
    deadline = time.monotonic() + 5
    while not ledger.rows() and time.monotonic() < deadline:
        time.sleep(0.02)
    (row,) = ledger.rows()
    assert row["completion_tokens"] == 3 and row["saved_tokens"] > 0


def request(proxy: ProxyServer, method: str, path: str) -> tuple[int, dict, dict]:
    connection = http.client.HTTPConnection(*proxy.address, timeout=30)
    try:
        connection.request(method, path, headers={"Authorization": f"Bearer {CLIENT_TOKEN}"})
        response = connection.getresponse()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return response.status, headers, json.loads(response.read())
    finally:
        connection.close()


@pytest.mark.parametrize(("method", "path", "code", "kind"), [
    ("GET", "/v1/nothing", 404, "not_found"),
    ("DELETE", "/v1/chat/completions", 405, "invalid_request_error"),
])
def test_unknown_routes_get_an_exact_json_error_and_a_close(fault, proxy_for, method, path,
                                                           code, kind):
    proxy, _ = proxy_for(fault, client_token=CLIENT_TOKEN)
    status_code, headers, body = request(proxy, method, path)
    assert status_code == code and headers["connection"] == "close"
    assert body == {"error": {"message": f"no route {method} {path}", "type": kind,
                              "param": None, "code": code}}


def test_models_from_an_unreachable_upstream_is_a_json_502_then_503(proxy_for):
    nowhere = types.SimpleNamespace(url=f"http://127.0.0.1:{free_port()}/v1")
    proxy, _ = proxy_for(nowhere, client_token=CLIENT_TOKEN, breaker_threshold=1)
    code, _, body = request(proxy, "GET", "/v1/models")
    assert code == 502 and body["error"]["type"] == "upstream_unavailable"
    code, _, body = request(proxy, "GET", "/v1/models")  # the breaker is open now
    assert code == 503 and body["error"]["type"] == "upstream_unavailable"


HAL = b'data: {"choices": [{"index": 0, "delta": {"content": "Hal"}}]}'


@pytest.mark.parametrize(("sent", "opening"), [
    (b"", b""),  # it broke off before any event
    (HAL + b"\n\n", b""),  # the last event was complete
    (HAL + b"\n", b"\n"),  # its blank line was missing
    (HAL, b"\n\n"),  # it broke off inside the event
], ids=["nothing-sent", "complete", "no-blank-line", "inside-an-event"])
def test_a_stream_broken_off_ends_with_an_error_event_that_parses(fault, proxy_for, sent,
                                                                 opening):
    proxy, ledger = proxy_for(fault)
    fault.script(Action("break", body=sent))
    connection = http.client.HTTPConnection(*proxy.address, timeout=30)
    try:
        connection.request("POST", "/v1/chat/completions", body=json.dumps(
            {"model": "m", "stream": True, "messages": MESSAGES}).encode(),
            headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    assert response.status == 200 and data.startswith(sent + opening + b"data: ")
    events = data[len(sent + opening):].split(b"\n\n")
    assert events[1:] == [b""]  # one complete event, nothing after it
    error = json.loads(events[0][len(b"data: "):])["error"]
    assert error["type"] == "upstream_unavailable" and error["message"]
    deadline = time.monotonic() + 5
    while not ledger.rows() and time.monotonic() < deadline:
        time.sleep(0.02)
    (row,) = ledger.rows()
    assert row["error"] == error["message"]


def test_messages_without_an_anthropic_upstream_is_a_404(fault, proxy_for):
    proxy, _ = proxy_for(fault)
    code, headers, answer = post(proxy, {"messages": [{"role": "user", "content": "x"}]},
                                 "/v1/messages")
    assert code == 404 and headers["connection"] == "close"
    assert answer == {"error": {
        "message": "no upstream for /v1/messages; start the proxy with --anthropic-upstream",
        "type": "not_found", "param": None, "code": 404}}


def test_the_auth_check_is_shared_with_extra_routes(fault, compressor):
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def page(request):
        return PlainTextResponse("playground")

    remote = RemoteClient(fault.url)
    config = ProxyConfig(upstream=remote, count=len, client_token=CLIENT_TOKEN)
    server = ProxyServer(config, port=0, extra_routes=[Route("/playground", page)]).start()
    try:
        def get(headers: dict) -> int:
            connection = http.client.HTTPConnection(*server.address, timeout=10)
            connection.request("GET", "/playground", headers=headers)
            response = connection.getresponse()
            if response.status == 401:  # an exact JSON error, and the connection closed
                assert response.getheader("Connection") == "close"
                assert json.loads(response.read()) == {"error": {
                    "message": "missing or wrong bearer token", "type": "invalid_api_key",
                    "param": None, "code": 401}}
            return response.status

        assert get({}) == 401
        assert get({"Authorization": "Bearer wrong"}) == 401
        assert get({"Authorization": f"Bearer {CLIENT_TOKEN}"}) == 200
        assert get({"x-api-key": CLIENT_TOKEN}) == 200
    finally:
        server.stop()


def test_threads_do_not_grow_with_idle_connections(fault, proxy_for):
    proxy, _ = proxy_for(fault)
    before = threading.active_count()
    socks = [socket.create_connection(proxy.address, timeout=5) for _ in range(60)]
    try:
        assert post(proxy, {"model": "m", "messages": MESSAGES})[0] == 200
        assert threading.active_count() - before < 10
    finally:
        for sock in socks:
            sock.close()


StartProxy = Callable[..., tuple[ProxyServer, Ledger]]  # the ``proxy_for`` fixture


class _StubUpstream(RemoteClient):
    """An upstream client whose calls fail with ``error``, or whose stream is ``stream``."""

    def __init__(self, error: EdgeLinguaError | None = None, stream: Any = None) -> None:
        super().__init__("http://127.0.0.1:9/v1")
        self.error = error
        self._stream = stream

    def post(self, *args: Any, **kwargs: Any) -> NoReturn:
        assert self.error is not None
        raise self.error

    get = post

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        return self._stream


@contextlib.contextmanager
def _serving(config: ProxyConfig, extra_routes: list[Route] | None = None
             ) -> Iterator[ProxyServer]:
    """A proxy of ``config`` on a free port, stopped at the end."""
    server = ProxyServer(config, port=0, extra_routes=extra_routes or []).start()
    try:
        yield server
    finally:
        server.stop()


def _unavailable(message: str) -> dict:
    return {"message": message, "type": "upstream_unavailable", "param": None}


@pytest.mark.parametrize(("error", "code", "answer", "retry_after"), [
    (RemoteRateLimitedError("remote is rate limiting: HTTP 429", retry_after=1.5), 429,
     {"error": {"message": "remote is rate limiting: HTTP 429", "type": "rate_limited"}}, "2"),
    (RemoteRateLimitedError("rate limited", body=b'{"error": {"message": "slow down"}}'), 429,
     {"error": {"message": "slow down"}}, None),
    (RemoteRequestError("rejected", status=422, body=b'{"error": {"message": "bad"}}'), 422,
     {"error": {"message": "bad"}}, None),
    (CircuitOpenError("circuit open after repeated failures"), 503,
     {"error": {**_unavailable("circuit open after repeated failures"), "code": 503}}, None),
    (RemoteUnavailableError("remote unavailable: HTTP 503"), 502,
     {"error": {**_unavailable("remote unavailable: HTTP 503"), "code": 502}}, None),
    (RemoteError("the upstream client broke"), 500,  # none of the above: the last resort
     {"error": {"message": "the upstream client broke", "type": "server_error", "param": None,
                "code": 500}}, None),
], ids=["429-without-body", "429-with-body", "rejected", "circuit-open", "unavailable",
        "other"])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/models"])
def test_each_upstream_failure_is_an_exact_json_answer(path: str, error: EdgeLinguaError,
                                                      code: int, answer: dict,
                                                      retry_after: str | None) -> None:
    with _serving(ProxyConfig(upstream=_StubUpstream(error), count=len)) as proxy:
        connection = http.client.HTTPConnection(*proxy.address, timeout=30)
        if path == "/v1/models":
            connection.request("GET", path)
        else:
            connection.request("POST", path, body=json.dumps({"model": "m",
                                                              "messages": MESSAGES}))
        response = connection.getresponse()
        headers = {k.lower(): v for k, v in response.getheaders()}
        assert (response.status, json.loads(response.read())) == (code, answer)
        connection.close()
    assert headers["content-type"] == "application/json"
    assert headers.get("retry-after") == retry_after
    # the savings headers go with every answer to a request that was compressed
    assert ("x-edge-lingua-sent-tokens" in headers) == (path != "/v1/models")


class _StalledStream:
    """An event stream that sends one event with its usage, then sends more only once
    ``go_on`` is set, until the proxy closes it."""

    content_type = "text/event-stream"

    def __init__(self) -> None:
        self.go_on = threading.Event()
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        yield b'data: {"choices": [], "usage": {"completion_tokens": 7}}\n\n'
        self.go_on.wait(10)
        for _ in range(500):
            if self.closed.is_set():
                return
            yield b'data: {"choices": []}\n\n'
            time.sleep(0.01)

    def close(self) -> None:
        self.closed.set()


def test_a_client_leaving_mid_stream_is_logged_and_recorded(tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture
                                                            ) -> None:
    caplog.set_level(logging.INFO, logger="edge_lingua.proxy")
    stream = _StalledStream()
    ledger = Ledger(tmp_path / "ledger.sqlite")
    config = ProxyConfig(upstream=_StubUpstream(stream=stream), count=len, ledger=ledger)
    body = json.dumps({"model": "m", "stream": True, "messages": MESSAGES}).encode()
    with _serving(config) as proxy:
        with socket.create_connection(proxy.address, timeout=10) as sock:
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: "
                         b"%d\r\n\r\n%s" % (len(body), body))
            received = b""
            while b"completion_tokens" not in received and (chunk := sock.recv(4096)):
                received += chunk
        assert b"completion_tokens" in received  # the client read the first event, then left
        stream.go_on.set()
        deadline = time.monotonic() + 5
        while not ledger.rows() and time.monotonic() < deadline:
            time.sleep(0.02)
    (row,) = ledger.rows()
    assert (row["error"], row["completion_tokens"]) == ("the client went away during the stream",
                                                        7)
    assert stream.closed.is_set()
    assert "client went away during a stream" in [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize(("headers", "code"), [
    ({"Authorization": f"Bearer {CLIENT_TOKEN}"}, 200),
    ({"Authorization": f"bearer   {CLIENT_TOKEN}"}, 200),  # any case, any spacing
    ({"x-api-key": CLIENT_TOKEN}, 200),
    ({}, 401),
    ({"Authorization": CLIENT_TOKEN}, 401),
    ({"Authorization": f"Basic {CLIENT_TOKEN}"}, 401),
    ({"Authorization": f"Bearer {CLIENT_TOKEN}0"}, 401),
    ({"x-api-key": CLIENT_TOKEN[:-1]}, 401),
])
def test_the_client_token_is_taken_as_a_bearer_token_or_an_api_key(
    fault: FaultServer, proxy_for: StartProxy, headers: dict[str, str], code: int
) -> None:
    proxy, _ = proxy_for(fault, client_token=CLIENT_TOKEN)
    connection = http.client.HTTPConnection(*proxy.address, timeout=10)
    try:
        connection.request("GET", "/v1/models", headers=headers)
        response = connection.getresponse()
        assert (response.status, "error" in json.loads(response.read())) == (code, code != 200)
    finally:
        connection.close()


def test_an_http_error_of_an_extra_route_keeps_its_status_and_detail(fault: FaultServer) -> None:
    async def page(request: Request) -> NoReturn:
        raise HTTPException(403, "the playground is switched off")

    config = ProxyConfig(upstream=RemoteClient(fault.url), count=len)
    with _serving(config, [Route("/playground", page)]) as server:
        code, headers, body = request(server, "GET", "/playground")
    assert code == 403 and headers["connection"] == "close"
    assert body == {"error": {"message": "the playground is switched off",
                              "type": "invalid_request_error", "param": None, "code": 403}}


def test_connections_cut_off_for_slow_headers_free_their_place(fault: FaultServer,
                                                              proxy_for: StartProxy) -> None:
    proxy, _ = proxy_for(fault, limits=Limits(header_timeout_s=0.2, max_connections=2))
    socks = [socket.create_connection(proxy.address, timeout=5) for _ in range(2)]
    for sock in socks:
        with sock:
            sock.sendall(b"GET /health HTTP/1.1\r\n")  # the head never ends
            assert sock.recv(4096).startswith(b"HTTP/1.1 408")
    time.sleep(0.1)  # the server sees both connections closed
    received, _ = raw_exchange(proxy, b"GET /health HTTP/1.1\r\nHost: x\r\n"
                                      b"Connection: close\r\n\r\n")
    assert received.startswith(b"HTTP/1.1 200"), received


_BODY_HEAD = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"


@pytest.mark.parametrize(("data", "code", "message", "kind"), [
    (_BODY_HEAD + b"Content-Length: 5000\r\n\r\n", 413,
     "the request body is over the limit of 2000 bytes", "request_too_large"),
    (_BODY_HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
     + (b"5DC\r\n" + b"x" * 1500 + b"\r\n") * 2 + b"0\r\n\r\n", 413,
     "the request body is over the limit of 2000 bytes", "request_too_large"),
    (_BODY_HEAD + b'Content-Length: 100\r\n\r\n{"messages"', 408,
     "the request body did not arrive within 0.2s", "request_timeout"),
], ids=["declared-too-large", "chunked-too-large", "too-slow"])
def test_a_body_that_cannot_be_read_gets_an_exact_json_error_and_a_close(
    fault: FaultServer, proxy_for: StartProxy, data: bytes, code: int, message: str, kind: str
) -> None:
    proxy, _ = proxy_for(fault, limits=Limits(max_body_bytes=2000, body_timeout_s=0.2))
    received, _ = raw_exchange(proxy, data)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d" % code) and b"\r\nconnection: close" in head.lower()
    assert json.loads(body) == {"error": {"message": message, "type": kind, "param": "body",
                                          "code": code}}
    assert fault.received == []


@pytest.mark.parametrize(("client", "logged_client"), [(("10.1.2.3", 5000), "10.1.2.3"),
                                                       (None, "-")])
def test_the_access_log_line_is_client_method_path_status_and_milliseconds(
        caplog, client, logged_client):
    import anyio

    from edge_lingua.proxy.app import AccessLog

    async def slow_app(scope, receive, send) -> None:
        await anyio.sleep(0.05)
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b"secret body"})

    sent: list[dict] = []

    async def send(message) -> None:
        sent.append(message)

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": "POST", "path": "/v1/chat\ncompletions",
             "query_string": b"key=secret", "headers": [(b"authorization", b"Bearer secret")],
             "client": client}
    with caplog.at_level("INFO", logger="edge_lingua.proxy"):
        started = time.perf_counter()
        anyio.run(AccessLog(slow_app), scope, receive, send)
        wall_ms = (time.perf_counter() - started) * 1000
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    [line] = [r.getMessage() for r in caplog.records if r.name.startswith("edge_lingua.proxy")]
    head, _, took = line.rpartition(" ")
    assert head == f"{logged_client} POST /v1/chat\\x0acompletions 418"
    assert took.endswith("ms") and 50.0 <= float(took[:-2]) <= wall_ms + 0.1
    assert "secret" not in line
