"""CPU milliseconds per ``compress`` call on plain prose, one thread, for old-vs-new checks.

Wall-clock latency means nothing on a machine shared with other jobs; the process CPU time
of a one-thread compressor moves much less with load. Run it with each checkout first on
``PYTHONPATH``, alternating, and compare medians::

    PYTHONPATH=/path/to/checkout python benchmarks/prose_cpu.py
"""

from __future__ import annotations

import json
import statistics
import time

from edge_lingua.bench import _FILLER, _prompt
from edge_lingua.compressor import Compressor


def main() -> None:
    compressor = Compressor.load(threads=1)
    out = {}
    for n in (512, 2048, 8192):
        prompt = _prompt(compressor._tokenizer, _FILLER, n)
        compressor.compress(prompt, rate=0.33)
        times = []
        for _ in range(5):
            started = time.process_time()
            compressor.compress(prompt, rate=0.33)
            times.append(time.process_time() - started)
        out[n] = round(statistics.median(times) * 1000, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
