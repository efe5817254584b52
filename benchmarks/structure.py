"""Faithfulness on the prompts apps send: does structure survive compression?

For a JSON record, CPython source, a markdown document, identifier-heavy prose, a QMSum
meeting rendered as ``Speaker: text`` lines and XQuAD Chinese paragraphs, at rates 0.5 and
0.33, it prints:

* parses: the output is still what the input was (JSON loads; Python source parses);
* atoms intact: share of the input's atoms (URLs, paths, numbers, identifiers, ...) that are
  whole in the output or wholly absent, never cut;
* structure kept: JSON: keys kept; code: non-blank lines kept verbatim; markdown: table rows
  with their column count, fences, link targets, heading and list markers; chat: output lines
  that start with a speaker label; zh: CJK neighbours without an inserted space;
* tokens saved, in the compressor's own token count.

The compressor runs in a subprocess using only ``Compressor.load(bundle).compress(text,
rate=...)``, so ``--checkout DIR`` measures an older checkout of edge-lingua with the same
scoring, for a before/after table.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import subprocess
import sys
import sysconfig
import warnings
from datetime import date
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, machine, write_json
from training.corpus import DATA

RATES = (0.5, 0.33)
_CJK_PAIR = re.compile(r"([\u4e00-\u9fff])([ \t]*)([\u4e00-\u9fff])")


def json_record() -> str:
    """A 30-field incident record with URLs, ids, numbers and free text."""
    record: dict[str, Any] = {
        "incident_id": "INC-20931",
        "trace_id": "123e4567-e89b-12d3-a456-426614174000",
        "commit": "9fceb02d0ae598e95dc970b74767f19372d61af8",
        "service_url": "https://api.example.com/v2/orders?region=eu-west-1",
        "runbook": "https://wiki.example.com/runbooks/orders/latency.html",
        "log_path": "/var/log/orders/error.log",
        "windows_log": "C:\\logs\\orders\\error.txt",
        "host_ip": "192.168.14.201",
        "reporter": "john.doe+oncall@example.co.uk",
        "opened_at": "2024-03-05T10:22:01Z",
        "severity": 2,
        "customer_impact": True,
        "amount_at_risk": "$80,000",
        "total": 1042.75,
        "change": "-3.5%",
        "version": "v1.2.3",
        "licence": "Apache-2.0",
        "line_items": [{"sku": "A-1001", "qty": 3, "price": 19.99},
                       {"sku": "B-2002", "qty": 1, "price": 5.25}],
        "summary": "The order service started returning errors for a large share of the "
                   "checkout requests shortly after the deployment of the new pricing module.",
        "timeline": "At first only a few requests failed, then the error rate climbed steadily "
                    "over the next twenty minutes until the on-call engineer rolled back.",
        "root_cause": "A configuration value for the currency conversion cache was missing in "
                      "the production environment, so every request fell back to a slow path.",
        "resolution": "The missing value was added, the deployment was repeated and the error "
                      "rate returned to its normal level within a few minutes.",
        "follow_up": "Add a startup check that refuses to serve traffic when required "
                     "configuration values are absent, and alert on the slow path.",
        "owner": "@alice",
        "tags": ["#payments", "#latency", "checkout"],
        "notes": "Customers in two regions saw timeouts; support answered about forty tickets.",
        "related": ["INC-20877", "INC-20902"],
        "metric": "p95_latency_ms",
        "dashboard": "https://grafana.example.com/d/orders",
        "status": "resolved",
    }
    return json.dumps(record, indent=2)


def python_source() -> str:
    return (Path(sysconfig.get_paths()["stdlib"]) / "textwrap.py").read_text(encoding="utf-8")


def markdown_doc() -> str:
    rows = "\n".join(
        f"| {name} | {value} | {text} |" for name, value, text in [
            ("alpha", "1.5", "the first parameter of the model that we tune every week"),
            ("beta", "2", "the second one, which is rarely changed by anyone on the team"),
            ("gamma", "0.01", "a small learning rate that keeps the updates stable and slow"),
            ("delta", "64", "the batch size that fits the memory of the smallest device"),
        ])
    return (
        "# Tuning the compressor for small devices\n\n"
        "This guide explains how to choose the parameters of the compressor when the device "
        "has little memory and a slow processor, and what each parameter changes.\n\n"
        "## Parameters\n\n| name | value | description |\n|------|-------|-------------|\n"
        f"{rows}\n\n## Steps\n\n"
        "- measure the latency of the default settings on the real device first\n"
        "- read [the full benchmark guide](https://example.com/docs/benchmarks.md) before "
        "changing anything\n"
        "- change one parameter at a time and record the result in the shared sheet\n\n"
        "```python\nfrom edge_lingua import Compressor\n\n"
        "compressor = Compressor.load()\nprint(compressor.compress(text, rate=0.33))\n```\n\n"
        "![latency plot](docs/results/latency_vs_length.png)\n"
    )


def identifier_prose() -> str:
    return (
        "On 2024-03-05 at 10:22 the job sync_orders_v2 failed on host 192.168.14.201 with "
        "exit code 137. The handler OrderService.processBatch read /etc/orders/config.yaml and "
        "C:\\deploy\\orders.ini, then called https://api.example.com/v2/orders?page=3 for "
        "customer_id 88231 (contact: ops-team@example.org). The retry budget MAX_RETRIES was 5 "
        "and the timeout 2.5s; memory peaked at 1,842.5 MB (+12.5%). Build v2.14.0-rc.1 from "
        "commit 4f2a9c1e introduced the regression in line_items parsing; ticket INC-20931 "
        "tracks it, @bob owns it, and #orders-oncall is the channel. The trace id was "
        "7c9e6679-7425-40de-944b-e07fc1f90ae7 and the dashboard is at "
        "https://grafana.example.com/d/abc123/orders?from=now-6h.\n"
    )


def chat_transcript() -> str:
    meeting = sorted((DATA / "qmsum" / "val").glob("*.json"))[0]
    turns = json.loads(meeting.read_text(encoding="utf-8"))["meeting_transcripts"]
    return "\n".join(f"{t['speaker']}: {t['content']}" for t in turns[:80]
                     if t["content"].strip())


def chinese_paragraphs() -> str:
    data = json.loads((DATA / "xquad" / "xquad.zh.json").read_text(encoding="utf-8"))["data"]
    return "\n\n".join(p["context"] for article in data[36:] for p in article["paragraphs"][:1])


def atoms_intact(source: str, output: str) -> float:
    """Share of atoms whole in ``output`` or wholly absent: cut if a piece of 3+ characters
    found nowhere else in the input shows up without the whole atom."""
    from edge_lingua.atoms import find_atoms

    spans = [(a.start, a.end) for a in find_atoms(source)
             if a.category != "number" or a.end - a.start > 3]
    if not spans:
        return 1.0
    intact = 0
    for start, end in spans:
        atom = source[start:end]
        rest = source[:start] + " " + source[end:]
        own = [p for p in re.findall(r"\w{3,}", atom) if p not in rest]
        intact += atom in output or not any(p in output for p in own)
    return intact / len(spans)


def structure_kept(kind: str, source: str, output: str) -> tuple[bool, float]:
    """(parses, share of structure kept) for one case."""
    if kind == "json":
        try:
            data = json.loads(output)
        except ValueError:
            return False, 0.0
        return True, float(_keys(data) == _keys(json.loads(source)))
    if kind == "code":
        try:
            ast.parse(output)
            parses = True
        except SyntaxError:
            parses = False
        lines = [ln for ln in source.splitlines() if ln.strip()]
        kept = set(output.splitlines())
        return parses, sum(ln in kept for ln in lines) / len(lines)
    if kind == "markdown":
        checks = [
            all(line.count("|") == 4 for line in output.splitlines() if "|" in line)
            and sum("|" in line for line in output.splitlines()) == 6,
            "```python\nfrom edge_lingua import Compressor" in output,
            "](https://example.com/docs/benchmarks.md)" in output,
            "](docs/results/latency_vs_length.png)" in output,
            "|------|-------|-------------|" in output,
        ]
        checks.append(output.startswith("# ") and "\n## Steps\n" in output)
        return True, sum(checks) / len(checks)
    if kind == "chat":
        speakers = {ln.partition(": ")[0] for ln in source.splitlines()}
        lines = [ln for ln in output.splitlines() if ln.strip()]
        labelled = sum(ln.partition(": ")[0] in speakers and ": " in ln for ln in lines)
        return True, labelled / max(len(lines), 1)
    pairs = _CJK_PAIR.findall(output)
    inserted = sum(bool(gap) and f"{a}{gap}{b}" not in source for a, gap, b in pairs)
    return True, 1 - inserted / max(len(pairs), 1)


def _keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_keys(v) for v in value]
    return None


CASES = {
    "json": json_record,
    "code": python_source,
    "markdown": markdown_doc,
    "identifiers": identifier_prose,
    "chat": chat_transcript,
    "zh": chinese_paragraphs,
}


def compress_cases(bundle: str | None, threads: int) -> dict[str, dict[str, Any]]:
    """Every case compressed at every rate by the edge-lingua on ``sys.path``."""
    from edge_lingua.compressor import Compressor

    compressor = Compressor.load(bundle, threads=threads)
    outputs: dict[str, dict[str, Any]] = {}
    for name, make in CASES.items():
        source = make()
        for rate in RATES:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = compressor.compress(source, rate=rate)
            outputs.setdefault(name, {})[str(rate)] = {
                "output": result.compressed_prompt, "origin": result.origin_tokens,
                "compressed": result.compressed_tokens}
    return outputs


def run(bundle: str | None, threads: int, checkout: Path | None) -> dict[str, Any]:
    # run as a script, so that PYTHONPATH alone decides which edge-lingua is imported
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--threads",
               str(threads), *(["--bundle", bundle] if bundle else [])]
    path = os.pathsep.join(str(p) for p in (checkout, REPO) if p is not None)
    done = subprocess.run(command, env={**os.environ, "PYTHONPATH": path}, check=True,
                          capture_output=True, text=True)
    outputs = json.loads(done.stdout)
    rows = []
    for name, make in CASES.items():
        source = make()
        kind = name if name in ("json", "code", "markdown", "chat", "zh") else "prose"
        for rate in RATES:
            got = outputs[name][str(rate)]
            output = got["output"]
            parses, kept = (structure_kept(kind, source, output) if kind != "prose"
                            else (True, 1.0))
            rows.append({
                "case": name, "rate": rate, "parses": parses,
                "atoms_intact": round(atoms_intact(source, output), 4),
                "structure_kept": round(kept, 4),
                "tokens_saved": round(1 - got["compressed"] / got["origin"], 4),
            })
    return {"rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", help="token-classifier bundle (default: the shipped model)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--label", default="after", help="name of this run in the JSON")
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    parser.add_argument("--checkout", type=Path,
                        help="measure the edge-lingua of this checkout (default: this one)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        json.dump(compress_cases(args.bundle, args.threads), sys.stdout)
        return 0
    report = run(args.bundle, args.threads, args.checkout)
    print(f"{'case':12} {'rate':>5} {'parses':>6} {'atoms intact':>12} {'structure kept':>14} "
          f"{'tokens saved':>12}")
    for row in report["rows"]:
        print(f"{row['case']:12} {row['rate']:>5} {'yes' if row['parses'] else 'no':>6} "
              f"{row['atoms_intact']:>12.1%} {row['structure_kept']:>14.1%} "
              f"{row['tokens_saved']:>12.1%}")
    if args.out:
        existing = json.loads(args.out.read_text()) if args.out.is_file() else {}
        existing[args.label] = {
            "command": "python -m benchmarks.structure " + " ".join(
                sys.argv[1:] if argv is None else argv),
            "date": date.today().isoformat(), "machine": machine(),
            "checkout": str(args.checkout or "this one"), **report,
        }
        write_json(args.out, existing)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
