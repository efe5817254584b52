"""How closely a quantized token classifier follows its fp32 original, word by word."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_lingua.compressor import Compressor

DEFAULT_RATES = (0.5, 0.33)
DEFAULT_THRESHOLD = 0.98
REPORT_NAME = "fidelity.json"


@dataclass(frozen=True)
class RateFidelity:
    """Keep decisions at one compression rate, quantized vs fp32."""

    rate: float
    words: int
    agreement: float  # share of words with the same keep/drop decision
    kept_word_f1: float  # F1 of the quantized kept words, fp32 kept words as reference


@dataclass(frozen=True)
class SetFidelity:
    """Fidelity on one set of texts (calibration or held-out)."""

    texts: int
    tokens: int
    max_logit_error: float
    mean_logit_error: float
    rates: list[RateFidelity]


@dataclass(frozen=True)
class FidelityReport:
    """The whole report; ``passed`` when every agreement reaches ``threshold``."""

    mode: str
    threshold: float
    sets: dict[str, SetFidelity]
    forced: bool = False
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def min_agreement(self) -> float:
        return min(r.agreement for s in self.sets.values() for r in s.rates)

    @property
    def passed(self) -> bool:
        return self.min_agreement >= self.threshold

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "threshold": self.threshold,
            "min_agreement": self.min_agreement,
            "passed": self.passed,
            "forced": self.forced,
            "settings": self.settings,
            "sets": {name: asdict(s) for name, s in self.sets.items()},
        }

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")

    def summary(self) -> str:
        """A few human-readable lines for the terminal."""
        lines = [f"fidelity of {self.mode} against fp32 (threshold {self.threshold:.1%}):"]
        for name, s in self.sets.items():
            per_rate = ", ".join(
                f"rate {r.rate:g}: agreement {r.agreement:.2%}, kept-word F1 {r.kept_word_f1:.4f}"
                for r in s.rates
            )
            lines.append(
                f"  {name} ({s.texts} texts, {s.tokens} tokens): {per_rate}; "
                f"max |logit error| {s.max_logit_error:.4f}"
            )
        verdict = "PASS" if self.passed else ("FAIL (forced)" if self.forced else "FAIL")
        lines.append(f"  min agreement {self.min_agreement:.2%}: {verdict}")
        return "\n".join(lines)


def _f1(reference: np.ndarray, candidate: np.ndarray) -> float:
    true_pos = int(np.sum(reference & candidate))
    denom = int(reference.sum()) + int(candidate.sum())
    return 1.0 if denom == 0 else 2.0 * true_pos / denom


def compare_set(
    reference: Compressor, candidate: Compressor, texts: Sequence[str],
    rates: Sequence[float] = DEFAULT_RATES,
) -> SetFidelity:
    """Word keep decisions and raw logits of ``candidate`` against ``reference`` on ``texts``."""
    from tqdm.auto import tqdm

    errors: list[np.ndarray] = []
    tokens = 0
    kept: dict[float, tuple[list[bool], list[bool]]] = {r: ([], []) for r in rates}
    # (the progress bar's looks: nothing a caller reads)
    for text in tqdm(texts, desc="fidelity", unit="text", leave=False):  # pragma: no mutate
        ref_logits = reference.score(text).logits
        cand_logits = candidate.score(text).logits
        errors.append(np.abs(ref_logits - cand_logits).ravel())
        tokens += ref_logits.shape[0]
        for rate in rates:
            ref_mask = reference.compress(text, rate=rate).kept_mask
            cand_mask = candidate.compress(text, rate=rate).kept_mask
            # (one mask per context of one text: equally many by construction)
            for ref_ctx, cand_ctx in zip(ref_mask, cand_mask, strict=True):  # pragma: no mutate
                kept[rate][0].extend(ref_ctx)
                kept[rate][1].extend(cand_ctx)
    all_errors = np.concatenate(errors) if errors else np.zeros(1)  # pragma: no mutate (any zeros)
    per_rate = []
    for rate in rates:
        ref = np.asarray(kept[rate][0], dtype=bool)
        cand = np.asarray(kept[rate][1], dtype=bool)
        per_rate.append(RateFidelity(
            rate=rate,
            words=int(ref.size),
            agreement=float(np.mean(ref == cand)) if ref.size else 1.0,
            kept_word_f1=_f1(ref, cand),
        ))
    return SetFidelity(
        texts=len(texts),
        tokens=tokens,
        max_logit_error=float(all_errors.max()),
        mean_logit_error=float(all_errors.mean()),
        rates=per_rate,
    )


def measure(
    fp32_bundle: Path, quantized_bundle: Path, mode: str, texts: dict[str, Sequence[str]], *,
    threshold: float = DEFAULT_THRESHOLD, rates: Sequence[float] = DEFAULT_RATES,
    forced: bool, settings: dict[str, Any],
) -> FidelityReport:
    """Compare two token-classifier bundles, both on CPU, on named sets of texts."""
    # pragma: no mutate start (every spelling of the provider list runs on CPU here)
    reference = Compressor.load(fp32_bundle, providers=["cpu"])
    candidate = Compressor.load(quantized_bundle, providers=["cpu"])
    # pragma: no mutate end
    sets = {name: compare_set(reference, candidate, t, rates) for name, t in texts.items()}
    return FidelityReport(mode=mode, threshold=threshold, sets=sets, forced=forced,
                          settings=dict(settings))
