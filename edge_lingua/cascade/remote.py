"""Client of a remote OpenAI- or Anthropic-compatible endpoint (standard library only).

Every call has a socket timeout; 408, 429, 5xx, connection errors and malformed answers
are retried with exponential backoff and full jitter, waiting at least what a
``Retry-After`` header asks. A POST that timed out after it was sent may have been
processed, so it is retried only when the caller allows it (``retry_timeouts``). Every
POST carries an ``Idempotency-Key``, the same on each retry. A :class:`CircuitBreaker`
stops calls to a remote that keeps failing; a 429 is the remote saying "later", not
failing, so it never counts against the breaker, and when the retries run out the caller
gets :class:`RemoteRateLimitedError` with the remote's ``Retry-After``. The API key goes
only into the auth header: it is never logged and never part of an exception message.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from edge_lingua.cascade.breaker import CircuitBreaker
from edge_lingua.errors import (
    CircuitOpenError,
    InvalidArgumentError,
    RemoteRateLimitedError,
    RemoteRequestError,
    RemoteUnavailableError,
)

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_READ_CHUNK = 8192
_MAX_ERROR_BODY = 1 << 20
_MAX_ANSWER_BYTES = 64 << 20
AUTH_STYLES = ("bearer", "x-api-key")
ANTHROPIC_VERSION = "2023-06-01"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a failed call.

    The n-th retry waits ``uniform(0, min(backoff_max_s, backoff_base_s * 2**n))`` seconds
    (full jitter), or longer when the server sent ``Retry-After``. A ``Retry-After`` above
    ``max_retry_after_s`` ends the call at once: the caller is better served by the local
    answer or the deferral queue than by a long wait. ``retry_timeouts`` lets a POST that
    timed out after it was sent go again (safe when the remote honours Idempotency-Key).
    """

    max_retries: int = 3
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    max_retry_after_s: float = 30.0
    retry_timeouts: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise InvalidArgumentError(
                f"max_retries must be an integer >= 0, got {self.max_retries!r}"
            )
        if self.backoff_base_s < 0 or self.backoff_max_s < 0 or self.max_retry_after_s < 0:
            raise InvalidArgumentError("backoff and Retry-After limits must be >= 0")

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Jittered wait before retry number ``retry`` (0-based)."""
        return rng.uniform(0.0, min(self.backoff_max_s, self.backoff_base_s * (2**retry)))


@dataclass(frozen=True)
class RemoteReply:
    """A successful answer of the remote."""

    body: dict[str, Any]
    status: int
    attempts: int
    elapsed_s: float


class _Retryable(Exception):
    """One attempt failed in a way worth retrying (``rate_limited``: an HTTP 429)."""

    def __init__(self, reason: str, retry_after: float | None = None,
                 rate_limited: bytes | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.rate_limited = rate_limited


class _TimedOut(Exception):
    """The request went out and no answer came in time: the remote may have processed it."""


Validator = Callable[[dict[str, Any]], str | None]


def check_usage(body: dict[str, Any]) -> str | None:
    """Why an answer's ``usage`` is malformed, or None (it may be absent)."""
    usage = body.get("usage")
    if usage is None:
        return None
    if not isinstance(usage, dict):
        return f"'usage' is {type(usage).__name__}, not an object"
    for name in ("prompt_tokens", "completion_tokens", "input_tokens", "output_tokens"):
        value = usage.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < 0):
            return f"'usage.{name}' is not a non-negative integer"
    return None


def check_chat(body: dict[str, Any]) -> str | None:
    """Why a chat-completions answer is malformed, or None."""
    if not isinstance(body.get("choices"), list):
        return "answer is JSON but has no 'choices' list"
    return check_usage(body)




def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class StreamReply:
    """An open streaming answer: iterate to get the raw server-sent-event bytes."""

    def __init__(
        self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse,
        attempts: int,
    ) -> None:
        self._connection = connection
        self._response = response
        self.attempts = attempts
        self.status = response.status
        self.content_type = response.getheader("Content-Type", "text/event-stream")

    def __iter__(self) -> Iterator[bytes]:
        try:
            while True:
                chunk = self._response.read1(_READ_CHUNK)
                if not chunk:
                    return
                yield chunk
        except (OSError, http.client.HTTPException) as exc:
            raise RemoteUnavailableError(f"the remote stream broke off: {_describe(exc)}") from None
        finally:
            self.close()

    def close(self) -> None:
        self._connection.close()


class RemoteClient:
    """Calls ``{base_url}/chat/completions`` (or another path) with retries and a breaker.

    ``auth``: ``bearer`` (OpenAI: ``Authorization: Bearer KEY``) or ``x-api-key``
    (Anthropic: ``x-api-key: KEY`` and ``anthropic-version``).
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        model: str | None = None,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
        auth: str = "bearer",
    ) -> None:
        if auth not in AUTH_STYLES:
            raise InvalidArgumentError(f"auth must be one of {AUTH_STYLES}, got {auth!r}")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidArgumentError(
                f"remote base URL must be http(s)://host[:port][/path], got {base_url!r}"
            )
        if timeout_s <= 0:
            raise InvalidArgumentError(f"timeout_s must be > 0, got {timeout_s!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout_s = float(timeout_s)
        self.retry = retry or RetryPolicy()
        self.breaker = breaker or CircuitBreaker()
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._base_path = parts.path.rstrip("/")
        self._api_key = api_key
        self._auth = auth
        self._rng = rng or random.Random()
        self._sleep = sleep

    def __repr__(self) -> str:  # never shows the key
        return f"RemoteClient({self.base_url!r}, model={self.model!r})"

    def chat(self, payload: Mapping[str, Any], *, idempotency_key: str | None = None,
             retry_timeouts: bool | None = None) -> RemoteReply:
        """POST a chat-completions request and return the parsed JSON answer."""
        return self.post("/chat/completions", payload, check=check_chat,
                         idempotency_key=idempotency_key, retry_timeouts=retry_timeouts)

    def post(
        self, path: str, payload: Mapping[str, Any], *, check: Validator = check_usage,
        idempotency_key: str | None = None, retry_timeouts: bool | None = None,
    ) -> RemoteReply:
        """POST JSON to ``{base_url}{path}``; ``check`` says why an answer is malformed."""
        started = time.perf_counter()
        body = self._encode(payload, stream=False)
        headers = self._headers(idempotency_key)

        def attempt() -> tuple[int, dict[str, Any]]:
            connection = self._connect()
            try:
                response = self._send(connection, "POST", path, body, headers)
                data = response.read(_MAX_ANSWER_BYTES)
            except TimeoutError:
                raise _TimedOut() from None
            except (OSError, http.client.HTTPException) as exc:
                raise _Retryable(_describe(exc)) from None
            finally:
                connection.close()
            return response.status, _parsed(data, check)

        (status, parsed), attempts = self._with_retries(attempt, retry_timeouts)
        return RemoteReply(parsed, status, attempts, time.perf_counter() - started)

    def get(self, path: str) -> RemoteReply:
        """GET ``{base_url}{path}`` (e.g. ``/models``) and return the parsed JSON answer."""
        started = time.perf_counter()
        headers = self._headers(None)

        def attempt() -> tuple[int, dict[str, Any]]:
            connection = self._connect()
            try:
                response = self._send(connection, "GET", path, None, headers)
                data = response.read(_MAX_ANSWER_BYTES)
            except (OSError, http.client.HTTPException) as exc:  # a GET is safe to repeat
                raise _Retryable(_describe(exc)) from None
            finally:
                connection.close()
            return response.status, _parsed(data, check_usage)

        (status, parsed), attempts = self._with_retries(attempt, True)
        return RemoteReply(parsed, status, attempts, time.perf_counter() - started)

    def stream(self, payload: Mapping[str, Any], *, path: str = "/chat/completions",
               idempotency_key: str | None = None,
               retry_timeouts: bool | None = None) -> StreamReply:
        """POST a streaming request; retries happen only until the answer starts."""
        body = self._encode(payload, stream=True)
        headers = self._headers(idempotency_key)

        def attempt() -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
            connection = self._connect()
            try:
                return connection, self._send(connection, "POST", path, body, headers)
            except TimeoutError:
                connection.close()
                raise _TimedOut() from None
            except _Retryable:
                connection.close()
                raise
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                raise _Retryable(_describe(exc)) from None
            except BaseException:
                connection.close()
                raise

        (connection, response), attempts = self._with_retries(attempt, retry_timeouts)
        return StreamReply(connection, response, attempts)

    # --- internals -----------------------------------------------------------
    def _encode(self, payload: Mapping[str, Any], *, stream: bool) -> bytes:
        data = dict(payload)
        if self.model is not None:
            data["model"] = self.model
        data["stream"] = stream
        return json.dumps(data).encode("utf-8")

    def _headers(self, idempotency_key: str | None) -> dict[str, str]:
        # (HTTP header names are read in any case)
        headers = {"Content-Type": "application/json",  # pragma: no mutate
                   "Accept": "application/json",  # pragma: no mutate
                   "Idempotency-Key": idempotency_key or uuid.uuid4().hex}
        if self._auth == "x-api-key":
            headers["anthropic-version"] = ANTHROPIC_VERSION  # pragma: no mutate
            if self._api_key:
                headers["x-api-key"] = self._api_key  # pragma: no mutate
        elif self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=self.timeout_s)

    def _send(
        self, connection: http.client.HTTPConnection, method: str, path: str,
        body: bytes | None, headers: Mapping[str, str],
    ) -> http.client.HTTPResponse:
        """Send the request; raise for any non-2xx status (a rejection keeps its body)."""
        try:
            connection.connect()
        except TimeoutError as exc:  # nothing was sent: safe to retry
            raise _Retryable(_describe(exc)) from None
        connection.request(method, self._base_path + path, body=body, headers=dict(headers))
        response = connection.getresponse()
        if 200 <= response.status < 300:
            return response
        detail = response.read(_MAX_ERROR_BODY)
        retry_after = parse_retry_after(response.getheader("Retry-After"))
        if response.status == 429:
            raise _Retryable("HTTP 429", retry_after, rate_limited=detail)
        if response.status in RETRYABLE_STATUS:
            raise _Retryable(f"HTTP {response.status}", retry_after)
        raise RemoteRequestError(
            f"the remote rejected the request with HTTP {response.status}",
            status=response.status,
            body=detail,
        )

    def _with_retries(self, attempt: Callable[[], Any],
                      retry_timeouts: bool | None) -> tuple[Any, int]:
        if retry_timeouts is None:
            retry_timeouts = self.retry.retry_timeouts
        last = "no attempt made"
        rate_limited: _Retryable | None = None
        for number in range(self.retry.max_retries + 1):
            if not self.breaker.allow():
                if number == 0:
                    raise CircuitOpenError(
                        f"circuit open after repeated failures of {self.base_url}; "
                        f"next probe in {self.breaker.retry_in():.1f}s"
                    )
                break
            try:
                result = attempt()
            except RemoteRequestError:
                self.breaker.record_success()  # the remote is up; the request is at fault
                raise
            except _TimedOut:
                self.breaker.record_failure()
                last = f"no answer within {self.timeout_s:g}s"
                log.warning("remote %s attempt %d timed out", self.base_url, number + 1)
                if not retry_timeouts:
                    last += " (a POST that timed out is not sent again unless the caller allows)"
                    rate_limited = None
                    break
                self._sleep(self.retry.backoff(number, self._rng))
                continue
            except _Retryable as failure:
                if failure.rate_limited is None:
                    self.breaker.record_failure()
                    rate_limited = None
                else:  # the remote is up and asks us to slow down
                    self.breaker.record_success()
                    rate_limited = failure
                last = failure.reason
                log.warning("remote %s attempt %d failed: %s", self.base_url, number + 1, last)
                if number == self.retry.max_retries:
                    break
                wait = self.retry.backoff(number, self._rng)
                if failure.retry_after is not None:
                    if failure.retry_after > self.retry.max_retry_after_s:
                        last += f" (Retry-After {failure.retry_after:.0f}s is over the limit)"
                        break
                    wait = max(wait, failure.retry_after)
                self._sleep(wait)
            else:
                self.breaker.record_success()
                return result, number + 1
        if rate_limited is not None:
            raise RemoteRateLimitedError(
                f"remote {self.base_url} is rate limiting: {last}",
                body=rate_limited.rate_limited or b"", retry_after=rate_limited.retry_after,
            )
        raise RemoteUnavailableError(f"remote {self.base_url} unavailable: {last}")


def _parsed(data: bytes, check: Validator) -> dict[str, Any]:
    try:
        parsed = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise _Retryable(f"unparseable JSON answer ({len(data)} bytes)") from None
    if not isinstance(parsed, dict):
        raise _Retryable("answer is not a JSON object")
    problem = check(parsed)
    if problem is not None:
        raise _Retryable(f"malformed answer: {problem}")
    return parsed


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
