"""`edge-lingua export mobile`: ORT format, fixed shapes and the reduced-build operator config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

pytest.importorskip("torch")
pytest.importorskip("optimum.exporters.onnx")

from edge_lingua.bundle import load_bundle
from edge_lingua.cli import main
from edge_lingua.compressor import Compressor
from edge_lingua.errors import ToolchainError
from edge_lingua_export.mobile import export_mobile
from tests.toolchain_models import cached_bundle, paragraphs


def test_fixed_shape_ort_bundle_matches_onnx(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    source = cached_bundle("bert", tmp_path_factory)
    manifest = export_mobile(source, tmp_path / "m",
                             fixed_shapes={"batch_size": 1, "sequence_length": 32})
    bundle = load_bundle(tmp_path / "m", kind="token-classifier")
    assert (manifest.model_format, manifest.model_file, manifest.max_seq_len) == ("ort",
                                                                                 "model.ort", 32)
    ort_session = ort.InferenceSession(str(bundle.model_path), providers=["CPUExecutionProvider"])
    assert all(i.shape == [1, 32] for i in ort_session.get_inputs())
    rng = np.random.default_rng(0)
    feeds = {"input_ids": rng.integers(5, 400, size=(1, 32), dtype=np.int64),
             "attention_mask": np.ones((1, 32), np.int64),
             "token_type_ids": np.zeros((1, 32), np.int64)}
    onnx_session = ort.InferenceSession(str(source / "model.onnx"),
                                        providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(ort_session.run(["logits"], feeds)[0],
                               onnx_session.run(["logits"], feeds)[0], atol=1e-5)
    config = (bundle.path / manifest.extra["operators_config"]).read_text()
    ops = {op for line in config.splitlines() if line.startswith("ai.onnx;")
           for op in line.split(";")[2].split(",")}
    assert {"MatMul", "Softmax", "Gather"} <= ops
    assert "required_operators.config" in manifest.files


def test_dynamic_ort_bundle_runs_in_the_compressor(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    source = cached_bundle("xlm-roberta", tmp_path_factory)
    export_mobile(source, tmp_path / "m", type_reduction=True)
    text = paragraphs(1, seed=41)[0]
    mobile = Compressor.load(tmp_path / "m", providers=["cpu"]).score(text)
    onnx = Compressor.load(source, providers=["cpu"]).score(text)
    np.testing.assert_allclose(mobile.logits, onnx.logits, atol=1e-5)
    assert (tmp_path / "m" / "required_operators_and_types.config").is_file()


def test_unknown_dimension_and_cli_errors(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture
) -> None:
    source = cached_bundle("bert", tmp_path_factory)
    with pytest.raises(ToolchainError, match="seq_len"):
        export_mobile(source, tmp_path / "m", fixed_shapes={"seq_len": 8})
    assert not (tmp_path / "m").exists()
    assert main(["export", "mobile", str(source), str(tmp_path / "m"),
                 "--fixed-shape", "batch_size=1", "--fixed-shape", "sequence_length=16"]) == 0
    assert load_bundle(tmp_path / "m").manifest.extra["fixed_shapes"] == {
        "batch_size": 1, "sequence_length": 16}
    assert main(["export", "mobile", str(tmp_path / "nope"), str(tmp_path / "m2")]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar's \r
    assert last.startswith("error: ") and "not a bundle" in last
