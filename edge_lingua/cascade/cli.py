"""``edge-lingua serve`` (the compressing proxy) and ``edge-lingua ledger`` (its summary)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_lingua.errors import InvalidArgumentError
from edge_lingua.proxy.config import Limits

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from edge_lingua.compressor import Compressor

DEFAULT_UPSTREAM_KEY_ENV = "OPENAI_API_KEY"
DEFAULT_ANTHROPIC_KEY_ENV = "ANTHROPIC_API_KEY"
DEFAULT_CLIENT_TOKEN_ENV = "EDGE_LINGUA_PROXY_TOKEN"
# Limits fields that are serve options: (field, type, help).
LIMIT_OPTIONS = (
    ("header_timeout_s", float, "seconds a client has to send a request head"),
    ("body_timeout_s", float, "seconds a client has to send a request body"),
    ("keep_alive_s", float, "seconds an idle keep-alive connection stays open"),
    ("max_connections", int, "connections and requests at once; more get 503"),
    ("max_body_bytes", int, "largest request body; larger gets 413"),
    ("max_header_bytes", int, "largest request head; larger gets 431"),
    ("max_messages", int, "most messages or input items in a request; more get 413"),
    ("max_chars", int, "most characters of text in a request; more get 413"),
    ("max_depth", int, "deepest JSON nesting of a request; deeper gets 400"),
    ("workers", int, "requests redacted and compressed at once"),
)


def register(subparsers: Any) -> None:
    """Add the ``serve`` and ``ledger`` subcommands to the ``edge-lingua`` parser."""
    serve = subparsers.add_parser(
        "serve", help="OpenAI-compatible proxy that compresses prompts before forwarding them"
    )
    serve.add_argument("--upstream", required=True,
                       help="base URL of the upstream API, e.g. https://api.openai.com/v1")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    serve.add_argument("--bundle", help="token-classifier bundle (default: the shipped model)")
    serve.add_argument("--no-compress", action="store_true", help="forward prompts as written")
    budget = serve.add_mutually_exclusive_group()
    budget.add_argument("--rate", type=float, default=0.5,
                        help="share of context tokens to keep, in (0, 1] (default: 0.5)")
    budget.add_argument("--target-token", type=int, help="token budget of the compressed context")
    serve.add_argument("--scope", choices=("context", "all", "none"), default="context",
                       help="what to compress: every message but the last (default), all "
                            "messages, or only parts the client marks")
    serve.add_argument("--tokenizer",
                       help="tokenizer.json used to count tokens (default: the bundle's)")
    serve.add_argument("--redact", action="store_true",
                       help="redact keys, e-mail addresses, card numbers, IBANs and phone "
                            "numbers before compressing (see the README's pattern list)")
    serve.add_argument("--redact-pattern", action="append", default=[], metavar="NAME=REGEX",
                       help="also redact this app pattern as [NAME] (repeatable; implies "
                            "--redact)")
    serve.add_argument("--anthropic-upstream",
                       help="base URL of an Anthropic-compatible API for POST /v1/messages, "
                            "e.g. https://api.anthropic.com/v1")
    serve.add_argument("--anthropic-key-env", default=DEFAULT_ANTHROPIC_KEY_ENV,
                       help="environment variable holding the Anthropic API key "
                            f"(default: {DEFAULT_ANTHROPIC_KEY_ENV})")
    serve.add_argument("--ledger", help="SQLite file recording every request")
    serve.add_argument("--prices", help="JSON price table for the ledger's cost estimates")
    serve.add_argument("--upstream-key-env", default=DEFAULT_UPSTREAM_KEY_ENV,
                       help="environment variable holding the upstream API key "
                            f"(default: {DEFAULT_UPSTREAM_KEY_ENV})")
    serve.add_argument("--client-token-env", default=DEFAULT_CLIENT_TOKEN_ENV,
                       help="environment variable holding the bearer token clients must send; "
                            f"unset means no token (default: {DEFAULT_CLIENT_TOKEN_ENV})")
    serve.add_argument("--timeout", type=float, default=60.0,
                       help="upstream socket timeout in seconds (default: 60)")
    serve.add_argument("--retries", type=int, default=3, help="upstream retries (default: 3)")
    serve.add_argument("--retry-timeouts", action="store_true",
                       help="resend a POST whose answer timed out even when the client sent "
                            "no Idempotency-Key (default: only with one)")
    serve.add_argument("--breaker-threshold", type=int, default=5,
                       help="consecutive upstream failures that open the circuit (default: 5)")
    serve.add_argument("--breaker-cooldown", type=float, default=30.0,
                       help="seconds the open circuit waits before a probe (default: 30)")
    serve.add_argument("--threads", type=int, help="onnxruntime intra-op threads")
    defaults = Limits()
    for option, kind, help_text in LIMIT_OPTIONS:
        serve.add_argument(f"--{option.replace('_', '-')}", type=kind,
                           default=getattr(defaults, option),
                           help=f"{help_text} (default: {getattr(defaults, option)})")
    serve.set_defaults(func=_serve)

    ledger = subparsers.add_parser("ledger", help="summarise a cascade or proxy ledger")
    ledger.add_argument("db", help="the ledger's SQLite file")
    ledger.add_argument("--json", action="store_true", help="print the summary as JSON")
    ledger.set_defaults(func=_ledger)


def _serve(args: argparse.Namespace) -> int:
    from edge_lingua.cascade.breaker import CircuitBreaker
    from edge_lingua.cascade.ledger import Ledger, PriceTable
    from edge_lingua.cascade.prompt import tokenizer_counter
    from edge_lingua.cascade.redaction import Redactor
    from edge_lingua.cascade.remote import RemoteClient, RetryPolicy
    from edge_lingua.proxy.config import ProxyConfig
    from edge_lingua.proxy.logs import EscapingFormatter
    from edge_lingua.proxy.server import ProxyServer

    if not 0 < args.port < 65536:
        raise InvalidArgumentError(f"--port must be in 1..65535, got {args.port}")
    if args.retries < 0 or args.timeout <= 0:
        raise InvalidArgumentError("--retries must be >= 0 and --timeout > 0")
    if args.rate is not None and args.target_token is None and not 0 < args.rate <= 1:
        raise InvalidArgumentError(f"--rate must be in (0, 1], got {args.rate}")
    if args.target_token is not None and args.target_token < 1:
        raise InvalidArgumentError(f"--target-token must be >= 1, got {args.target_token}")
    if args.no_compress and args.tokenizer is None:
        raise InvalidArgumentError("--no-compress needs --tokenizer to count tokens")
    limits = Limits(**{option: getattr(args, option) for option, _, _ in LIMIT_OPTIONS})
    retry = RetryPolicy(max_retries=args.retries, retry_timeouts=args.retry_timeouts)

    def remote(url: str, key_env: str, auth: str) -> RemoteClient:
        return RemoteClient(
            url, api_key=os.environ.get(key_env) or None, timeout_s=args.timeout, retry=retry,
            breaker=CircuitBreaker(args.breaker_threshold, args.breaker_cooldown), auth=auth,
        )

    upstream = remote(args.upstream, args.upstream_key_env, "bearer")
    anthropic = (remote(args.anthropic_upstream, args.anthropic_key_env, "x-api-key")
                 if args.anthropic_upstream else None)
    patterns = dict(_pattern(p) for p in args.redact_pattern)
    redactor = Redactor(patterns=patterns) if args.redact or patterns else None
    prices = PriceTable.load(args.prices) if args.prices else None
    ledger = Ledger(args.ledger, prices) if args.ledger else None  # fail before the model loads
    client_token = os.environ.get(args.client_token_env) or None
    if args.host not in ("127.0.0.1", "localhost", "::1") and client_token is None:
        print(f"warning: serving on {args.host} with no client token (set "
              f"{args.client_token_env})", file=sys.stderr)
    compressor = None
    if not args.no_compress:
        from edge_lingua.compressor import Compressor

        compressor = Compressor.load(args.bundle, threads=args.threads)
    count = tokenizer_counter(Path(args.tokenizer).expanduser() if args.tokenizer
                              else compressor.bundle.tokenizer_path)
    config = ProxyConfig(
        upstream=upstream, count=count, compressor=compressor,
        rate=None if args.target_token is not None else args.rate,
        target_token=args.target_token, scope=args.scope, client_token=client_token,
        redactor=redactor, ledger=ledger, limits=limits, anthropic=anthropic,
        retry_timeouts=args.retry_timeouts,
    )
    handler = logging.StreamHandler()
    handler.setFormatter(EscapingFormatter("%(asctime)s %(name)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    try:
        server = ProxyServer(config, host=args.host, port=args.port,
                             extra_routes=_playground(compressor))
    except OSError as exc:
        raise InvalidArgumentError(f"cannot listen on {args.host}:{args.port}: {exc}") from None
    print(f"edge-lingua proxy on {server.url} -> {args.upstream}", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


def _pattern(option: str) -> tuple[str, str]:
    name, sep, regex = option.partition("=")
    if not sep or not name or not regex:
        raise InvalidArgumentError(f"--redact-pattern must be NAME=REGEX, got {option!r}")
    return name, regex


def _ledger(args: argparse.Namespace) -> int:
    from edge_lingua.cascade.ledger import Ledger, format_summary, summarise

    path = Path(args.db).expanduser()
    if not path.is_file():
        raise InvalidArgumentError(f"no ledger at {path}")
    summary = summarise(Ledger(path).rows())
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_summary(summary))
    return 0


def _playground(compressor: Compressor | None) -> list[BaseRoute]:
    """The playground (``GET /``, ``POST /v1/edge-lingua/compress``) beside the proxy, behind
    the proxy's bearer token; none when the proxy does not compress."""
    if compressor is None:
        return []
    from edge_lingua.playground import playground_routes

    return playground_routes(compressor, token=None)  # the proxy's BearerAuth guards it
