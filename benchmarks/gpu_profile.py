"""cProfile and a wall-clock stage breakdown of whole edge-lingua compress calls (issue 15 item 7).

    python -m benchmarks.gpu_profile BUNDLE PROMPTS.json [LENGTH] [PROVIDER] [CALLS]

Prints the p50 of 10 unprofiled calls on the prompt of LENGTH tokens (default 8192; PROVIDER
default cuda), cProfile of CALLS calls (default 5; top 15 by tottime, top 25 by cumulative
time), then the milliseconds per call of each stage over 20 calls, each stage timed by a
wrapper (under Python 3.12 cProfile loses C calls such as onnxruntime's ``run``, so its
cumulative times do not add up). ``PROMPTS.json`` is ``benchmarks.gpu_compress``'s.
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import offline_env

RATE = 0.33


def breakdown(edge: Any, text: str, calls: int = 20) -> tuple[float, dict[str, float]]:
    """Seconds per call of the whole call and of each wrapped stage (nested ones included in
    their parents)."""
    import edge_lingua.compressor as compressor
    import edge_lingua.segmentation as segmentation

    spent: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - t0
        return wrapper

    class TimedTokenizer:
        def __init__(self, inner: Any) -> None:
            self._inner = inner
            self.encode = timed("  tokenizer.encode (all)", inner.encode)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

    saved = (compressor.segment, segmentation.split_units, segmentation.find_atoms,
             segmentation.attach_tokens, compressor.window_bounds)
    compressor.segment = timed("segment", compressor.segment)
    segmentation.split_units = timed("  segment > split_units", segmentation.split_units)
    segmentation.find_atoms = timed("    split_units > find_atoms", segmentation.find_atoms)
    segmentation.attach_tokens = timed("  segment > attach_tokens", segmentation.attach_tokens)
    compressor.window_bounds = timed("window_bounds", compressor.window_bounds)
    session = edge._encoder._session
    session.run = timed("  onnxruntime run (blocking)", session.run)
    edge._encoder.logits = timed("encoder.logits (feeds + run + slicing)", edge._encoder.logits)
    for name in ("_scores", "_select", "_join", "_count"):
        setattr(edge, name, timed(f"Compressor.{name}", getattr(edge, name)))
    edge._tokenizer = TimedTokenizer(edge._tokenizer)
    try:
        edge.compress(text, rate=RATE)
        spent.clear()
        t0 = time.perf_counter()
        for _ in range(calls):
            edge.compress(text, rate=RATE)
        total = time.perf_counter() - t0
    finally:
        (compressor.segment, segmentation.split_units, segmentation.find_atoms,
         segmentation.attach_tokens, compressor.window_bounds) = saved
    return total / calls, {k: v / calls for k, v in spent.items()}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    bundle, prompts = args[0], Path(args[1])
    length = args[2] if len(args) > 2 else "8192"
    provider = args[3] if len(args) > 3 else "cuda"
    calls = int(args[4]) if len(args) > 4 else 5
    offline_env()
    import onnxruntime as ort

    if hasattr(ort, "preload_dlls"):
        ort.preload_dlls()
    from edge_lingua.compressor import Compressor

    text = json.loads(prompts.read_text(encoding="utf-8"))[length]
    edge = Compressor.load(bundle, providers=[provider])
    for _ in range(3):
        edge.compress(text, rate=RATE)
    times = []
    for _ in range(10):
        t0 = time.perf_counter()
        edge.compress(text, rate=RATE)
        times.append(time.perf_counter() - t0)
    print(f"{bundle} {provider} {length} tokens: p50 {1000 * statistics.median(times):.1f} ms "
          f"unprofiled (10 calls)")
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(calls):
        edge.compress(text, rate=RATE)
    profile.disable()
    for key, n in (("tottime", 15), ("cumulative", 25)):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(key).print_stats(n)
        print(f"== {calls} calls, by {key}")
        print(out.getvalue())
    n = 20
    whole, stages = breakdown(edge, text, n)
    print(f"== wall-clock breakdown, {n} calls, ms per call (nested stages indented)")
    print(f"{'whole compress call':45s} {1000 * whole:8.1f}")
    for name, seconds in sorted(stages.items(), key=lambda kv: -kv[1]):
        print(f"{name:45s} {1000 * seconds:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
