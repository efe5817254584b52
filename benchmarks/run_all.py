"""Every benchmark section in one run: models, speed, ceiling, fidelity, quality, plots, report.

    python -m benchmarks.run_all --out artifacts/bench                 # the default model
    python -m benchmarks.run_all --out artifacts/bench-dev --dev       # MiniLM stand-in
    python -m benchmarks.run_all --sections speed ceiling              # some sections only

Results: ``OUT/{speed,ceiling,fidelity,quality}.json``, ``OUT/latency_vs_length.png``,
``OUT/quality_vs_rate.png``, ``OUT/report.md`` (the tables; ``--docs docs/BENCHMARKS.md`` also
writes them into the docs). The GPU section runs on a GPU machine
(``python -m benchmarks.gpu_cuda``); a ``gpu.json`` it left in OUT is reported too.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import ceiling, fidelity, plots, quality, report, speed
from benchmarks.common import read_json
from benchmarks.models import SPEED_MODE, add_arguments, prepare
from edge_lingua_quantize.modes import MODES

SECTIONS = ("speed", "ceiling", "fidelity", "quality")


@dataclass(frozen=True)
class Sizes:
    """How much each section measures (the smoke test shrinks these)."""

    lengths: tuple[int, ...] = speed.LENGTHS
    repeats: int = 10
    ceiling_tokens: int = 2048
    problems: int = 30
    rates: tuple[float, ...] = quality.RATES
    quality_sections: tuple[str, ...] = quality.SECTIONS
    modes: tuple[str, ...] = field(default_factory=lambda: tuple(MODES))
    engines: tuple[str, ...] = speed.ENGINES


def run_all(out: Path, checkpoint: Path | None, *, dev: bool = False,
            sections: tuple[str, ...] = SECTIONS, sizes: Sizes = Sizes(),
            threads: int | None = None, docs: Path | None = None,
            int8_bundle: Path | None = None) -> dict[str, float]:
    """Run the chosen sections in order; returns seconds per section.

    ``int8_bundle`` (e.g. the shipped ``edge_lingua/models/default``) replaces the run's own
    dynamic-int8 quantization of the checkpoint in speed, ceiling and quality.
    """
    seconds: dict[str, float] = {}

    def timed(name: str, fn) -> None:
        print(f"== {name}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        fn()
        seconds[name] = time.perf_counter() - t0

    modes = sizes.modes if "fidelity" in sections else (SPEED_MODE,)
    models = prepare(out, checkpoint, modes=tuple(dict.fromkeys((SPEED_MODE, *modes))), dev=dev)
    int8 = int8_bundle or models.int8
    if "speed" in sections:
        timed("speed", lambda: speed.run(out, models.checkpoint, models.fp32, int8,
                                         engines=sizes.engines, lengths=sizes.lengths,
                                         repeats=sizes.repeats, threads=threads))
        plots.latency_plot(read_json(out / "speed.json"), out / "latency_vs_length.png")
    if "ceiling" in sections:
        timed("ceiling", lambda: ceiling.run(out, int8, tokens=sizes.ceiling_tokens,
                                             threads=threads, repeats=sizes.repeats))
    if "fidelity" in sections:
        timed("fidelity", lambda: fidelity.run(out, models.fp32, models.quantized))
    if "quality" in sections:
        timed("quality", lambda: quality.run(out, int8, problems=sizes.problems,
                                             rates=sizes.rates, threads=threads,
                                             sections=sizes.quality_sections))
        plots.quality_plot(read_json(out / "quality.json"), out / "quality_vs_rate.png")
    markdown = report.render(out)
    (out / "report.md").write_text(markdown, encoding="utf-8")
    if docs is not None:
        report.into_docs(markdown, docs)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--threads", type=int, help="threads for every engine (default: all)")
    parser.add_argument("--repeats", type=int, default=Sizes.repeats)
    parser.add_argument("--problems", type=int, default=Sizes.problems)
    parser.add_argument("--lengths", nargs="+", type=int, default=list(speed.LENGTHS))
    parser.add_argument("--docs", type=Path, help="write the tables into this markdown file")
    parser.add_argument("--int8-bundle", type=Path,
                        help="INT8 bundle to time and judge (default: quantize the checkpoint)")
    args = parser.parse_args(argv)
    sizes = Sizes(lengths=tuple(args.lengths), repeats=args.repeats, problems=args.problems)
    seconds = run_all(args.out, args.checkpoint, dev=args.dev, sections=tuple(args.sections),
                      sizes=sizes, threads=args.threads, docs=args.docs,
                      int8_bundle=args.int8_bundle)
    print(f"done in {sum(seconds.values()):.0f} s: {seconds}; tables in {args.out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
