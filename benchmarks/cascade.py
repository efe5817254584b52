"""Uplink tokens saved and end-to-end latency of the cascade on GSM8K few-shot prompts.

Each GSM8K test question is asked with the same ``--shots`` worked examples from the train
split as a compressible context, once uncompressed and once per ``--rate``, through
:class:`edge_lingua.cascade.Cascade` to an OpenAI-compatible server: ``--server URL``, or
llama-cpp-python's own server with Gemma 3 270M started on loopback. Runs are interleaved
question by question, so no configuration profits from the server's prefix cache.

Uplink tokens are the server's own ``usage.prompt_tokens`` (the target model's tokenizer).

    python -m benchmarks.cascade --bundle BUNDLE [--questions 5 --shots 8 --rate 0.5 0.33]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import machine, write_json
from training.corpus import DATA

REPO = Path(__file__).resolve().parents[1]
GSM8K = DATA / "gsm8k"
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def load_rows(path: Path, n: int) -> list[dict[str, str]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if len(rows) == n:
                break
            rows.append(json.loads(line))
    return rows


def few_shot(rows: list[dict[str, str]]) -> str:
    """Worked examples in the usual GSM8K chain-of-thought prompt format."""
    blocks = []
    for row in rows:
        reasoning, _, final = row["answer"].rpartition("####")
        reasoning = re.sub(r"<<[^>]*>>", "", reasoning).strip()
        blocks.append(f"Question: {row['question']}\nAnswer: {reasoning} "
                      f"The answer is {final.strip()}.")
    return "\n\n".join(blocks) + "\n\n"


def final_number(text: str) -> str | None:
    match = re.search(r"answer is\s*\$?(" + NUMBER.pattern + ")", text)
    numbers = [match.group(1)] if match else NUMBER.findall(text)
    return numbers[0].replace(",", "").rstrip(".") if numbers else None


@contextlib.contextmanager
def remote_url(args: argparse.Namespace, workdir: Path) -> Iterator[str]:
    if args.server:
        yield args.server
        return
    sys.path.insert(0, str(REPO))
    from tests.servers import LlamaServer

    with LlamaServer(workdir / "llama.log", n_ctx=args.n_ctx, ready_timeout_s=300) as server:
        yield server.url


def run(args: argparse.Namespace) -> dict[str, Any]:
    from edge_lingua.cascade import Cascade, Ledger, Policy, RemoteClient, RetryPolicy, compressible
    from edge_lingua.compressor import Compressor

    compressor = Compressor.load(args.bundle, threads=args.threads)
    tokenizer = compressor.bundle.tokenizer_path
    context = few_shot(load_rows(GSM8K / "train.jsonl", args.shots))
    questions = load_rows(GSM8K / "test.jsonl", args.questions)
    configs = [("uncompressed", None), *((f"rate {r:g}", r) for r in args.rate)]
    with tempfile.TemporaryDirectory() as tmp, remote_url(args, Path(tmp)) as url:
        client = RemoteClient(url, timeout_s=600, retry=RetryPolicy(max_retries=1))
        ledgers = {name: Ledger(Path(tmp) / f"{i}.sqlite") for i, (name, _) in enumerate(configs)}
        cascades = {
            name: Cascade(remote=client, compressor=None if rate is None else compressor,
                          tokenizer=tokenizer, ledger=ledgers[name],
                          policy=Policy(try_local=False, rate=rate))
            for name, rate in configs
        }
        client.chat({"messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 2})
        results: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in configs}
        for row in questions:
            gold = row["answer"].rpartition("####")[2].strip().replace(",", "")
            messages = [{"role": "user", "content": [
                compressible(context),
                {"type": "text", "text": f"Question: {row['question']}\nAnswer:"},
            ]}]
            for name, _ in configs:
                started = time.perf_counter()
                answer = cascades[name].ask(messages, max_tokens=args.max_tokens, temperature=0)
                results[name].append({
                    "latency_s": time.perf_counter() - started,
                    "uplink_tokens": answer.response["usage"]["prompt_tokens"],
                    "counted_original": answer.original_tokens,
                    "counted_sent": answer.sent_tokens,
                    "correct": final_number(answer.text or "") == gold,
                })
        compress_ms = {
            name: 1000 * statistics.mean(r["compress_s"] for r in ledgers[name].rows())
            for name, _ in configs
        }
    base = statistics.mean(r["uplink_tokens"] for r in results["uncompressed"])
    table = []
    for name, _ in configs:
        rows = results[name]
        uplink = statistics.mean(r["uplink_tokens"] for r in rows)
        table.append({
            "config": name,
            "uplink_tokens": round(uplink, 1),
            "saved_pct": round(100 * (1 - uplink / base), 1),
            "latency_mean_s": round(statistics.mean(r["latency_s"] for r in rows), 3),
            "latency_p50_s": round(statistics.median(r["latency_s"] for r in rows), 3),
            "compress_ms": round(compress_ms[name], 1),
            "correct": sum(r["correct"] for r in rows),
            "questions": len(rows),
        })
    return {"bundle": str(args.bundle), "shots": args.shots, "max_tokens": args.max_tokens,
            "table": table}


def markdown(report: dict[str, Any]) -> str:
    lines = ["| prompt | uplink tokens (mean) | saved | e2e latency mean / p50 (s) "
             "| compress (ms) | correct |",
             "|---|---:|---:|---:|---:|---:|"]
    for row in report["table"]:
        lines.append(
            f"| {row['config']} | {row['uplink_tokens']:.0f} | {row['saved_pct']:.1f}% "
            f"| {row['latency_mean_s']:.2f} / {row['latency_p50_s']:.2f} "
            f"| {row['compress_ms']:.0f} | {row['correct']}/{row['questions']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", help="token-classifier bundle (default: the shipped model)")
    parser.add_argument("--server", help="OpenAI-compatible base URL (default: start "
                                         "llama_cpp.server with Gemma 3 270M on loopback)")
    parser.add_argument("--questions", type=int, default=5)
    parser.add_argument("--shots", type=int, default=8)
    parser.add_argument("--rate", type=float, nargs="+", default=[0.5, 0.33])
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--threads", type=int, help="onnxruntime threads for the compressor")
    parser.add_argument("--json", help="also write the report to this JSON file")
    args = parser.parse_args(argv)
    report = run(args)
    print(markdown(report))
    if args.json:
        write_json(Path(args.json), {"section": "cascade", "machine": machine(), **report})
    return 0


if __name__ == "__main__":
    sys.exit(main())
