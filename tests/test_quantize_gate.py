"""The quantization fidelity gate judges a model by its worst keep/drop agreement."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edge_lingua.errors import BundleError, FidelityError, ToolchainError
from edge_lingua_quantize.fidelity import FidelityReport, RateFidelity, SetFidelity


def _set(*agreements: float) -> SetFidelity:
    rates = [RateFidelity(rate=r, words=200, agreement=a, kept_word_f1=a)
             for r, a in zip((0.5, 0.33), agreements, strict=True)]
    return SetFidelity(texts=8, tokens=900, max_logit_error=0.1, mean_logit_error=0.01,
                       rates=rates)


@pytest.mark.parametrize(
    ("threshold", "passed"),
    [(0.95, True), (0.9725, True), (0.9726, False), (0.98, False), (0.995, False)],
)
def test_gate_passes_only_when_every_agreement_reaches_the_threshold(
    threshold: float, passed: bool
) -> None:
    # worst 97.25% (held-out, rate 0.33), best 99.5%: thresholds on both sides of the worst
    report = FidelityReport(mode="dynamic-int8", threshold=threshold,
                            sets={"calibration": _set(0.995, 0.985),
                                  "held_out": _set(0.98, 0.9725)})
    assert report.min_agreement == pytest.approx(0.9725)
    assert report.passed is passed
    assert report.to_json()["passed"] is passed


def test_quantize_refuses_a_model_whose_worst_agreement_is_under_the_threshold(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Thresholds just under and between the measured worst and best agreement of a real
    int4 quantization: written, then refused."""
    pytest.importorskip("torch")
    from edge_lingua_quantize.quantizer import quantize_bundle
    from tests.toolchain_models import cached_bundle, paragraphs

    source = cached_bundle("bert", tmp_path_factory)
    options = {"calibration": paragraphs(24, seed=61), "held_out": paragraphs(6, seed=62),
               "block_size": 32}
    measured = quantize_bundle(source, tmp_path / "measured", "int4-weight", threshold=0.0,
                               **options).report
    agreements = sorted(r.agreement for s in measured.sets.values() for r in s.rates)
    worst, best = agreements[0], agreements[-1]
    assert 0.5 < worst < best < 1.0, agreements  # a spread to put a threshold into
    passed = quantize_bundle(source, tmp_path / "passed", "int4-weight",
                             threshold=worst - 0.005, **options)
    assert passed.report.passed and (tmp_path / "passed" / "manifest.json").is_file()
    with pytest.raises(FidelityError, match="under the threshold"):
        quantize_bundle(source, tmp_path / "refused", "int4-weight",
                        threshold=(worst + best) / 2, **options)
    assert not (tmp_path / "refused").exists()


def test_the_report_reads_as_the_numbers_it_holds() -> None:
    held_out = SetFidelity(texts=3, tokens=120, max_logit_error=0.123456, mean_logit_error=0.01,
                           rates=[RateFidelity(0.5, 100, 0.985, 0.97654),
                                  RateFidelity(0.33, 100, 0.9712, 0.95)])
    report = FidelityReport("dynamic-int8", 0.98, {"held-out": held_out})
    assert report.min_agreement == 0.9712 and not report.passed
    assert report.summary().splitlines() == [
        "fidelity of dynamic-int8 against fp32 (threshold 98.0%):",
        "  held-out (3 texts, 120 tokens): rate 0.5: agreement 98.50%, kept-word F1 0.9765, "
        "rate 0.33: agreement 97.12%, kept-word F1 0.9500; max |logit error| 0.1235",
        "  min agreement 97.12%: FAIL",
    ]
    forced = FidelityReport("dynamic-int8", 0.98, {"held-out": held_out}, forced=True)
    assert forced.summary().endswith("min agreement 97.12%: FAIL (forced)")
    passing = FidelityReport("dynamic-int8", 0.97, {"held-out": held_out})
    assert passing.passed and passing.summary().endswith("min agreement 97.12%: PASS")
    assert passing.to_json()["min_agreement"] == 0.9712 and passing.to_json()["passed"] is True


def test_the_written_report_is_indented_json_of_every_field(tmp_path: Path) -> None:
    report = FidelityReport("static-int8", 0.97, {"held_out": _set(0.98, 0.975)},
                            forced=True, settings={"calibrate_method": "entropy"})
    report.write(tmp_path / "fidelity.json")
    text = (tmp_path / "fidelity.json").read_text(encoding="utf-8")
    assert text.startswith('{\n  "mode": "static-int8",\n  "threshold": 0.97,\n')
    assert text.endswith("}\n") and json.loads(text) == {
        "mode": "static-int8", "threshold": 0.97, "min_agreement": 0.975, "passed": True,
        "forced": True, "settings": {"calibrate_method": "entropy"},
        "sets": {"held_out": {
            "texts": 8, "tokens": 900, "max_logit_error": 0.1, "mean_logit_error": 0.01,
            "rates": [{"rate": 0.5, "words": 200, "agreement": 0.98, "kept_word_f1": 0.98},
                      {"rate": 0.33, "words": 200, "agreement": 0.975, "kept_word_f1": 0.975}],
        }},
    }


def test_fidelity_counts_agreement_and_kept_word_f1_as_computed_on_paper(
    tmp_path: Path,
) -> None:
    """Two hand-set classifiers that differ only in the keep probabilities of "eggs" and
    "three" (0.4 and 0.6, swapped): at rate 0.5 each keeps 4 of the 8 words, and they share 3."""
    import math

    from edge_lingua.compressor import Compressor
    from edge_lingua_quantize.fidelity import compare_set
    from tests.controlled_models import lookup_classifier

    probs = {"ducks": 0.2, "lay": 0.9, "eggs": 0.4, "every": 0.8, "day": 0.1, "she": 0.7,
             "eats": 0.3, "three": 0.6}
    reference = Compressor.load(lookup_classifier(tmp_path / "reference", probs), threads=1)
    candidate = Compressor.load(lookup_classifier(tmp_path / "candidate",
                                                  {**probs, "eggs": 0.6, "three": 0.4}),
                                threads=1)
    text = "ducks lay eggs every day she eats three"
    (half, quarter) = compare_set(reference, candidate, [text], rates=(0.5, 0.25)).rates
    # reference keeps lay every she three, candidate lay every she eggs
    assert (half.words, half.agreement, half.kept_word_f1) == (8, 6 / 8, 2 * 3 / (4 + 4))
    # both keep lay and every
    assert (quarter.agreement, quarter.kept_word_f1) == (1.0, 1.0)
    measured = compare_set(reference, candidate, [text, text], rates=(0.5,))
    # one logit row per word piece of each text (two 8-piece texts), two logits per row
    assert (measured.texts, measured.tokens) == (2, 16)
    # the keep logits of "eggs" and "three" differ by 2 ln 1.5; 4 of the 32 logits differ
    assert measured.max_logit_error == pytest.approx(2 * math.log(0.6 / 0.4), abs=1e-5)
    assert measured.mean_logit_error == pytest.approx(4 * 2 * math.log(0.6 / 0.4) / 32,
                                                      abs=1e-5)
    # an empty set agrees perfectly: nothing kept on either side
    (empty,) = compare_set(reference, candidate, [], rates=(0.5,)).rates
    assert (empty.words, empty.agreement, empty.kept_word_f1) == (0, 1.0, 1.0)


# --- what quantize_bundle refuses before it loads anything heavy -----------------------------
def _refusal(tmp_path: Path, bundle: Path | None = None,
             error: type[Exception] = ToolchainError, **options: Any) -> str:
    from edge_lingua_quantize.quantizer import quantize_bundle

    arguments: dict[str, Any] = {"mode": "dynamic-int8", "calibration": ["ducks lay eggs"],
                                 **options}
    with pytest.raises(error) as raised:
        quantize_bundle(bundle or tmp_path / "absent", tmp_path / "out", **arguments)
    assert not (tmp_path / "out").exists()
    return str(raised.value)


def test_an_unknown_mode_is_refused_with_the_modes_listed(tmp_path: Path) -> None:
    assert _refusal(tmp_path, mode="int3") == (
        "unknown mode 'int3'; choose one of dynamic-int8, static-qdq-int8, qdq-u16, int4-weight")


def test_a_threshold_outside_zero_to_one_is_refused(tmp_path: Path) -> None:
    assert _refusal(tmp_path, threshold=1.5) == "threshold is a fraction in [0, 1], got 1.5"
    # 1.0 is a fraction: the next check speaks
    assert _refusal(tmp_path, threshold=1.0, calibration=[" "]) == (
        "calibration text is empty: give at least one non-empty text")


def test_only_an_fp32_onnx_token_classifier_bundle_is_quantized(tmp_path: Path) -> None:
    from edge_lingua.compressor import default_bundle_path
    from tests.controlled_models import unigram_causal_lm

    lm = unigram_causal_lm(tmp_path / "lm", {"ducks": 0.5, "eggs": 0.5})
    assert _refusal(tmp_path, lm, BundleError).endswith(
        "holds a 'causal-lm' model, but a 'token-classifier' bundle is needed")
    shipped = default_bundle_path()
    assert _refusal(tmp_path, shipped) == (
        f"{shipped} is a dynamic-int8 onnx bundle; quantize starts from an fp32 ONNX bundle "
        "(the one `edge-lingua export classifier` writes)")
