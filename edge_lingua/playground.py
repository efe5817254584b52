"""The playground: a self-contained page that shows what compression keeps and drops.

:func:`playground_routes` gives the starlette routes (``GET /`` and
``POST /v1/edge-lingua/compress``) so that ``edge-lingua serve`` can mount them;
``edge-lingua playground`` serves them alone with uvicorn.
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from edge_lingua.errors import EdgeLinguaError, InvalidInputError
from edge_lingua.integrations import compress_for_query, is_question_aware
from edge_lingua.optional import requires_extra
from edge_lingua.structure import DEFAULT_STRUCTURE, STRUCTURES

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

COMPRESS_PATH = "/v1/edge-lingua/compress"
MAX_BODY_BYTES = 1_000_000
DEFAULT_TOKEN_ENV = "EDGE_LINGUA_PROXY_TOKEN"


def page_html() -> bytes:
    """The playground page (package data; no CDN, no external fonts)."""
    return (resources.files("edge_lingua") / "static" / "playground.html").read_bytes()


def bearer_ok(header: str | None, token: str | None) -> bool:
    """Whether an ``Authorization`` header carries ``token`` (always true with no token)."""
    if token is None:
        return True
    scheme, _, value = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(),
                                                              token.encode())


class BadRequest(Exception):
    """A request the compress endpoint answers with 400."""


@dataclass(frozen=True)
class CompressRequest:
    """What a ``POST /v1/edge-lingua/compress`` body asks for."""

    text: str
    question: str | None = None
    rate: float | None = 0.5
    target_token: int | None = None
    structure: str = DEFAULT_STRUCTURE


def parse_request(body: bytes) -> CompressRequest:
    """The request in a body; :class:`BadRequest` says what is wrong."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadRequest("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    unknown = set(data) - {"text", "question", "rate", "target_token", "structure"}
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(sorted(unknown))}")
    text, question = data.get("text"), data.get("question")
    if not isinstance(text, str):
        raise BadRequest("'text' must be a string")
    if question is not None and not isinstance(question, str):
        raise BadRequest("'question' must be a string")
    structure = data.get("structure", DEFAULT_STRUCTURE)
    if structure not in STRUCTURES:
        raise BadRequest(f"'structure' must be one of {', '.join(STRUCTURES)}")
    if "rate" in data and "target_token" in data:
        raise BadRequest("give 'rate' or 'target_token', not both")
    if "target_token" in data:
        value = data["target_token"]
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadRequest("'target_token' must be an integer")
        return CompressRequest(text, question or None, rate=None, target_token=value,
                               structure=structure)
    value = data.get("rate", 0.5)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest("'rate' must be a number")
    return CompressRequest(text, question or None, rate=float(value), structure=structure)


def compress_response(compressor: Any, request: CompressRequest) -> dict[str, Any]:
    """Compress as the request asks; the JSON the endpoint returns."""
    question = request.question
    result = compress_for_query(compressor, request.text, question, rate=request.rate,
                                target_token=request.target_token, structure=request.structure)
    origin, compressed = result.origin_tokens, result.compressed_tokens
    return {
        "words": [w for ws in result.words for w in ws],
        "kept": [k for ks in result.kept_mask for k in ks],
        "compressed_prompt": result.compressed_prompt,
        "origin_tokens": origin,
        "compressed_tokens": compressed,
        "saving": round(1 - compressed / origin, 4) if origin else 0.0,
        "latency_ms": round(result.elapsed_s * 1000, 2),
        "question_used": bool(question) and is_question_aware(compressor),
    }


def _error(status: int, message: str, kind: str, **headers: str) -> JSONResponse:
    from starlette.responses import JSONResponse

    return JSONResponse({"error": {"message": message, "type": kind, "code": status}},
                        status_code=status, headers=headers or None)


def playground_routes(compressor: Any, token: str | None) -> list[Route]:
    """``GET /`` (the page) and ``POST /v1/edge-lingua/compress`` (bearer ``token`` if set)."""
    with requires_extra("playground"):
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import HTMLResponse, JSONResponse
        from starlette.routing import Route
    page = page_html()

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(page)

    async def compress(request: Request) -> JSONResponse:
        if not bearer_ok(request.headers.get("authorization"), token):
            return _error(401, "missing or wrong bearer token", "invalid_api_key",
                          **{"WWW-Authenticate": "Bearer"})
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _error(413, f"the body is over {MAX_BODY_BYTES} bytes", "too_large")
        try:
            parsed = parse_request(body)
            return JSONResponse(await run_in_threadpool(compress_response, compressor, parsed))
        except BadRequest as exc:
            return _error(400, str(exc), "invalid_request_error")
        except InvalidInputError as exc:
            return _error(400, str(exc), "invalid_request_error")
        except EdgeLinguaError as exc:
            return _error(500, f"{type(exc).__name__}: {exc}", "compression_failed")

    return [Route("/", index, methods=["GET"]),
            Route(COMPRESS_PATH, compress, methods=["POST"])]


def playground_app(compressor: Any, token: str | None) -> Starlette:
    """A starlette app serving only the playground routes."""
    with requires_extra("playground"):
        from starlette.applications import Starlette
    return Starlette(routes=playground_routes(compressor, token))


def register(subparsers: Any) -> None:
    """Add the ``playground`` subcommand to the ``edge-lingua`` parser."""
    p = subparsers.add_parser("playground", help="serve the playground page on its own")
    p.add_argument("--bundle", help="compressor bundle (default: the shipped model)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8081, help="port (default: 8081)")
    p.add_argument("--token-env", default=DEFAULT_TOKEN_ENV,
                   help="environment variable holding the bearer token the compress endpoint "
                        f"requires; unset means no token (default: {DEFAULT_TOKEN_ENV})")
    p.add_argument("--threads", type=int, help="onnxruntime intra-op threads")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from edge_lingua.compressor import load_compressor

    with requires_extra("playground"):
        import uvicorn
    app = playground_app(load_compressor(args.bundle, threads=args.threads),
                         os.environ.get(args.token_env) or None)
    print(f"playground on http://{args.host}:{args.port}/")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
