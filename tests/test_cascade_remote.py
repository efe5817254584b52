"""RemoteClient against a loopback fault server: retries, Retry-After, timeouts, breaker."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from edge_lingua.cascade import remote as remote_module
from edge_lingua.cascade.breaker import CLOSED, OPEN, CircuitBreaker
from edge_lingua.cascade.remote import RemoteClient, RetryPolicy
from edge_lingua.errors import (
    CircuitOpenError,
    InvalidArgumentError,
    RemoteRateLimitedError,
    RemoteRequestError,
    RemoteUnavailableError,
)
from tests.servers import DROP, GARBAGE, MODELS, OK, Action, FaultServer, delay, status

pytestmark = pytest.mark.timeout(60)

KEY = "sk-test-upstream-key-never-logged-0123456789"
FAST = RetryPolicy(max_retries=3, backoff_base_s=0.01, backoff_max_s=0.05)
MESSAGES = [{"role": "user", "content": "How many clips did Natalia sell?"}]


# the three ways to call the remote, each with a request the fault server answers
CALLS: dict[str, Callable[[RemoteClient], Any]] = {
    "chat": lambda remote: remote.chat({"messages": MESSAGES}),
    "get": lambda remote: remote.get("/models"),
    "stream": lambda remote: remote.stream({"messages": MESSAGES}),
}


def client(server: FaultServer, **kwargs) -> RemoteClient:
    options = {"api_key": KEY, "timeout_s": 2.0, "retry": FAST,
               "breaker": CircuitBreaker(failure_threshold=10, reset_after_s=60), **kwargs}
    return RemoteClient(server.url, **options)


def test_success_sends_key_model_and_payload(fault):
    reply = client(fault, model="m-1").chat({"messages": MESSAGES, "max_tokens": 8})
    assert reply.attempts == 1 and reply.status == 200
    assert reply.body["choices"][0]["message"]["content"] == MESSAGES[0]["content"]
    (received,) = fault.received
    assert received.path == "/v1/chat/completions"
    assert received.headers["Authorization"] == f"Bearer {KEY}"
    assert received.body == {"messages": MESSAGES, "max_tokens": 8, "model": "m-1",
                             "stream": False}


@pytest.mark.parametrize(
    "failure", [status(500), status(502), status(503), status(429), status(408), status(504),
                DROP, GARBAGE, delay(3.0)],
    ids=["500", "502", "503", "429", "408", "504", "dropped", "garbage-json", "timeout"],
)
def test_transient_failures_are_retried_until_success(fault, failure):
    fault.script(failure, failure)
    reply = client(fault, timeout_s=1.0).chat({"messages": MESSAGES}, retry_timeouts=True)
    assert reply.attempts == 3
    assert len(fault.received) == 3
    keys = {r.headers["Idempotency-Key"] for r in fault.received}
    assert len(keys) == 1 and len(keys.pop()) >= 16  # one key, reused on every retry


def test_every_call_gets_its_own_idempotency_key_or_the_callers(fault):
    remote = client(fault)
    remote.chat({"messages": MESSAGES})
    remote.chat({"messages": MESSAGES})
    remote.chat({"messages": MESSAGES}, idempotency_key="request-7")
    keys = [r.headers.get("Idempotency-Key") for r in fault.received]
    assert keys[0] and keys[1] and keys[0] != keys[1] and keys[2] == "request-7"


def test_a_timed_out_post_is_not_sent_again_unless_the_caller_allows(fault):
    fault.script(delay(3.0), delay(3.0))
    with pytest.raises(RemoteUnavailableError, match=r"within 1s"):
        client(fault, timeout_s=1.0).chat({"messages": MESSAGES})
    assert len(fault.received) == 1


def test_429_is_not_a_breaker_failure_and_keeps_its_retry_after(fault):
    fault.script(default=status(429, retry_after="120"))
    breaker = CircuitBreaker(failure_threshold=1, reset_after_s=60)
    remote = client(fault, breaker=breaker)
    for _ in range(3):
        with pytest.raises(RemoteRateLimitedError) as info:
            remote.chat({"messages": MESSAGES})
        assert info.value.retry_after == 120 and info.value.status == 429
        assert b"injected 429" in info.value.body
    assert breaker.state == CLOSED and len(fault.received) == 3  # Retry-After over the limit


@pytest.mark.parametrize("usage", ['"12"', "[1]", '{"completion_tokens": "3"}'])
def test_malformed_answers_are_retried_then_unavailable(fault, usage):
    answer = '{"choices": [{"message": {"content": "x"}}], "usage": ' + usage + "}"
    fault.script(default=Action("raw", body=answer.encode()))
    with pytest.raises(RemoteUnavailableError, match="usage"):
        client(fault, retry=RetryPolicy(max_retries=1, backoff_base_s=0.01)).chat(
            {"messages": MESSAGES})
    assert len(fault.received) == 2


def test_retry_after_is_honoured(fault):
    fault.script(status(429, retry_after="1"))
    started = time.monotonic()
    reply = client(fault).chat({"messages": MESSAGES})
    assert reply.attempts == 2
    first, second = fault.received
    assert second.at - first.at >= 0.95
    assert time.monotonic() - started < 5


def test_retry_after_over_the_limit_gives_up_at_once(fault):
    fault.script(status(503, retry_after="120"))
    started = time.monotonic()
    with pytest.raises(RemoteUnavailableError, match="Retry-After 120s"):
        client(fault, retry=RetryPolicy(max_retries=3, max_retry_after_s=5)).chat(
            {"messages": MESSAGES})
    assert len(fault.received) == 1 and time.monotonic() - started < 2


def test_exhausted_retries_raise_unavailable_without_the_key(fault, caplog):
    fault.script(default=status(500))
    caplog.set_level(logging.DEBUG)
    remote = client(fault)
    with pytest.raises(RemoteUnavailableError) as info:
        remote.chat({"messages": MESSAGES})
    assert len(fault.received) == 4  # 1 + 3 retries
    assert str(info.value) == f"remote {remote.base_url} unavailable: HTTP 500"
    assert [r.getMessage() for r in caplog.records if r.name == "edge_lingua.cascade.remote"] == [
        f"remote {remote.base_url} attempt {n} failed: HTTP 500" for n in (1, 2, 3, 4)]
    assert KEY not in str(info.value) and KEY not in caplog.text and KEY not in repr(remote)


def test_client_errors_are_not_retried(fault):
    fault.script(status(400))
    with pytest.raises(RemoteRequestError) as info:
        client(fault).chat({"messages": MESSAGES})
    assert info.value.status == 400 and b"injected 400" in info.value.body
    assert len(fault.received) == 1


def test_breaker_opens_and_stops_calls_then_probes_and_closes(fault):
    fault.script(default=DROP)
    breaker = CircuitBreaker(failure_threshold=3, reset_after_s=0.5)
    remote = client(fault, retry=RetryPolicy(max_retries=5, backoff_base_s=0.01), breaker=breaker)
    with pytest.raises(RemoteUnavailableError):
        remote.chat({"messages": MESSAGES})
    assert len(fault.received) == 3 and breaker.state == OPEN  # stopped before 6 attempts
    with pytest.raises(CircuitOpenError):
        remote.chat({"messages": MESSAGES})
    assert len(fault.received) == 3  # nothing went out while open
    fault.script(default=OK)
    time.sleep(0.6)
    assert remote.chat({"messages": MESSAGES}).attempts == 1
    assert len(fault.received) == 4


def test_stream_relays_events_and_retries_before_the_first_byte(fault):
    fault.script(status(503))
    stream = client(fault).stream({"messages": MESSAGES})
    assert stream.attempts == 2 and stream.status == 200
    raw = b"".join(stream)
    events = [line[6:] for line in raw.decode().splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    text = "".join(json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1])
    assert text == MESSAGES[0]["content"]
    assert fault.received[-1].body["stream"] is True


@pytest.mark.parametrize("call", list(CALLS.values()), ids=list(CALLS))
def test_unreachable_port_is_unavailable_and_says_why(call: Callable[[RemoteClient], Any]):
    with FaultServer() as server:
        url = server.url
    with pytest.raises(RemoteUnavailableError,
                       match=r"unavailable: ConnectionRefusedError: .*[Cc]onnection refused$"):
        call(RemoteClient(url, retry=FAST))


@pytest.mark.parametrize("url", ["ftp://x/v1", "not a url", "http:///v1"])
def test_bad_base_urls_are_rejected(url):
    message = f"remote base URL must be http(s)://host[:port][/path], got {url!r}"
    with pytest.raises(InvalidArgumentError, match=f"^{re.escape(message)}$"):
        RemoteClient(url)


@pytest.mark.parametrize(("options", "message"), [
    ({"timeout_s": 0}, "timeout_s must be > 0, got 0"),
    ({"timeout_s": -1.5}, "timeout_s must be > 0, got -1.5"),
    ({"auth": "basic"}, "auth must be one of ('bearer', 'x-api-key'), got 'basic'"),
])
def test_bad_client_settings_are_rejected_with_their_values(options, message):
    with pytest.raises(InvalidArgumentError, match=f"^{re.escape(message)}$"):
        RemoteClient("http://127.0.0.1:9/v1", **options)


def test_https_urls_are_taken_and_a_trailing_slash_is_dropped():
    assert RemoteClient("https://api.example.com/v1/").base_url == "https://api.example.com/v1"
    assert RemoteClient("http://127.0.0.1:9/").base_url == "http://127.0.0.1:9"


@pytest.mark.parametrize(("auth", "key", "sent", "absent"), [
    ("bearer", KEY, {"authorization": f"Bearer {KEY}"}, {"x-api-key", "anthropic-version"}),
    ("x-api-key", KEY, {"x-api-key": KEY, "anthropic-version": remote_module.ANTHROPIC_VERSION},
     {"authorization"}),
    ("x-api-key", None, {"anthropic-version": remote_module.ANTHROPIC_VERSION},
     {"authorization", "x-api-key"}),
    ("bearer", None, {}, {"authorization", "x-api-key", "anthropic-version"}),
])
def test_requests_are_json_and_authenticate_in_the_style_asked(fault, auth, key, sent, absent):
    RemoteClient(fault.url, api_key=key, auth=auth, retry=FAST).chat({"messages": MESSAGES})
    (received,) = fault.received
    headers = {name.lower(): value for name, value in received.headers.items()}
    assert headers["content-type"] == "application/json"
    assert headers["accept"] == "application/json"
    assert {name: headers.get(name) for name in sent} == sent
    assert not absent & set(headers)


def test_get_retries_transient_failures_and_counts_the_attempts(fault):
    fault.script(status(503), DROP)
    reply = client(fault).get("/models")
    assert (reply.status, reply.attempts, reply.body) == (200, 3, MODELS)
    assert [r.path for r in fault.received] == ["/v1/models"] * 3
    assert all(r.headers["Authorization"] == f"Bearer {KEY}" for r in fault.received)


def test_get_client_errors_are_not_retried(fault):
    fault.script(status(404))
    with pytest.raises(RemoteRequestError) as info:
        client(fault).get("/models")
    assert info.value.status == 404 and len(fault.received) == 1


@pytest.mark.parametrize("call", [CALLS["chat"], CALLS["get"]], ids=["chat", "get"])
def test_a_reply_reports_the_wall_time_of_the_call(fault, call: Callable[[RemoteClient], Any]):
    fault.script(status(503))  # a retry: the time covers every attempt
    started = time.perf_counter()
    reply = call(client(fault))
    elapsed = time.perf_counter() - started
    assert reply.attempts == 2 and 0 < reply.elapsed_s <= elapsed


@pytest.mark.parametrize("call", [CALLS["chat"], CALLS["get"]], ids=["chat", "get"])
def test_an_answer_over_the_size_limit_is_not_read_whole(
    fault, monkeypatch: pytest.MonkeyPatch, call: Callable[[RemoteClient], Any]
) -> None:
    monkeypatch.setattr(remote_module, "_MAX_ANSWER_BYTES", 16)  # every answer is longer
    with pytest.raises(RemoteUnavailableError, match="unparseable JSON answer"):
        call(client(fault, retry=RetryPolicy(max_retries=0)))


def test_stream_posts_to_chat_completions_with_the_callers_idempotency_key(fault):
    b"".join(client(fault).stream({"messages": MESSAGES}, idempotency_key="request-9"))
    (received,) = fault.received
    assert received.path == "/v1/chat/completions"
    assert received.headers["Idempotency-Key"] == "request-9"


def test_a_stream_that_timed_out_is_sent_again_when_the_caller_allows(fault):
    fault.script(delay(0.5))
    stream = client(fault, timeout_s=0.2).stream({"messages": MESSAGES}, retry_timeouts=True)
    assert stream.attempts == 2 and b"[DONE]" in b"".join(stream)
    assert len(fault.received) == 2


@pytest.mark.parametrize(("answer", "content_type"), [
    (OK, "text/event-stream"),
    (Action("raw", body=b'{"choices": []}'), "application/json"),  # the remote did not stream
])
def test_a_stream_reports_the_content_type_the_remote_answered_with(
    fault, answer: Action, content_type: str
) -> None:
    fault.script(answer)
    stream = client(fault).stream({"messages": MESSAGES})
    assert stream.content_type == content_type and b"".join(stream)


class _NoContentType(BaseHTTPRequestHandler):
    """Answers every POST with an empty 200 that has no Content-Type header."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def untyped_remote() -> Iterator[str]:
    """The base URL of a loopback endpoint whose answers carry no Content-Type."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NoContentType)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_a_stream_answer_without_a_content_type_is_taken_as_an_event_stream(untyped_remote):
    stream = RemoteClient(untyped_remote, retry=FAST).stream({"messages": MESSAGES})
    assert stream.content_type == "text/event-stream" and b"".join(stream) == b""


def test_a_stream_that_breaks_off_is_unavailable_after_what_arrived(fault):
    fault.script(Action("break", body=b"data: {}\n\n"))
    received = []
    with pytest.raises(RemoteUnavailableError,
                       match=r"^the remote stream broke off: IncompleteRead: "):
        for chunk in client(fault).stream({"messages": MESSAGES}):
            received.append(chunk)
    assert received == [b"data: {}\n\n"]
