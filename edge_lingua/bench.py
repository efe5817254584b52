"""``edge-lingua bench``: time a bundle on this machine, or run the full benchmark harness.

``edge-lingua bench speed [--bundle B]`` is built in (onnxruntime only): cold start (import +
load, in a fresh interpreter), compress latency p50/p95 and tokens/s at several prompt lengths,
and peak RSS. ``edge-lingua bench all -- ARGS`` runs ``benchmarks/run_all.py`` of a source
checkout (llmlingua side by side, INT8 ceiling, fidelity, quality; see docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_lingua.errors import EdgeLinguaError, InvalidArgumentError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

LENGTHS = (128, 512, 2048, 8192)
# Filler for prompts of a given length when no text is given (the classifier's cost does not
# depend on what the words say).
_FILLER = (
    "Every morning the ferry leaves the harbour at 7:40 and reaches the island about 35 "
    "minutes later, unless the wind from the north is stronger than 25 knots. Passengers who "
    "bring a bicycle pay 4 dollars more, and the last boat back departs at 6 in the evening. "
)
_COLD_START = (
    "import sys, time\n"
    "t0 = time.perf_counter()\n"
    "from edge_lingua.compressor import Compressor\n"
    "c = Compressor.load(sys.argv[1], providers=sys.argv[2:] or None)\n"
    "seconds = time.perf_counter() - t0\n"
    "from edge_lingua.bench import peak_rss_mb\n"
    "print(seconds, peak_rss_mb())\n"
)


def _prompt(tokenizer: Tokenizer, source: str, n_tokens: int) -> str:
    """The first ``n_tokens`` tokens of ``source`` repeated as often as needed."""
    per_copy = max(len(tokenizer.encode(source, add_special_tokens=False).ids), 1)
    text = " ".join([source.strip()] * (n_tokens // per_copy + 1))
    encoding = tokenizer.encode(text, add_special_tokens=False)
    end = encoding.offsets[n_tokens - 1][1] if len(encoding.ids) >= n_tokens else len(text)
    return text[:end]


def peak_rss_mb() -> float:
    """This process's peak resident memory (MiB).

    Linux's ``VmHWM``, not ``getrusage().ru_maxrss``: the latter carries the parent's peak
    across fork + exec, so every subprocess of a large parent would report the parent's size.
    """
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    raise EdgeLinguaError("/proc/self/status has no VmHWM line (peak RSS needs Linux)")


def cold_start(bundle: str | None, providers: list[str]) -> dict[str, float]:
    """Seconds to import edge-lingua and load the bundle in a fresh interpreter, and its RSS."""
    target = bundle or str(_default_bundle())
    done = subprocess.run([sys.executable, "-c", _COLD_START, target, *providers],
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise EdgeLinguaError(f"loading the bundle in a fresh process failed: {done.stderr[-500:]}")
    seconds, rss_mb = done.stdout.split()
    return {"cold_start_s": float(seconds), "rss_after_load_mb": float(rss_mb)}


def _default_bundle() -> Path:
    from edge_lingua.compressor import default_bundle_path

    return default_bundle_path()


def time_calls(call: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``call``, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return times


def speed(bundle: str | None, *, lengths: tuple[int, ...] = LENGTHS, repeats: int = 10,
          rate: float = 0.33, threads: int | None = None, providers: list[str] | None = None,
          text: str | None = None) -> dict[str, Any]:
    """Latency and throughput of ``Compressor.compress`` on this machine."""
    from edge_lingua.compressor import Compressor, load_tokenizer

    if repeats < 1 or not lengths or min(lengths) < 1:
        raise InvalidArgumentError("repeats and lengths must be positive")
    result: dict[str, Any] = cold_start(bundle, providers or [])
    compressor = Compressor.load(bundle, providers=providers, threads=threads)
    result.update({"bundle": str(compressor.bundle.path), "provider": compressor.provider,
                   "quantization": compressor.bundle.manifest.quantization, "rate": rate,
                   "lengths": {}})
    tokenizer = load_tokenizer(compressor.bundle.tokenizer_path)
    for n in lengths:
        prompt = _prompt(tokenizer, text or _FILLER, n)
        ordered = sorted(time_calls(partial(compressor.compress, prompt, rate=rate), repeats))
        p50 = statistics.median(ordered)
        result["lengths"][str(n)] = {
            "p50_ms": 1000 * p50,
            "p95_ms": 1000 * ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
            "tokens_per_s": n / p50,
        }
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def _speed(args: argparse.Namespace) -> int:
    text = Path(args.text).read_text(encoding="utf-8") if args.text else None
    result = speed(args.bundle, lengths=tuple(args.lengths), repeats=args.repeats,
                   rate=args.rate, threads=args.threads, providers=args.provider, text=text)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(f"{result['bundle']} ({result['quantization']}) on {result['provider']}: cold start "
          f"{result['cold_start_s']:.2f} s, peak RSS {result['peak_rss_mb']:.0f} MB")
    print(f"{'tokens':>8} {'p50 ms':>10} {'p95 ms':>10} {'tokens/s':>10}")
    for n, m in result["lengths"].items():
        print(f"{n:>8} {m['p50_ms']:>10.1f} {m['p95_ms']:>10.1f} {m['tokens_per_s']:>10.0f}")
    return 0


def _all(args: argparse.Namespace) -> int:
    """Run the repository's harness (``python -m benchmarks.run_all``) in a child process: the
    runtime never imports the repo-only ``benchmarks/``."""
    if not (Path.cwd() / "benchmarks" / "run_all.py").is_file():
        raise EdgeLinguaError(
            "the full harness lives in benchmarks/ of a source checkout: run `edge-lingua bench "
            "all` from the repository root (it needs the export extra, llmlingua and matplotlib)"
        )
    forwarded = args.harness_args
    forwarded = forwarded[1:] if forwarded[:1] == ["--"] else forwarded
    return subprocess.run([sys.executable, "-m", "benchmarks.run_all", *forwarded]).returncode


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench`` to the ``edge-lingua`` command line."""
    bench = subparsers.add_parser("bench", help="benchmark a bundle, or run the full harness")
    sub = bench.add_subparsers(dest="bench_command", required=True)
    fast = sub.add_parser("speed", help="latency, tokens/s, cold start and RSS of one bundle")
    fast.add_argument("--bundle", help="token-classifier bundle (default: the shipped model)")
    fast.add_argument("--lengths", nargs="+", type=int, default=list(LENGTHS),
                      help="prompt lengths in the bundle's tokens")
    fast.add_argument("--repeats", type=int, default=10)
    fast.add_argument("--rate", type=float, default=0.33)
    fast.add_argument("--threads", type=int)
    fast.add_argument("--provider", action="append", help="execution provider (repeatable)")
    fast.add_argument("--text", help="text file to build the prompts from (default: filler)")
    fast.add_argument("--json", action="store_true")
    fast.set_defaults(func=_speed)
    full = sub.add_parser("all", help="python -m benchmarks.run_all (source checkout)")
    full.add_argument("harness_args", nargs=argparse.REMAINDER,
                      help="arguments of benchmarks/run_all.py after --, e.g. -- --out DIR")
    full.set_defaults(func=_all)
