"""The proxy's ASGI application (Starlette): routes, bearer-token auth, limits, errors.

``POST /v1/chat/completions``, ``POST /v1/responses`` and ``POST /v1/messages``
(Anthropic) redact and compress the request, forward it upstream and return the
upstream's answer as is (streams stay streams), with the savings in ``X-Edge-Lingua-*``
response headers. ``GET /v1/models`` is passed through; ``GET /health`` answers
``{"status": "ok"}``. Every error is a JSON body; request bodies are never logged.

Build it with :func:`create_app`; other Starlette routes (a playground page, say) can be
mounted with ``extra_routes`` and get the same bearer-token check (:class:`BearerAuth`).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.concurrency import iterate_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge_lingua.cascade.ledger import Entry
from edge_lingua.cascade.prompt import PreparedRequest
from edge_lingua.cascade.redaction import STRUCTURAL_KEYS
from edge_lingua.cascade.remote import RemoteClient, check_chat, check_usage
from edge_lingua.errors import (
    CircuitOpenError,
    EdgeLinguaError,
    InvalidFieldError,
    InvalidInputError,
    RemoteRateLimitedError,
    RemoteRequestError,
    RemoteUnavailableError,
    RequestTooLargeError,
)
from edge_lingua.proxy import validation
from edge_lingua.proxy.apis import CHAT, MESSAGES, RESPONSES, Api
from edge_lingua.proxy.config import Limits, ProxyConfig
from edge_lingua.proxy.logs import escape

log = logging.getLogger("edge_lingua.proxy")

HEADER_PREFIX = "X-Edge-Lingua-"
PUBLIC_PATHS = ("/health", "/")  # "/" is the playground page: no data, no token


class HTTPError(Exception):
    """An error answer; ``close`` when the request's body may be left unread."""

    def __init__(self, status: int, message: str, kind: str, param: str | None = None,
                 close: bool = False, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.response = error_response(status, message, kind, param, close, headers)


def error_response(status: int, message: str, kind: str, param: str | None = None,
                   close: bool = False, headers: Mapping[str, str] | None = None) -> Response:
    """An OpenAI-style JSON error; ``close`` ends the connection after it."""
    all_headers = dict(headers or {})
    if close:
        all_headers["Connection"] = "close"
    body = {"error": {"message": message, "type": kind, "param": param, "code": status}}
    return JSONResponse(body, status_code=status, headers=all_headers)


def authorised(headers: Headers, token: str) -> bool:
    """Whether the request carries ``token`` as ``Authorization: Bearer`` or ``x-api-key``."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    given = value.strip() if scheme.lower() == "bearer" else headers.get("x-api-key", "")
    return hmac.compare_digest(given.encode(), token.encode())


class BearerAuth:
    """ASGI middleware: 401 (connection closed, body unread) without the client token.

    ``public_paths`` need no token. Wrap any Starlette app with it to share the proxy's auth.
    """

    def __init__(self, app: ASGIApp, token: str | None,
                 public_paths: Sequence[str] = PUBLIC_PATHS) -> None:
        self.app = app
        self.token = token
        self.public_paths = tuple(public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and self.token is not None
                and scope["path"] not in self.public_paths
                and not authorised(Headers(scope=scope), self.token)):
            response = error_response(401, "missing or wrong bearer token", "invalid_api_key",
                                      close=True)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class HeadLimit:
    """ASGI middleware: 431 (connection closed) for a request head over ``max_bytes``.

    uvicorn's h11 limit catches heads that arrive in pieces; this catches one that arrives
    whole."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
            size += sum(len(name) + len(value) + 4 for name, value in scope["headers"])
            if size > self.max_bytes:
                response = error_response(431, f"the request head is over the limit of "
                                               f"{self.max_bytes} bytes", "request_too_large",
                                          "headers", close=True)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class AccessLog:
    """ASGI middleware: one line per request (client, method, path, status, time), escaped.

    Never the body, the query string or any header.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [0]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            client = scope.get("client") or ("-", 0)
            log.info("%s %s %s %d %.1fms", client[0], escape(scope["method"]),
                     escape(scope["path"]), status[0], (time.perf_counter() - started) * 1000)


class _Proxy:
    """The request handlers, sharing the configuration and the worker limits."""

    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self.limits: Limits = config.limits
        # pragma: no mutate start (placeholders: lifespan sets both before any request)
        self._workers: anyio.CapacityLimiter | None = None
        self._calls: anyio.CapacityLimiter | None = None
        # pragma: no mutate end

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self._workers = anyio.CapacityLimiter(self.limits.workers)
        self._calls = anyio.CapacityLimiter(self.limits.max_connections)
        yield

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def models(self, request: Request) -> Response:
        try:
            reply = await self._call(self.config.upstream.get, "/models")
        except EdgeLinguaError as exc:
            return _upstream_error(exc, {})
        return JSONResponse(reply.body)

    def route(self, api: Api, upstream: Callable[[], RemoteClient | None]
              ) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            remote = upstream()
            if remote is None:
                return error_response(404, f"no upstream for {request.url.path}; start the "
                                      "proxy with --anthropic-upstream", "not_found", close=True)
            try:
                return await self._forward(request, api, remote)
            except HTTPError as exc:
                return exc.response
            except Exception as exc:  # never a dropped connection, never the body in a log
                log.error("internal error: %s", type(exc).__name__)
                return error_response(500, "internal error", "server_error", close=True)
        return handle

    async def _forward(self, request: Request, api: Api, remote: RemoteClient) -> Response:
        raw = await _read_body(request, self.limits)
        started = time.perf_counter()
        assert self._workers is not None
        try:
            payload, prepared = await anyio.to_thread.run_sync(
                partial(_prepare, raw, api, self.config), limiter=self._workers)
        except RequestTooLargeError as exc:
            return error_response(413, str(exc), "request_too_large", exc.field)
        except InvalidFieldError as exc:
            return error_response(400, str(exc), "invalid_request_error", exc.field)
        except InvalidInputError as exc:
            return error_response(400, str(exc), "invalid_request_error")
        except EdgeLinguaError as exc:
            return error_response(500, f"compression failed: {exc}", "server_error")
        headers = _savings_headers(prepared)
        model = payload.get("model")

        def record(completion: int, error: str | None) -> None:
            self._record(prepared, model, completion, started, error)

        key = request.headers.get("idempotency-key") or None
        options = {"idempotency_key": key,
                   "retry_timeouts": key is not None or self.config.retry_timeouts}
        try:
            if payload.get("stream"):
                stream = await self._call(partial(remote.stream, payload, path=api.path,
                                                  **options))
                return StreamingResponse(_relay(stream, record),
                                         media_type=stream.content_type or "text/event-stream",
                                         headers={**headers, "Cache-Control": "no-cache"})
            check = check_chat if api is CHAT else check_usage
            reply = await self._call(partial(remote.post, api.path, payload, check=check,
                                             **options))
        except EdgeLinguaError as exc:
            record(0, str(exc))
            return _upstream_error(exc, headers)
        record(completion_tokens(reply.body), None)
        return JSONResponse(reply.body, headers=headers)

    async def _call(self, function: Callable[..., Any], *args: Any) -> Any:
        assert self._calls is not None
        return await anyio.to_thread.run_sync(partial(function, *args), limiter=self._calls)

    def _record(self, prepared: PreparedRequest, model: Any, completion: int, started: float,
                error: str | None) -> None:
        ledger = self.config.ledger
        if ledger is None:
            return
        sent = prepared.sent_tokens if error is None else 0
        ledger.record(Entry("proxy", None if model is None else str(model),
                            prepared.original_tokens, sent, completion,
                            time.perf_counter() - started, prepared.compress_s,
                            sum(prepared.redactions.values()), error=error))


def create_app(config: ProxyConfig, extra_routes: Sequence[BaseRoute] = (),
               public_paths: Sequence[str] = PUBLIC_PATHS) -> ASGIApp:
    """The proxy as an ASGI app; ``extra_routes`` are served beside it behind the same auth."""
    proxy = _Proxy(config)
    routes = [
        # (Starlette upper-cases methods, and a route's methods are GET unless said)
        Route("/health", proxy.health, methods=["GET"]),  # pragma: no mutate
        Route("/v1/models", proxy.models, methods=["GET"]),  # pragma: no mutate
        Route("/v1/chat/completions", proxy.route(CHAT, lambda: config.upstream),
              methods=["POST"]),  # pragma: no mutate
        Route("/v1/responses", proxy.route(RESPONSES, lambda: config.upstream),
              methods=["POST"]),  # pragma: no mutate
        Route("/v1/messages", proxy.route(MESSAGES, lambda: config.anthropic),
              methods=["POST"]),  # pragma: no mutate
        *extra_routes,
    ]
    app = Starlette(routes=routes, lifespan=proxy.lifespan,
                    exception_handlers={HTTPException: _http_exception})
    return AccessLog(HeadLimit(BearerAuth(app, config.client_token, public_paths),
                               config.limits.max_header_bytes))


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = "not_found" if exc.status_code == 404 else "invalid_request_error"
    message = (f"no route {request.method} {request.url.path}" if exc.status_code in (404, 405)
               else str(exc.detail))
    return error_response(exc.status_code, message, kind, close=True)


async def _read_body(request: Request, limits: Limits) -> bytes:
    """The body, within the byte limit and the body timeout (else 413 or 408, and close)."""
    length = request.headers.get("content-length")
    too_large = (f"the request body is over the limit of {limits.max_body_bytes} bytes")
    if length is not None and int(length) > limits.max_body_bytes:
        raise HTTPError(413, too_large, "request_too_large", "body", close=True)
    chunks, size = [], 0
    try:
        with anyio.fail_after(limits.body_timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limits.max_body_bytes:
                    raise HTTPError(413, too_large, "request_too_large", "body", close=True)
                chunks.append(chunk)
    except TimeoutError:
        raise HTTPError(408, f"the request body did not arrive within {limits.body_timeout_s:g}s",
                        "request_timeout", "body", close=True) from None
    except ClientDisconnect:
        raise HTTPError(400, "the client went away", "invalid_request_error",
                        close=True) from None
    return b"".join(chunks)


def _prepare(raw: bytes, api: Api, config: ProxyConfig) -> tuple[dict[str, Any],
                                                                  PreparedRequest]:
    """Parse and check the body, redact every string in it, then compress (worker thread)."""
    body = validation.parse(raw, config.limits)
    api.check(body, config.limits)
    options = validation.options(body)
    body.pop(validation.EXTENSION_KEY, None)
    redactions: dict[str, int] = {}
    if config.redactor is not None:
        body, redaction = config.redactor.redact_json(body, skip=STRUCTURAL_KEYS)
        redactions = redaction.counts
    compress = options.get("compress", True) and config.compressor is not None
    rate = options.get("rate", config.rate)
    target = options.get("target_token", config.target_token)
    if "rate" in options and "target_token" not in options:
        target = None
    prepared = api.compress(body, config.compressor if compress else None, config.count,
                            config.scope, rate=rate, target_token=target,
                            force_tokens=config.force_tokens)
    return body, replace(prepared, redactions=redactions)


async def _relay(stream: Any, record: Callable[[int, str | None], None]) -> AsyncIterator[bytes]:
    """The upstream's server-sent events as they come; the ledger row is written before
    the stream's end, so a client that has read the whole answer finds it there."""
    usage = UsageScanner()
    finished = False
    tail = b"\n\n"  # the end of what was relayed: is the last event complete?
    try:
        try:
            async for chunk in iterate_in_threadpool(iter(stream)):
                usage.feed(chunk)
                if chunk:
                    tail = (tail + chunk)[-2:]
                yield chunk
        except RemoteUnavailableError as exc:
            event = {"error": {"message": str(exc), "type": "upstream_unavailable"}}
            record(usage.completion_tokens, str(exc))
            finished = True
            # close an event the upstream broke off, so the error event parses on its own
            opening = b"" if tail == b"\n\n" else (b"\n" if tail.endswith(b"\n") else b"\n\n")
            yield opening + f"data: {json.dumps(event)}\n\n".encode()
            return
        record(usage.completion_tokens, None)
        finished = True
    finally:
        stream.close()
        if not finished:
            log.info("client went away during a stream")
            record(usage.completion_tokens, "the client went away during the stream")


def _upstream_error(exc: EdgeLinguaError, headers: Mapping[str, str]) -> Response:
    if isinstance(exc, RemoteRateLimitedError):
        extra = dict(headers)
        if exc.retry_after is not None:
            extra["Retry-After"] = str(math.ceil(exc.retry_after))
        return Response(exc.body or json.dumps({"error": {"message": str(exc),
                                                          "type": "rate_limited"}}).encode(),
                        status_code=429, media_type="application/json", headers=extra)
    if isinstance(exc, RemoteRequestError):
        return Response(exc.body, status_code=exc.status, media_type="application/json",
                        headers=dict(headers))
    if isinstance(exc, CircuitOpenError):
        return error_response(503, str(exc), "upstream_unavailable", headers=headers)
    if isinstance(exc, RemoteUnavailableError):
        return error_response(502, str(exc), "upstream_unavailable", headers=headers)
    return error_response(500, str(exc), "server_error", headers=headers)


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


def completion_tokens(answer: Any) -> int:
    """Completion tokens of an answer or stream event of any of the three APIs (0 if none)."""
    if not isinstance(answer, dict):
        return 0
    for holder in (answer, answer.get("response"), answer.get("message")):
        usage = holder.get("usage") if isinstance(holder, dict) else None
        if isinstance(usage, dict):
            for name in ("completion_tokens", "output_tokens"):
                value = usage.get(name)
                if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                    return value
    return 0


class UsageScanner:
    """Finds the completion-token count in server-sent events as they pass through."""

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
                tokens = completion_tokens(json.loads(data))
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
                continue
            self.completion_tokens = tokens or self.completion_tokens
