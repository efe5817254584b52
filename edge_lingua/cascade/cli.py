"""``edge-lingua serve`` (the compressing proxy) and ``edge-lingua ledger`` (its summary)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from edge_lingua.errors import InvalidArgumentError

DEFAULT_UPSTREAM_KEY_ENV = "OPENAI_API_KEY"
DEFAULT_CLIENT_TOKEN_ENV = "EDGE_LINGUA_PROXY_TOKEN"


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
                       help="redact e-mail addresses, phone numbers and API keys")
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
    serve.add_argument("--threads", type=int, help="onnxruntime intra-op threads")
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
    from edge_lingua.proxy.server import ProxyConfig, ProxyServer

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
    upstream = RemoteClient(
        args.upstream, api_key=os.environ.get(args.upstream_key_env) or None,
        timeout_s=args.timeout, retry=RetryPolicy(max_retries=args.retries),
        breaker=CircuitBreaker(),
    )
    prices = PriceTable.load(args.prices) if args.prices else None
    client_token = os.environ.get(args.client_token_env) or None
    if args.host not in ("127.0.0.1", "localhost", "::1") and client_token is None:
        print(f"warning: serving on {args.host} with no client token (set "
              f"{args.client_token_env})", file=sys.stderr)
    compressor = None
    if not args.no_compress:
        from edge_lingua.compressor import Compressor

        compressor = Compressor.load(args.bundle, threads=args.threads)
    count = tokenizer_counter(args.tokenizer or compressor.bundle.tokenizer_path)
    config = ProxyConfig(
        upstream=upstream, count=count, compressor=compressor,
        rate=None if args.target_token is not None else args.rate,
        target_token=args.target_token, scope=args.scope, client_token=client_token,
        redactor=Redactor() if args.redact else None,
        ledger=Ledger(args.ledger, prices) if args.ledger else None,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        server = ProxyServer(config, host=args.host, port=args.port)
    except OSError as exc:
        raise InvalidArgumentError(f"cannot listen on {args.host}:{args.port}: {exc}") from None
    print(f"edge-lingua proxy on {server.url} -> {args.upstream}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        server.httpd.server_close()
    return 0


def _ledger(args: argparse.Namespace) -> int:
    from edge_lingua.cascade.ledger import Ledger, format_summary, summarise

    path = Path(args.db)
    if not path.is_file():
        raise InvalidArgumentError(f"no ledger at {path}")
    summary = summarise(Ledger(path).rows())
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_summary(summary))
    return 0
