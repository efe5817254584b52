"""The ``edge-lingua`` command line."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from edge_lingua.errors import EdgeLinguaError, InputEncodingError
from edge_lingua.optional import MissingExtraError
from edge_lingua.perplexity.cli import add_arguments as add_perplexity_arguments
from edge_lingua.perplexity.options import METHODS
from edge_lingua.structure import DEFAULT_STRUCTURE, STRUCTURES

CLASSIFIER_METHOD = "llmlingua2"

# Subcommands that live outside the runtime core: (module, description of what it needs).
_PLUGINS = (
    ("edge_lingua_export.cli", "the export toolchain: pip install 'edge-lingua[export]'"),
    ("edge_lingua_quantize.cli", "the quantize toolchain: pip install 'edge-lingua[export]'"),
    ("edge_lingua.cascade.cli", "the cascade and proxy"),
    ("edge_lingua.bench", "benchmarks"),
    ("edge_lingua.corpus.cli", "corpus compression"),
    ("edge_lingua.playground", "the playground page"),
)


def _read_text(path: str | None) -> str:
    raw = sys.stdin.buffer.read() if path in (None, "-") else Path(path).read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = "standard input" if path in (None, "-") else path
        raise InputEncodingError(
            f"{where} is not valid UTF-8 (byte {exc.start}: {raw[exc.start:exc.start + 1]!r})"
        ) from None


def _compress(args: argparse.Namespace) -> int:
    try:
        text = _read_text(args.file)
    except FileNotFoundError:
        raise EdgeLinguaError(f"no such file: {args.file}") from None
    if args.method == CLASSIFIER_METHOD:
        from edge_lingua.compressor import Compressor

        compressor = Compressor.load(
            args.bundle,
            providers=args.provider,
            threads=args.threads,
            target_tokenizer=args.target_tokenizer,
        )
        result = compressor.compress(
            text,
            question=args.question or None,
            rate=args.rate,
            target_token=args.target_token,
            force_tokens=args.force_token,
            force_reserve_digit=args.force_reserve_digit,
            drop_consecutive=args.drop_consecutive,
            structure=args.structure,
            protect=args.protect,
            compress_code_comments=args.compress_code_comments,
        )
        for note in result.warnings:
            print(f"warning: {note}", file=sys.stderr)
    else:
        from edge_lingua.perplexity.cli import compress_from_args

        result = compress_from_args(args, text)
    if args.json:
        json.dump(result.to_json(), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(result.compressed_prompt)  # no concatenated copy of a long output
        sys.stdout.write("\n")
        print(
            f"{result.origin_tokens} -> {result.compressed_tokens} tokens "
            f"({result.rate:.1%}) in {result.elapsed_s * 1000:.0f} ms on {result.provider}",
            file=sys.stderr,
        )
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from edge_lingua.bundle import check_files, check_model, read_manifest

    root = Path(args.bundle)
    manifest = read_manifest(root)
    status = check_files(root, manifest)
    if all(state == "ok" for state in status.values()):
        check_model(root, manifest)  # a ManifestError: exit 2 with one line
    report = {
        "path": str(root),
        "manifest": manifest.to_json(),
        "files": {
            name: {
                "bytes": (root / name).stat().st_size if state != "missing" else None,
                "sha256": state,
            }
            for name, state in status.items()
        },
        "valid": all(state == "ok" for state in status.values()),
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0 if report["valid"] else 1


def _providers(args: argparse.Namespace) -> int:
    from edge_lingua.providers import available_providers, resolve_providers

    print("available:", ", ".join(available_providers()))
    print("default order:", ", ".join(resolve_providers()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-lingua", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    compress = sub.add_parser("compress", help="compress a prompt (file or stdin) to stdout")
    compress.add_argument("file", nargs="?", help="text file (default: stdin)")
    compress.add_argument("--bundle", help="token-classifier bundle folder, or a shipped "
                          "model's name: default (the default), small or multilingual; "
                          "causal-lm bundle or .gguf file for perplexity methods")
    compress.add_argument("--method", choices=(CLASSIFIER_METHOD, *METHODS),
                          default=CLASSIFIER_METHOD,
                          help="llmlingua2: token classifier (default); perplexity, "
                               "longllmlingua, self-information: a causal LM")
    budget = compress.add_mutually_exclusive_group()
    budget.add_argument("--rate", type=float, help="share of tokens to keep, in (0, 1]")
    budget.add_argument("--target-token", type=int, help="token budget of the output")
    compress.add_argument("--force-token", action="append", default=[],
                          help="word always kept (repeatable)")
    compress.add_argument("--force-reserve-digit", action="store_true",
                          help="always keep words with digits")
    compress.add_argument("--drop-consecutive", action="store_true",
                          help="drop a force token that repeats the one before it")
    compress.add_argument("--structure", choices=STRUCTURES, default=DEFAULT_STRUCTURE,
                          help="what to keep verbatim: auto (default) detects json, markdown, "
                               "code or chat; text compresses everything")
    compress.add_argument("--protect", action="append", default=None,
                          help="atom category (url, email, path, uuid, hash, ip, datetime, "
                               "version, number, identifier, mention, hashtag, all, none) or "
                               "regex kept whatever the budget (repeatable; default: url email "
                               "path uuid hash ip)")
    compress.add_argument("--compress-code-comments", action="store_true",
                          help="in code, compress comments and docstrings (code stays verbatim)")
    compress.add_argument("--target-tokenizer", help="tokenizer.json of the target LLM")
    compress.add_argument("--provider", action="append",
                          help="execution provider, in order of preference (repeatable)")
    compress.add_argument("--threads", type=int, help="onnxruntime intra-op threads")
    compress.add_argument("--json", action="store_true", help="print the whole result as JSON")
    add_perplexity_arguments(compress)
    compress.set_defaults(func=_compress)

    inspect = sub.add_parser("inspect", help="show a bundle's manifest, sizes and checksums")
    inspect.add_argument("bundle")
    inspect.set_defaults(func=_inspect)

    providers = sub.add_parser("providers", help="list onnxruntime execution providers")
    providers.set_defaults(func=_providers)

    for module_name, _ in _PLUGINS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``edge-lingua`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (EdgeLinguaError, MissingExtraError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
