"""An OpenAI-compatible compressing proxy on the standard library's ``ThreadingHTTPServer``.

``POST /v1/chat/completions`` (plain or ``stream: true``) compresses the request's
context, forwards it to the upstream endpoint and returns the upstream's answer as is,
with the savings in ``X-Edge-Lingua-*`` response headers. ``GET /health`` answers
``{"status": "ok"}``. Clients may need a bearer token; the upstream key is only ever put
in the upstream request's ``Authorization`` header, never logged.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from edge_lingua.cascade.ledger import Entry, Ledger
from edge_lingua.cascade.prompt import (
    COMPRESS_KEY,
    PreparedRequest,
    PromptCompressor,
    TokenCounter,
    prepare,
)
from edge_lingua.cascade.redaction import Redactor
from edge_lingua.cascade.remote import RemoteClient
from edge_lingua.errors import (
    CircuitOpenError,
    EdgeLinguaError,
    InvalidArgumentError,
    InvalidInputError,
    RemoteRequestError,
    RemoteUnavailableError,
)

log = logging.getLogger(__name__)

CHAT_PATH = "/v1/chat/completions"
EXTENSION_KEY = "edge_lingua"  # optional request field: {"rate", "target_token", "compress"}
SCOPES = ("context", "all", "none")
MAX_BODY_BYTES = 32 * 1024 * 1024
HEADER_PREFIX = "X-Edge-Lingua-"


@dataclass
class ProxyConfig:
    """What the proxy does with each request.

    ``scope``: which messages it compresses when the client marks none itself:
    ``context`` every message but the last (the live question stays as written),
    ``all`` every message, ``none`` only parts the client marks with ``"compress": true``.
    """

    upstream: RemoteClient
    count: TokenCounter
    compressor: PromptCompressor | None = None
    rate: float | None = 0.5
    target_token: int | None = None
    scope: str = "context"
    client_token: str | None = None
    redactor: Redactor | None = None
    ledger: Ledger | None = None
    force_tokens: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise InvalidArgumentError(f"scope must be one of {SCOPES}, got {self.scope!r}")


def mark_scope(messages: list[dict[str, Any]], scope: str) -> list[dict[str, Any]]:
    """Mark messages compressible by scope, leaving any mark the client set alone."""
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


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "edge-lingua-proxy"
    server: ProxyHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        if self.path == "/health":
            self._json(HTTPStatus.OK, {"status": "ok"})
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no route {self.path}", "not_found")

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != CHAT_PATH:
            self._error(HTTPStatus.NOT_FOUND, f"no route {self.path}", "not_found")
            return
        config = self.server.config
        if config.client_token is not None and not self._authorised(config.client_token):
            self._error(HTTPStatus.UNAUTHORIZED, "missing or wrong bearer token", "invalid_api_key")
            return
        body = self._read_json()
        if body is None:
            return
        started = time.perf_counter()
        try:
            payload, prepared = _prepare(body, config)
        except InvalidInputError as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc), "invalid_request_error")
            return
        except EdgeLinguaError as exc:
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"compression failed: {exc}",
                        "server_error")
            return
        headers = _savings_headers(prepared)
        model = payload.get("model")

        def record(completion: int, error: str | None) -> None:
            self._record(prepared, model, completion, started, error)

        try:
            if payload.get("stream"):
                self._relay_stream(config.upstream, payload, headers, record)
                return
            reply = config.upstream.chat(payload)
        except RemoteRequestError as exc:
            record(0, str(exc))
            self._raw(exc.status, exc.body, "application/json", headers)
            return
        except RemoteUnavailableError as exc:
            record(0, str(exc))
            status = (HTTPStatus.SERVICE_UNAVAILABLE if isinstance(exc, CircuitOpenError)
                      else HTTPStatus.BAD_GATEWAY)
            self._error(status, str(exc), "upstream_unavailable", headers)
            return
        usage = reply.body.get("usage") or {}
        record(int(usage.get("completion_tokens") or 0), None)
        self._json(HTTPStatus.OK, reply.body, headers)

    # --- helpers ------------------------------------------------------------------------
    def _authorised(self, token: str) -> bool:
        given = self.headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(),
                                                                  token.encode())

    def _read_json(self) -> dict[str, Any] | None:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._error(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required", "invalid_request")
            return None
        if length < 0 or length > MAX_BODY_BYTES:
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request body too large",
                        "invalid_request")
            return None
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._error(HTTPStatus.BAD_REQUEST, f"body is not JSON: {exc}", "invalid_request_error")
            return None
        if not isinstance(body, dict):
            self._error(HTTPStatus.BAD_REQUEST, "body must be a JSON object",
                        "invalid_request_error")
            return None
        return body

    def _relay_stream(
        self, upstream: RemoteClient, payload: dict[str, Any], headers: dict[str, str],
        record: Callable[[int, str | None], None],
    ) -> None:
        """Relay the upstream's server-sent events; the ledger row is written before the
        stream's last chunk, so a client that has read the whole answer finds it there."""
        stream = upstream.stream(payload)
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", stream.content_type or "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        usage = _UsageScanner()
        error = None
        recorded = False
        relayed = b"\n\n"  # the end of what was relayed: is an event open?
        try:
            try:
                for chunk in stream:
                    usage.feed(chunk)
                    self._chunk(chunk)
                    relayed = (relayed + chunk)[-2:]
            except RemoteUnavailableError as exc:
                error = str(exc)
                event = {"error": {"message": error, "type": "upstream_unavailable"}}
                # close an event the upstream broke off, so the error event parses on its own
                opened = b"" if relayed == b"\n\n" else b"\n\n"
                self._chunk(opened + f"data: {json.dumps(event)}\n\n".encode())
            record(usage.completion_tokens, error)
            recorded = True
            self._chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            log.info("client went away during a stream")
            stream.close()
            self.close_connection = True
            if not recorded:
                record(usage.completion_tokens, "the client went away during the stream")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _json(self, status: int, body: Mapping[str, Any],
              headers: Mapping[str, str] | None = None) -> None:
        self._raw(status, json.dumps(body).encode("utf-8"), "application/json", headers)

    def _error(self, status: int, message: str, kind: str,
               headers: Mapping[str, str] | None = None) -> None:
        self._json(status, {"error": {"message": message, "type": kind, "code": int(status)}},
                   headers)

    def _raw(self, status: int, data: bytes, content_type: str,
             headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _record(self, prepared: PreparedRequest, model: Any, completion: int, started: float,
                error: str | None) -> None:
        ledger = self.server.config.ledger
        if ledger is None:
            return
        sent = prepared.sent_tokens if error is None else 0
        ledger.record(Entry("proxy", None if model is None else str(model),
                            prepared.original_tokens, sent, completion,
                            time.perf_counter() - started, prepared.compress_s,
                            sum(prepared.redactions.values()), error=error))


def _prepare(body: dict[str, Any], config: ProxyConfig) -> tuple[dict[str, Any], PreparedRequest]:
    """The upstream payload (extension field removed) and what compressing did."""
    options = body.pop(EXTENSION_KEY, None) or {}
    if not isinstance(options, dict):
        raise InvalidArgumentError(f"'{EXTENSION_KEY}' must be an object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidArgumentError("'messages' must be a non-empty list")
    compress = options.get("compress", True) and config.compressor is not None
    rate = options.get("rate", config.rate)
    target = options.get("target_token", config.target_token)
    if "rate" in options and "target_token" not in options:
        target = None
    prepared = prepare(
        mark_scope(messages, config.scope), config.compressor if compress else None, config.count,
        rate=rate, target_token=target, force_tokens=config.force_tokens,
        redactor=config.redactor,
    )
    return {**body, "messages": prepared.messages}, prepared


def _savings_headers(prepared: PreparedRequest) -> dict[str, str]:
    ratio = prepared.original_tokens / prepared.sent_tokens if prepared.sent_tokens else 0.0
    return {
        f"{HEADER_PREFIX}Original-Tokens": str(prepared.original_tokens),
        f"{HEADER_PREFIX}Sent-Tokens": str(prepared.sent_tokens),
        f"{HEADER_PREFIX}Saved-Tokens": str(prepared.saved_tokens),
        f"{HEADER_PREFIX}Ratio": f"{ratio:.3f}",
        f"{HEADER_PREFIX}Compress-Ms": f"{prepared.compress_s * 1000:.1f}",
        f"{HEADER_PREFIX}Redactions": str(sum(prepared.redactions.values())),
    }


class _UsageScanner:
    """Finds ``usage.completion_tokens`` in server-sent events as they pass through."""

    def __init__(self) -> None:
        self._pending = b""
        self.completion_tokens = 0

    def feed(self, chunk: bytes) -> None:
        lines = (self._pending + chunk).split(b"\n")
        self._pending = lines.pop()
        for line in lines:
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if not data or data == b"[DONE]":
                continue
            try:
                usage = json.loads(data).get("usage")
            except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
                continue
            if isinstance(usage, dict) and usage.get("completion_tokens"):
                self.completion_tokens = int(usage["completion_tokens"])


class ProxyHTTPServer(ThreadingHTTPServer):
    """The HTTP server holding the proxy's configuration."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], config: ProxyConfig) -> None:
        self.config = config
        super().__init__(address, _Handler)


class ProxyServer:
    """Runs the proxy; ``start()`` serves on a background thread, ``serve_forever()`` blocks."""

    def __init__(self, config: ProxyConfig, host: str = "127.0.0.1", port: int = 8080) -> None:
        self.httpd = ProxyHTTPServer((host, port), config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ProxyServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="edge-lingua-proxy",
                                        daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(10)
