"""Scaling of ``compress-corpus``: wall time with 1 and 2 workers, local pool and Ray Data.

The corpus is GSM8K test problems with their worked solutions (real English, about 150 tokens
each, ``Example.cot``) from ../shared/data.
Every run writes a fresh output; the wall time includes starting the workers and loading one
compressor in each. All runs must produce the same bytes.

    python -m benchmarks.corpus_scaling --records 1319
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from benchmarks.common import DEFAULT_OUT, machine, write_json
from edge_lingua.corpus import CorpusOptions, compress_corpus
from training.corpus import gsm8k


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1319)
    parser.add_argument("--rate", type=float, default=0.5)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT / "corpus_scaling.json")
    args = parser.parse_args()

    import ray

    work = Path(tempfile.mkdtemp(prefix="corpus-scaling-"))
    source = work / "in.jsonl"
    chunks = gsm8k("test")[: args.records]
    with source.open("w", encoding="utf-8") as f:
        for example in chunks:
            f.write(json.dumps({"id": example.uid, "text": example.cot}, ensure_ascii=False)
                    + "\n")
    options = CorpusOptions(rate=args.rate)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    rows, outputs = [], set()
    for engine in ("local", "ray"):
        for workers in (1, 2):
            out = work / f"{engine}{workers}.jsonl"
            started = time.perf_counter()
            summary = compress_corpus(source, out, options=options, workers=workers,
                                      use_ray=engine == "ray", progress=False)
            seconds = time.perf_counter() - started
            assert summary.written == len(chunks) and summary.failed == 0
            outputs.add(out.read_bytes())
            rows.append({"engine": engine, "workers": workers, "seconds": round(seconds, 2),
                         "records_per_s": round(len(chunks) / seconds, 1)})
    ray.shutdown()
    assert len(outputs) == 1, "runs wrote different bytes"
    for row in rows:
        base = next(r for r in rows if r["engine"] == row["engine"] and r["workers"] == 1)
        row["speedup"] = round(base["seconds"] / row["seconds"], 2)
    report = {"section": "corpus_scaling", "records": len(chunks), "rate": args.rate,
              "machine": machine(), "runs": rows}
    write_json(args.out, report)
    print(json.dumps(report["machine"]))
    print("| engine | workers | seconds | records/s | speedup |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['engine']} | {r['workers']} | {r['seconds']} | {r['records_per_s']} | "
              f"{r['speedup']}x |")


if __name__ == "__main__":
    main()
