"""Encoder window length: speed against agreement with full 512-token windows.

    python -m benchmarks.windows --out docs/results/windows.json [--bundle B] [--threads 2]

For each window length (``extra.window_len`` of a copy of the bundle): kept-word F1 against
the bundle's own windows (``max_seq_len``) at rates 0.33 and 0.5 on real text (the 2,048- and
8,192-token speed prompts and 40 GSM8K test problems, as one prompt each), and the encoder's
tokens per second on the 8,192-token prompt (median of rounds that take every length in
turn, so load on a shared machine hits each length alike).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import cl100k, machine, write_json
from benchmarks.texts import gsm8k_prompts, speed_prompt

LENGTHS = (128, 256, 384, 512)
RATES = (0.33, 0.5)


def _with_window(bundle: Path, window_len: int, root: Path) -> Path:
    copy = root / f"w{window_len}"
    shutil.copytree(bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))
    manifest["extra"]["window_len"] = window_len
    (copy / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return copy


def _f1(kept: np.ndarray, reference: np.ndarray) -> float:
    both = float(np.sum(kept & reference))
    if not kept.any() and not reference.any():
        return 1.0
    return 2 * both / (float(kept.sum()) + float(reference.sum()))


def run(bundle: Path, threads: int, rounds: int, lengths: tuple[int, ...]) -> dict[str, Any]:
    from edge_lingua.compressor import Compressor

    encoding = cl100k()
    texts = {"speed-2048": speed_prompt(2048, encoding), "speed-8192": speed_prompt(8192, encoding),
             "gsm8k-40": "\n\n".join(e.cot for e in gsm8k_prompts("test", 40, seed=15))}
    with tempfile.TemporaryDirectory() as tmp:
        compressors = {n: Compressor.load(_with_window(bundle, n, Path(tmp)), providers=["cpu"],
                                          threads=threads) for n in lengths}
    reference = Compressor.load(bundle, providers=["cpu"], threads=threads)
    quality: dict[str, Any] = {}
    for n, compressor in compressors.items():
        per_text = {}
        for name, text in texts.items():
            for rate in RATES:
                ref = np.asarray(reference.compress(text, rate=rate, structure="text")
                                 .kept_mask[0])
                got = np.asarray(compressor.compress(text, rate=rate, structure="text")
                                 .kept_mask[0])
                per_text[f"{name}@{rate}"] = _f1(got, ref)
        quality[str(n)] = {"kept_word_f1": per_text,
                           "mean_f1": statistics.mean(per_text.values())}
    text = texts["speed-8192"]
    timings: dict[int, list[float]] = {n: [] for n in lengths}
    tokens = {n: sum(hi - lo + 2 for lo, hi in c.score(text).windows)
              for n, c in compressors.items()}
    for _ in range(rounds):
        for n, compressor in compressors.items():
            started = time.perf_counter()
            compressor.score(text)
            timings[n].append(time.perf_counter() - started)
    speed = {str(n): {"encoder_tokens": tokens[n], "seconds_p50": statistics.median(t),
                      "text_tokens_per_s": reference.score(text).token_ids.size
                      / statistics.median(t)}
             for n, t in timings.items()}
    return {"machine": machine(), "threads": threads, "rounds": rounds, "rates": RATES,
            "quality_vs_full_windows": quality, "speed_8192": speed}


def main(argv: list[str] | None = None) -> int:
    from edge_lingua.compressor import default_bundle_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=default_bundle_path())
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lengths", type=int, nargs="+", default=list(LENGTHS))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    result = run(args.bundle, args.threads, args.rounds, tuple(args.lengths))
    print(json.dumps({n: {"mean_f1": round(q["mean_f1"], 4),
                          "tokens_per_s": round(result["speed_8192"][n]["text_tokens_per_s"])}
                      for n, q in result["quality_vs_full_windows"].items()}, indent=1))
    if args.out:
        write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
