"""PNG plots of a run: latency vs prompt length per engine, quality vs rate per method."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def latency_plot(speed: dict[str, Any], path: Path) -> Path:
    """p50 latency (p95 as the bar's top) against prompt length, one line per engine."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for engine, data in speed["engines"].items():
        lengths = sorted(data["lengths"], key=int)
        x = [int(n) for n in lengths]
        p50 = [data["lengths"][n]["p50_ms"] for n in lengths]
        p95 = [data["lengths"][n]["p95_ms"] for n in lengths]
        ax.errorbar(x, p50, yerr=[[0] * len(x), [b - a for a, b in zip(p50, p95, strict=True)]],
                    marker="o", capsize=3, label=engine)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("prompt length (cl100k_base tokens)")
    ax.set_ylabel("compress latency, ms (p50, bar to p95)")
    ax.set_title(f"rate {speed['rate']}, {speed['threads']} threads, {speed['machine']['cpu']}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def quality_plot(quality: dict[str, Any], path: Path) -> Path:
    """Each quality measure against the achieved rate (the reader's tokens), one line per method.

    The achieved rate, not the requested one, is the x axis: each method budgets in its own
    tokenizer, so at one requested rate they keep different shares of the reader's tokens.
    """
    plt = _pyplot()
    panels = [(section, key, title) for section, key, title in (
        ("gsm8k", "retention", "reader-benefit retention (GSM8K)"),
        ("gsm8k", "numbers_kept", "numbers kept (GSM8K CoT)"),
        ("quality", "gold_nll", "gold-option nats (QuALITY, lower is better)"),
        ("quality", "accuracy", "QuALITY accuracy (Gemma reader)"),
    ) if section in quality]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (section, key, title) in zip(axes[0], panels, strict=True):
        for method, per_rate in quality[section]["methods"].items():
            points = sorted((m["achieved_rate"], m[key]) for m in per_rate.values())
            ax.plot(*zip(*points, strict=True), marker="o", label=method)
        if section == "quality":
            qa = quality["quality"]
            ref = "accuracy" if key == "accuracy" else "gold_nll"
            ax.axhline(qa["full_story"][ref], color="k", ls="--", label="full story")
            ax.axhline(qa["no_story"][ref], color="k", ls="-.", label="no story")
            if key == "accuracy":
                ax.axhline(qa["chance"], color="grey", ls=":", label="chance")
            ax.legend(fontsize="small")
        ax.set_xlabel("achieved rate (share of the reader's tokens kept)")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    axes[0][0].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
