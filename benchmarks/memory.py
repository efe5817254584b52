"""Peak memory and time of ``edge-lingua compress`` on megabyte prompts.

    python -m benchmarks.memory --mib 1 5 20 --out docs/results/memory.json

Each size runs the command line's ``main`` in a fresh interpreter on a file of real English
(GSM8K test problems, repeated to size) and reads that process's peak RSS (``VmHWM``) at exit.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine, write_json
from edge_lingua.sections import SECTION_CHARS
from training.corpus import gsm8k

_CHILD = (
    "import sys, time\n"
    "from edge_lingua.bench import peak_rss_mb\n"
    "from edge_lingua.cli import main\n"
    "t0 = time.perf_counter()\n"
    "rc = main(sys.argv[1:])\n"
    "print('MEMORY', time.perf_counter() - t0, peak_rss_mb(), rc, file=sys.stderr)\n"
)


def english(n_bytes: int, source: str | None = None) -> str:
    """``n_bytes`` characters of English: ``source`` (default: the GSM8K test problems with
    their worked solutions), repeated as needed."""
    source = source or "\n\n".join(e.cot for e in gsm8k("test"))
    copies = n_bytes // len(source.encode("utf-8")) + 1
    return "\n\n".join([source] * copies)[:n_bytes]


def measure(mib: float, bundle: str | None, threads: int | None,
            source: str | None = None) -> dict[str, float]:
    """Seconds, peak RSS (MiB) and input size of one ``compress`` run in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "prompt.txt"
        path.write_text(english(int(mib * 2**20), source), encoding="utf-8")
        args = ["compress", str(path), "--rate", "0.33"]
        args += ["--bundle", bundle] if bundle else []
        args += ["--threads", str(threads)] if threads else []
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _CHILD, *args], capture_output=True,
                              text=True, check=False)
        wall = time.perf_counter() - started
    line = next((x for x in done.stderr.splitlines() if x.startswith("MEMORY ")), "")
    if done.returncode != 0 or not line.endswith(" 0"):
        raise RuntimeError(f"compress failed on {mib} MiB: {done.stderr[-800:]}")
    _, seconds, peak, _ = line.split()
    return {"mib": mib, "seconds": round(float(seconds), 2), "wall_s": round(wall, 2),
            "peak_rss_mb": round(float(peak), 1), "output_bytes": len(done.stdout.encode()),
            "load_average_after": round(os.getloadavg()[0], 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=float, nargs="+", default=[1, 5, 20])
    parser.add_argument("--bundle", help="token-classifier bundle (default: the shipped model)")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--source", type=Path, help="text to repeat (default: GSM8K test)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    source = args.source.read_text(encoding="utf-8") if args.source else None
    rows = []
    for mib in args.mib:
        rows.append(measure(mib, args.bundle, args.threads, source))
        print(json.dumps(rows[-1]), flush=True)
    if args.out:
        write_json(args.out, {"section": "memory", "machine": machine(), "runs": rows,
                              "bundle": args.bundle or "edge_lingua/models/default",
                              "section_chars": SECTION_CHARS})
    return 0


if __name__ == "__main__":
    sys.exit(main())
