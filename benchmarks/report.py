"""Markdown tables of a run's JSON results (``report.md``; optionally into docs/BENCHMARKS.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import DEFAULT_OUT, read_json

START, END = "<!-- results:start -->", "<!-- results:end -->"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def speed_md(s: dict[str, Any]) -> str:
    engines = s["engines"]
    summary = [[e, d["cold_start_s"], d.get("vs_llmlingua", {}).get("cold_start_x", "-"),
                d["peak_rss_mb"], d.get("vs_llmlingua", {}).get("peak_rss_ratio", "-")]
               for e, d in engines.items()]
    rows = []
    for e, d in engines.items():
        for n, m in sorted(d["lengths"].items(), key=lambda kv: int(kv[0])):
            speedup = d.get("vs_llmlingua", {}).get("speedup_p50", {}).get(n, "-")
            rows.append([e, m["tokens"], m["p50_ms"], m["p95_ms"], m["tokens_per_s"], speedup,
                         m["compressed_tokens"], m["peak_rss_mb"]])
    return "\n\n".join([
        f"### Speed and memory\n\n{s['machine']['cpu']} ({s['machine']['cores']} cores, "
        f"{', '.join(s['machine']['isa'])}), {s['threads']} threads, rate {s['rate']}, "
        f"{s['repeats']} timed calls per length after one warm-up; tokens are cl100k_base.",
        _table(["engine", "cold start s (import+load)", "x faster than llmlingua",
                "peak RSS MB", "RSS / llmlingua"], summary),
        _table(["engine", "tokens", "p50 ms", "p95 ms", "tokens/s", "speedup vs llmlingua (p50)",
                "compressed tokens", "peak RSS so far MB"], rows),
    ])


def ceiling_md(c: dict[str, Any]) -> str:
    products = [[f"{p['m']}x{p['k']} @ {p['k']}x{p['n']}", p["count"], p["gops"]]
                for p in c["products"]]
    comp = c["compressor"]
    return "\n\n".join([
        "### INT8 matrix-multiply ceiling",
        _table(["product (uint8 x int8)", "in model", "GOPS (MatMulInteger alone)"], products),
        _table(["int8 MACs / token", "ceiling GOPS (model's mix)", "ceiling tokens/s",
                "compressor tokens/s", "compressor GOPS", "share of ceiling"],
               [[c["int8_macs_per_token"], c["ceiling_int8_gops"], c["ceiling_tokens_per_s"],
                 comp["tokens_per_s"], comp["achieved_int8_gops"], c["share_of_ceiling"]]]),
    ])


def fidelity_md(f: dict[str, Any]) -> str:
    rows = []
    for mode, m in f["modes"].items():
        for rate, r in sorted(m["rates"].items(), key=lambda kv: -float(kv[0])):
            rows.append([mode, m["model_mb"], rate, r["agreement"], r["kept_word_f1"], r["words"],
                         m["max_logit_error"]])
    return (f"### Fidelity vs fp32 ({f['fp32_model_mb']:.1f} MB), held-out {f['held_out']}\n\n"
            + _table(["mode", "model MB", "rate", "keep/drop agreement", "kept-word F1",
                      "words", "max logit error"], rows))


def _method_rows(methods: dict[str, Any], keys: tuple[str, ...]) -> list[list[Any]]:
    """One row per method and rate (highest rate first): method, rate, then ``keys``."""
    return [[method, rate, *(m[k] for k in keys)] for method, per_rate in methods.items()
            for rate, m in sorted(per_rate.items(), key=lambda kv: -float(kv[0]))]


def quality_md(q: dict[str, Any]) -> str:
    parts = [f"### Quality ({q['reader']} as reader)"]
    if "gsm8k" in q:
        g = q["gsm8k"]
        rows = _method_rows(g["methods"], ("achieved_rate", "retention", "retention_median",
                                           "numbers_kept", "compress_ms_mean"))
        parts += [f"GSM8K test problems: {g['problems']}; mean NLL of the solution with no "
                  f"question {g['mean_nll_none']:.1f} nats, with the full question "
                  f"{g['mean_nll_full']:.1f}.",
                  _table(["method", "rate", "achieved rate (Gemma tokens)", "retention",
                          "retention (median)", "numbers kept", "compress ms (question)"], rows)]
    if "quality" in q:
        qa = q["quality"]
        rows = _method_rows(qa["methods"], ("achieved_rate", "accuracy", "same_as_full",
                                            "gold_nll", "gold_retention", "compress_s_mean"))
        none, full = qa["no_story"], qa["full_story"]
        parts += [f"QuALITY: {qa['questions']} questions on {qa['stories']} story of "
                  f"{qa['story_tokens']:,} Gemma tokens. Accuracy with no story "
                  f"{none['accuracy']:.0%} (same pick as with the full story: "
                  f"{none['same_as_full']:.0%}), with the full story {full['accuracy']:.0%}; "
                  f"chance {qa['chance']:.0%}. Gold-option nats: {none['gold_nll']:.1f} with no "
                  f"story, {full['gold_nll']:.1f} with the full story.",
                  _table(["method", "rate", "achieved rate (Gemma tokens)", "accuracy",
                          "same pick as full story", "gold-option nats", "gold-option retention",
                          "compress s (story)"], rows)]
    return "\n\n".join(parts)


def gpu_md(g: dict[str, Any]) -> str:
    if "error" in g:
        return f"### GPU (CUDA execution provider)\n\nNot measured: {g['error']}"
    runs = g.get("runs", {"": g})  # one model (older files) or model/provider -> run
    title = "GPU execution providers" if "runs" in g else "GPU (CUDA execution provider)"
    parts = [f"### {title}: {g['device']}"]
    for name, run in runs.items():
        if "error" in run:
            parts.append(f"{name}: not measured: {run['error']}")
            continue
        rows = [[b["batch"], b["window"], b["p50_ms"], b["tokens_per_s"]] for b in run["batches"]]
        parts.append((f"{name}\n\n" if name else "")
                     + _table(["batch (windows)", "window tokens", "p50 ms", "tokens/s"], rows))
    return "\n\n".join(parts)


SECTIONS = {"speed": speed_md, "ceiling": ceiling_md, "fidelity": fidelity_md,
            "quality": quality_md, "gpu": gpu_md}


def render(out: Path) -> str:
    """Tables of every section whose JSON is in ``out``."""
    parts = [fn(read_json(out / f"{name}.json")) for name, fn in SECTIONS.items()
             if (out / f"{name}.json").is_file()]
    return "\n\n".join(parts) + "\n"


def into_docs(markdown: str, docs: Path) -> None:
    """Replace the text between the results markers of ``docs`` with ``markdown``."""
    text = docs.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise ValueError(f"{docs} has no {START} ... {END} block")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    docs.write_text(f"{head}{START}\n{markdown}{END}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--docs", type=Path, help="also write the tables into this markdown file")
    args = parser.parse_args(argv)
    markdown = render(args.out)
    (args.out / "report.md").write_text(markdown, encoding="utf-8")
    if args.docs:
        into_docs(markdown, args.docs)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
