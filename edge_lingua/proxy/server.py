"""Runs the proxy's ASGI app on uvicorn with the limits of :class:`Limits`.

uvicorn gives the keep-alive timeout, the connection limit (503 beyond it) and the
request-head size limit; this module adds a header timeout (a client that has not sent a
whole request head within ``header_timeout_s`` gets 408 and the connection is closed)
and JSON bodies for the errors uvicorn answers itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import h11
import uvicorn
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from edge_lingua.errors import InvalidArgumentError, ProxyStopError
from edge_lingua.proxy.app import create_app, error_response
from edge_lingua.proxy.config import Limits, ProxyConfig


def _raw_error(status: int, message: str) -> bytes:
    """A complete HTTP/1.1 error response that closes the connection."""
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error",
                                 "param": None, "code": status}}).encode()
    head = (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return head.encode("ascii") + body


class _Config(uvicorn.Config):
    def __init__(self, *args: Any, header_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout_s = header_timeout_s


class _Server(uvicorn.Server):
    """uvicorn's server with a main loop that ``wake()`` ends at once; uvicorn's own polls
    ``should_exit`` every 0.1 s."""

    _loop: asyncio.AbstractEventLoop | None = None
    _woken: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._loop, self._woken = asyncio.get_running_loop(), asyncio.Event()
        # pragma: no mutate start (uvicorn's tick count and length: they pace its housekeeping)
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._woken.wait(), 0.1)
        # pragma: no mutate end

    def wake(self) -> None:
        """Have the main loop look at ``should_exit`` now (from any thread)."""
        loop, woken = self._loop, self._woken
        if loop is not None and woken is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(woken.set)


class _Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on each request head, and a JSON 503 for
    requests over the connection limit."""

    _header_timer: asyncio.TimerHandle | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # pragma: no mutate (uvicorn passes keywords)
        limit, self.limit_concurrency = self.limit_concurrency, None
        app = self.app

        async def limited(scope: Scope, receive: Receive, send: Send) -> None:
            # This request's connection and task are counted already.
            if limit is not None and (len(self.connections) > limit or len(self.tasks) > limit):
                await error_response(503, f"the proxy is at its limit of {limit} connections",
                                     "server_busy", close=True)(scope, receive, send)
            else:
                await app(scope, receive, send)

        self.app = limited

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm()

    def send_400_response(self, msg: str) -> None:
        self.transport.write(_raw_error(400, msg))
        self.transport.close()

    def _arm(self) -> None:
        self._disarm()
        timeout = self.config.header_timeout_s  # type: ignore[attr-defined]
        self._header_timer = self.loop.call_later(timeout, self._headers_late, timeout)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self, timeout: float) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        self.transport.write(_raw_error(408, f"no complete request head within {timeout:g}s"))
        self.transport.close()


class ProxyServer:
    """Serves the proxy; ``start()`` runs it on a background thread, ``serve_forever()``
    blocks. ``extra_routes`` are Starlette routes served beside the API (same auth)."""

    def __init__(self, config: ProxyConfig, host: str = "127.0.0.1", port: int = 8080,
                 extra_routes: Sequence[BaseRoute] = ()) -> None:
        limits: Limits = config.limits
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family)  # TCP
        # (any value but 0 turns the option on)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # pragma: no mutate
        try:
            self._socket.bind((host, port))
        except OSError:
            self._socket.close()
            raise
        self.address: tuple[str, int] = self._socket.getsockname()[:2]
        app = create_app(config, extra_routes)  # built here, so a bad config fails here
        # Said outright rather than guessed: uvicorn calls an app with no arguments to see
        # whether it is a factory, and reads ASGI 2 or 3 from its __call__; wrappers such as
        # mutmut's trampolines fool both guesses.
        # (each mutant of these lines equals uvicorn's own guess, or is a time limit)
        self._server = _Server(_Config(
            lambda: app, factory=True, interface="asgi3", http=_Protocol,  # pragma: no mutate
            loop="asyncio", lifespan="on",  # pragma: no mutate
            log_config=None, access_log=False, server_header=False,
            limit_concurrency=limits.max_connections, timeout_keep_alive=limits.keep_alive_s,
            h11_max_incomplete_event_size=limits.max_header_bytes,
            header_timeout_s=limits.header_timeout_s,
            timeout_graceful_shutdown=5,  # pragma: no mutate
        ))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(
        self, ready_timeout_s: float = 30.0,  # pragma: no mutate (a time limit)
    ) -> ProxyServer:
        self._thread = threading.Thread(target=self.serve_forever, name="edge-lingua-proxy",
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + ready_timeout_s
        while not self._server.started:
            # (> and >= differ at one instant of a deadline)
            if not self._thread.is_alive() or time.monotonic() > deadline:  # pragma: no mutate
                raise InvalidArgumentError(f"the proxy did not start on {self.url}")
            time.sleep(0.01)  # pragma: no mutate (a poll interval)
        return self

    def serve_forever(self) -> None:
        self._server.run(sockets=[self._socket])

    def stop(
        self, timeout_s: float = 10.0,  # pragma: no mutate (a time limit)
    ) -> None:
        """End serving and close the socket; ``ProxyStopError`` if the server started by
        ``start()`` is still running ``timeout_s`` later."""
        self._server.should_exit = True
        self._server.wake()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._socket.close()
        if self._thread is not None and self._thread.is_alive():
            raise ProxyStopError(f"the proxy on {self.url} did not stop within {timeout_s:g}s")
