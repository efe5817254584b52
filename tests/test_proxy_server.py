"""The compressing proxy, driven by the official ``openai`` client, in front of a loopback
fault server: savings headers, streaming, auth, upstream faults, key hygiene, CLI errors."""

from __future__ import annotations

import http.client
import json
import logging
import re
import subprocess
import sys
import time

import pytest

from edge_lingua.proxy import ProxyServer, mark_scope
from tests.servers import DROP, GARBAGE, REPO, UPSTREAM_KEY, status

openai = pytest.importorskip("openai", reason="the openai client is a test dependency")

pytestmark = pytest.mark.timeout(90)

CLIENT_TOKEN = "proxy-client-token-42"
DOCUMENT = (
    "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes "
    "muffins for her friends every day with four. She sells the remainder at the farmers' "
    "market daily for $2 per fresh duck egg. "
) * 5
QUESTION = "How much in dollars does she make every day at the farmers' market?"
MESSAGES = [
    {"role": "system", "content": "You answer math questions. " + DOCUMENT},
    {"role": "user", "content": QUESTION},
]


def client(proxy: ProxyServer, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.url + "/v1", api_key=key, max_retries=0, timeout=20)


def test_chat_completion_is_compressed_forwarded_and_reports_savings(fault, proxy_for, caplog):
    caplog.set_level(logging.DEBUG)
    proxy, ledger = proxy_for(fault)
    raw = client(proxy).chat.completions.with_raw_response.create(
        model="gemma", messages=MESSAGES, max_tokens=8)
    completion = raw.parse()
    (received,) = fault.received
    sent_system = received.body["messages"][0]["content"]
    assert received.body["messages"][1] == {"role": "user", "content": QUESTION}  # last: as is
    assert received.body["model"] == "gemma" and received.body["max_tokens"] == 8
    assert completion.choices[0].message.content == sent_system + "\n" + QUESTION
    original = int(raw.headers["x-edge-lingua-original-tokens"])
    sent = int(raw.headers["x-edge-lingua-sent-tokens"])
    assert int(raw.headers["x-edge-lingua-saved-tokens"]) == original - sent > 0
    assert sent < 0.75 * original
    assert float(raw.headers["x-edge-lingua-ratio"]) == pytest.approx(original / sent, abs=1e-3)
    assert float(raw.headers["x-edge-lingua-compress-ms"]) > 0
    assert received.headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert UPSTREAM_KEY not in caplog.text
    (row,) = ledger.rows()
    assert (row["route"], row["original_tokens"], row["sent_tokens"]) == ("proxy", original, sent)
    assert row["completion_tokens"] == 3 and row["model"] == "gemma"
    compress_ms = float(raw.headers["x-edge-lingua-compress-ms"])
    assert row["compress_s"] == pytest.approx(compress_ms / 1000, abs=1e-4)
    assert 0 < row["compress_s"] < row["latency_s"] < 60 and row["redactions"] == 0


def test_streaming_is_relayed_with_savings_headers(fault, proxy_for):
    proxy, ledger = proxy_for(fault)
    raw = client(proxy).chat.completions.with_raw_response.create(
        model="gemma", messages=MESSAGES, max_tokens=8, stream=True,
        extra_headers={"Idempotency-Key": "stream-key-1"})
    assert int(raw.headers["x-edge-lingua-saved-tokens"]) > 0
    # an event stream, never cached, sent upstream under the client's key
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.headers["cache-control"] == "no-cache"
    assert fault.received[0].headers["Idempotency-Key"] == "stream-key-1"
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    received = fault.received[0].body
    assert received["stream"] is True
    assert text == received["messages"][0]["content"] + "\n" + QUESTION
    assert chunks[-1].choices[0].finish_reason == "stop"
    deadline = time.monotonic() + 5  # the row lands as the stream's last bytes go out
    while not ledger.rows() and time.monotonic() < deadline:
        time.sleep(0.02)
    (row,) = ledger.rows()
    assert row["error"] is None and row["sent_tokens"] > 0


def test_client_bearer_token_is_required_when_configured(fault, proxy_for):
    proxy, _ = proxy_for(fault, client_token=CLIENT_TOKEN)
    with pytest.raises(openai.AuthenticationError):
        client(proxy, key="wrong").chat.completions.create(model="m", messages=MESSAGES)
    assert fault.received == []
    ok = client(proxy, key=CLIENT_TOKEN).chat.completions.create(model="m", messages=MESSAGES)
    assert ok.choices[0].message.content.endswith(QUESTION)
    assert fault.received[0].headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"


@pytest.mark.parametrize("failure", [status(500), status(429, "0"), DROP, GARBAGE],
                         ids=["500", "429", "dropped", "garbage"])
def test_transient_upstream_faults_are_retried_transparently(fault, proxy_for, failure):
    fault.script(failure)
    proxy, _ = proxy_for(fault)
    completion = client(proxy).chat.completions.create(model="m", messages=MESSAGES)
    assert completion.choices[0].message.content.endswith(QUESTION)
    assert len(fault.received) == 2


def test_unreachable_upstream_is_a_502_and_rejections_pass_through(fault, proxy_for):
    proxy, ledger = proxy_for(fault)
    fault.script(default=DROP)
    with pytest.raises(openai.APIStatusError) as info:
        client(proxy).chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.status_code == 502
    assert "unavailable" in info.value.message and UPSTREAM_KEY not in info.value.message
    fault.script(status(400), default=status(400))
    with pytest.raises(openai.BadRequestError, match="injected 400"):
        client(proxy).chat.completions.create(model="m", messages=MESSAGES)
    assert [bool(r["error"]) for r in ledger.rows()] == [True, True]
    assert all(r["sent_tokens"] == 0 for r in ledger.rows())


def test_extension_field_turns_compression_off_and_is_not_forwarded(fault, proxy_for):
    proxy, _ = proxy_for(fault)
    raw = client(proxy).chat.completions.with_raw_response.create(
        model="m", messages=MESSAGES, extra_body={"edge_lingua": {"compress": False}})
    assert raw.headers["x-edge-lingua-saved-tokens"] == "0"
    body = fault.received[0].body
    assert "edge_lingua" not in body and body["messages"] == MESSAGES


def test_bad_requests_get_openai_style_errors(fault, proxy_for):
    proxy, _ = proxy_for(fault)
    host, port = proxy.address

    def post(path: str, data: bytes) -> tuple[int, dict]:
        connection = http.client.HTTPConnection(host, port, timeout=10)
        try:
            connection.request("POST", path, body=data,
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()

    assert post("/v1/chat/completions", b"{nope")[0] == 400
    code, body = post("/v1/chat/completions", json.dumps({"messages": []}).encode())
    assert code == 400 and "messages" in body["error"]["message"]
    assert post("/v1/chat/completions", json.dumps({"messages": [{"content": "x"}]}).encode())[0] \
        == 400
    assert post("/v1/embeddings", b"{}")[0] == 404
    assert fault.received == []


def test_mark_scope_leaves_client_marks_and_the_last_message():
    messages = [{"role": "system", "content": "a"}, {"role": "user", "content": "b",
                                                      "compress": False},
                {"role": "tool", "content": "c"}, {"role": "user", "content": "d"}]
    marked = mark_scope(messages, "context")
    assert [m.get("compress") for m in marked] == [True, False, None, None]
    assert [m.get("compress") for m in mark_scope(messages, "all")] == [True, False, None, True]
    assert mark_scope(messages, "none") == messages


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--upstream", "http://127.0.0.1:9/v1", "--port", "0"], "--port"),
        (["--upstream", "http://127.0.0.1:9/v1", "--rate", "1.5"], "--rate"),
        (["--upstream", "ftp://somewhere"], "base URL"),
        (["--upstream", "http://127.0.0.1:9/v1", "--no-compress"], "--tokenizer"),
    ],
)
def test_serve_rejects_bad_arguments_with_one_line(args, message):
    out = subprocess.run([sys.executable, "-m", "edge_lingua.cli", "serve", *args],
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and message in out.stderr


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_the_server_runs_on_a_named_daemon_thread_and_answers_with_no_server_header(
        host, caplog):
    import threading

    from edge_lingua.cascade import RemoteClient
    from edge_lingua.proxy import ProxyConfig

    config = ProxyConfig(upstream=RemoteClient("http://127.0.0.1:9"), count=len)
    server = ProxyServer(config, host=host, port=0)
    assert server.address == (host, server.address[1]) and server.address[1] > 0
    with caplog.at_level(logging.DEBUG):
        server.start()
        try:
            [thread] = [t for t in threading.enumerate() if t.name == "edge-lingua-proxy"]
            assert thread.daemon  # a proxy left running never keeps the app from exiting
            connection = http.client.HTTPConnection(*server.address, timeout=10)
            connection.request("GET", "/health")
            response = connection.getresponse()
            assert response.status == 200 and json.loads(response.read())
            assert response.getheader("server") is None  # no server name or version
            connection.close()
        finally:
            server.stop()
    assert not thread.is_alive()
    assert not [r for r in caplog.records if r.name.startswith("uvicorn.access")]
    with pytest.raises(OSError):  # the port is closed
        http.client.HTTPConnection(*server.address, timeout=2).request("GET", "/health")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_server_that_cannot_start_says_where_and_one_never_started_stops_cleanly():
    from edge_lingua.cascade import RemoteClient
    from edge_lingua.errors import InvalidArgumentError
    from edge_lingua.proxy import ProxyConfig

    config = ProxyConfig(upstream=RemoteClient("http://127.0.0.1:9"), count=len)
    never = ProxyServer(config, port=0)
    never.stop()  # nothing to join; the port is free again
    ProxyServer(config, port=never.address[1]).stop()
    server = ProxyServer(config, port=0)
    server._socket.close()  # uvicorn cannot serve a closed socket: the thread dies
    started = time.monotonic()
    message = f"^the proxy did not start on {re.escape(server.url)}$"
    with pytest.raises(InvalidArgumentError, match=message):
        server.start(ready_timeout_s=20)
    assert time.monotonic() - started < 10  # at once: not at the end of the wait for ready


def test_stop_says_so_when_the_server_does_not_end_in_time():
    import threading

    from edge_lingua.cascade import RemoteClient
    from edge_lingua.errors import ProxyStopError
    from edge_lingua.proxy import ProxyConfig

    config = ProxyConfig(upstream=RemoteClient("http://127.0.0.1:9"), count=len)
    server = ProxyServer(config, port=0).start()
    serving, release = server._thread, threading.Event()
    server._thread = threading.Thread(target=release.wait, daemon=True)  # one that hangs
    server._thread.start()
    message = f"^the proxy on {re.escape(server.url)} did not stop within 0.2s$"
    with pytest.raises(ProxyStopError, match=message):
        server.stop(timeout_s=0.2)
    release.set()
    server._thread = serving
    server.stop()  # the real server had been told to end: it has
    assert serving is not None and not serving.is_alive()
