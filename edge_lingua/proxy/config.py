"""What the proxy does with each request, and the limits that keep it up."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from edge_lingua.cascade.ledger import Ledger
from edge_lingua.cascade.prompt import PromptCompressor, TokenCounter
from edge_lingua.cascade.redaction import Redactor
from edge_lingua.cascade.remote import RemoteClient
from edge_lingua.errors import InvalidArgumentError

SCOPES = ("context", "all", "none")


@dataclass(frozen=True)
class Limits:
    """Server limits; each is an ``edge-lingua serve`` option with this default.

    * ``header_timeout_s`` – a request's headers must arrive within this time (else the
      connection gets 408 and is closed); also bounds an idle connection before its
      first request.
    * ``body_timeout_s`` – the whole body must arrive within this time after the headers
      (else 408).
    * ``keep_alive_s`` – an idle keep-alive connection is closed after this time.
    * ``max_connections`` – connections and requests in progress at once; more get 503.
    * ``max_body_bytes`` – larger bodies get 413 (checked on ``Content-Length`` and while
      reading a chunked body).
    * ``max_header_bytes`` – larger request heads get 431 (400 when they come in pieces).
    * ``max_messages`` – more messages (or input items) than this get 413.
    * ``max_chars`` – more characters of text in one request than this get 413.
    * ``max_depth`` – JSON nested deeper than this gets 400.
    * ``workers`` – requests redacted and compressed at once; the others wait their turn,
      so memory stays bounded however many clients there are.
    """

    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keep_alive_s: float = 5.0
    max_connections: int = 100
    max_body_bytes: int = 4 * 1024 * 1024
    max_header_bytes: int = 16 * 1024
    max_messages: int = 256
    max_chars: int = 200_000
    max_depth: int = 64
    workers: int = 2

    def __post_init__(self) -> None:
        for option in fields(self):
            value = getattr(self, option.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise InvalidArgumentError(f"{option.name} must be a positive number, "
                                           f"got {value!r}")
            if option.type == "int" and not isinstance(value, int):
                raise InvalidArgumentError(f"{option.name} must be an integer, got {value!r}")


@dataclass
class ProxyConfig:
    """What the proxy does with each request.

    ``scope``: which messages it compresses when the client marks none itself:
    ``context`` every message but the last (the live question stays as written),
    ``all`` every message, ``none`` only parts the client marks with ``"compress": true``.
    ``anthropic``: the Anthropic-compatible upstream of ``POST /v1/messages`` (None: 404).
    ``retry_timeouts``: send a POST that timed out again even when the client sent no
    ``Idempotency-Key`` (with one, it is always retried under that key).
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
    limits: Limits = field(default_factory=Limits)
    anthropic: RemoteClient | None = None
    retry_timeouts: bool = False

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise InvalidArgumentError(f"scope must be one of {SCOPES}, got {self.scope!r}")
