"""``edge-lingua serve`` as a process, seen only through HTTP: redaction of what goes upstream,
and every error path answering with a status and a JSON error (411, 413, 500), or a stream
that ends with an error event when the upstream breaks mid-answer, never a dropped connection.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.controlled_models import lookup_classifier
from tests.servers import (
    REPO,
    die_with_parent,
    echo_answer,
    free_port,
    stop_process,
    wait_http,
)

pytestmark = pytest.mark.timeout(180)

EMAIL = "jane.doe@example.com"
BROKEN_STREAM_MODEL = "breaks-mid-stream"


class _Upstream(BaseHTTPRequestHandler):
    """An OpenAI-style upstream that records bodies; model ``breaks-mid-stream`` sends one
    server-sent event and then closes the connection in the middle of the chunked body."""

    protocol_version = "HTTP/1.1"
    received: list[dict[str, Any]]

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        self.server.received.append(body)  # type: ignore[attr-defined]
        model = str(body.get("model"))
        if model.startswith("fails-once-") and model not in self.server.failed:  # type: ignore[attr-defined]
            self.server.failed.add(model)  # type: ignore[attr-defined]
            data = json.dumps({"error": {"message": "injected"}}).encode()
            self.send_response(int(model.rsplit("-", 1)[1]))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if model == BROKEN_STREAM_MODEL:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            event = b'data: {"choices": [{"index": 0, "delta": {"content": "Hal"}}]}\n\n'
            self.wfile.write(f"{len(event):X}\r\n".encode() + event + b"\r\n")
            self.wfile.write(b"40\r\ndata: {\"choi")  # a chunk cut short, then the socket closes
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        data = json.dumps(echo_answer(body)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def upstream() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    server.received = []  # type: ignore[attr-defined]
    server.failed = set()  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _serve(upstream: ThreadingHTTPServer, bundle: Path, work: Path, *extra: str) -> Iterator[str]:
    port = free_port()
    args = [sys.executable, "-m", "edge_lingua.cli", "serve", "--upstream",
            f"http://127.0.0.1:{upstream.server_address[1]}/v1", "--port", str(port),
            "--bundle", str(bundle), "--rate", "0.5", "--retries", "0", "--timeout", "10",
            *extra]
    log = (work / f"serve-{port}.log").open("wb")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                               env={**os.environ, "HF_HUB_OFFLINE": "1"},
                               preexec_fn=die_with_parent)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", 120, process)
        yield f"127.0.0.1:{port}"
    finally:
        stop_process(process)
        log.close()


@pytest.fixture(scope="module")
def proxy(upstream, tmp_path_factory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("proxy-http")
    bundle = lookup_classifier(work / "bundle", {}, max_seq_len=64)
    yield from _serve(upstream, bundle, work, "--redact")


@pytest.fixture(scope="module")
def retrying_proxy(upstream, tmp_path_factory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("proxy-retrying")
    bundle = lookup_classifier(work / "bundle", {}, max_seq_len=64)
    yield from _serve(upstream, bundle, work, "--retries", "2")


@pytest.fixture(scope="module")
def broken_model_proxy(upstream, tmp_path_factory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("proxy-broken-model")
    bundle = lookup_classifier(work / "bundle", {}, table_rows=40)  # fails on most ids
    yield from _serve(upstream, bundle, work)


def _request(address: str, body: bytes | None, headers: dict[str, str],
             method: str = "POST") -> tuple[int, bytes]:
    host, port = address.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.putrequest(method, "/v1/chat/completions")
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        if body is not None:
            # the proxy may answer (413) before the whole upload is read: read that answer
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                connection.send(body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _chat(address: str, payload: dict[str, Any]) -> tuple[int, bytes]:
    data = json.dumps(payload).encode()
    return _request(address, data, {"Content-Type": "application/json",
                                    "Content-Length": str(len(data))})


def _messages(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": text}, {"role": "user", "content": "Answer briefly."}]


def test_redact_keeps_personal_data_from_the_upstream(proxy, upstream) -> None:
    before = len(upstream.received)
    context = f"Write to {EMAIL} or call +1 415 555 0199 about the ducks and the eggs. " * 3
    code, _ = _chat(proxy, {"model": "m", "messages": _messages(context)})
    assert code == 200
    (sent,) = upstream.received[before:]
    wire = json.dumps(sent)
    assert EMAIL not in wire and "555 0199" not in wire
    assert "[EMAIL]" in wire


def test_a_chunked_body_over_the_limit_is_413(proxy, upstream) -> None:
    # uvicorn reads chunked bodies (no Content-Length): the body limit still holds while reading
    before = len(upstream.received)
    body = json.dumps({"model": "m", "messages": _messages("hello " * 1_000_000)}).encode()
    chunked = f"{len(body):X}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    code, data = _request(proxy, chunked, {"Content-Type": "application/json",
                                           "Transfer-Encoding": "chunked"})
    assert code == 413
    assert json.loads(data)["error"]["message"]
    assert len(upstream.received) == before


def test_a_body_over_the_limit_is_413_without_reading_it(proxy, upstream) -> None:
    before = len(upstream.received)
    code, data = _request(proxy, None, {"Content-Type": "application/json",
                                        "Content-Length": str(1 << 40)})
    assert code == 413
    assert json.loads(data)["error"]["message"]
    assert len(upstream.received) == before


def test_a_model_that_fails_is_500_with_a_json_error(broken_model_proxy, upstream) -> None:
    before = len(upstream.received)
    code, data = _chat(broken_model_proxy,
                       {"model": "m", "messages": _messages("ducks lay eggs every day")})
    assert code == 500
    error = json.loads(data)["error"]
    assert error["message"].startswith("compression failed: ")
    assert (error["type"], error["code"]) == ("server_error", 500)
    assert len(upstream.received) == before  # nothing is sent uncompressed behind its back


def test_an_upstream_breaking_mid_stream_ends_the_stream_with_an_error_event(
    proxy, upstream
) -> None:
    code, data = _chat(proxy, {"model": BROKEN_STREAM_MODEL, "stream": True,
                               "messages": _messages("ducks lay eggs")})
    assert code == 200
    events = [line[len("data: "):] for line in data.decode().splitlines()
              if line.startswith("data: ")]
    assert json.loads(events[0])["choices"][0]["delta"]["content"] == "Hal"
    assert "error" in json.loads(events[-1]), data  # a complete body whose last event says why


@pytest.mark.parametrize("code", [408, 429, 500, 502, 503, 504])
def test_a_transient_upstream_status_is_retried(retrying_proxy, upstream, code: int) -> None:
    before = len(upstream.received)
    model = f"fails-once-{code}"
    status, data = _chat(retrying_proxy, {"model": model, "messages": _messages("ducks lay")})
    assert status == 200, data
    assert [b["model"] for b in upstream.received[before:]] == [model, model]
