"""Under mutation testing, onnxruntime's results are remembered across sessions
(tests/onnxruntime_memo.py): a remembered result is what the model computes, and anything that
could change it (the model's bytes, the options, the inputs) is computed afresh."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from tests.controlled_models import lookup_classifier, wordpiece_tokenizer
from tests.onnxruntime_memo import remember_runs


@pytest.fixture
def remembered(tmp_path: Path) -> Iterator[Path]:
    cache = tmp_path / "runs"
    undo = remember_runs(cache)
    try:
        yield cache
    finally:
        undo()


def _feed(ids: list[int]) -> dict[str, np.ndarray]:
    array = np.asarray([ids], dtype=np.int64)
    return {"input_ids": array, "attention_mask": np.ones_like(array)}


def test_a_result_is_computed_once_and_read_back_equal(remembered: Path, tmp_path: Path) -> None:
    model = lookup_classifier(tmp_path / "a", {"the": 0.9}) / "model.onnx"
    (computed,) = ort.InferenceSession(str(model)).run(["logits"], _feed([5, 6, 7]))
    assert len(list(remembered.glob("*.npz"))) == 1
    (read,) = ort.InferenceSession(str(model)).run(["logits"], _feed([5, 6, 7]))
    assert read.dtype == computed.dtype and np.array_equal(read, computed)
    assert len(list(remembered.glob("*.npz"))) == 1


def test_other_inputs_options_or_model_bytes_run_the_model(remembered: Path,
                                                           tmp_path: Path) -> None:
    first = lookup_classifier(tmp_path / "a", {"the": 0.9}) / "model.onnx"
    other = lookup_classifier(tmp_path / "b", {"the": 0.1}) / "model.onnx"
    ort.InferenceSession(str(first)).run(["logits"], _feed([5, 6, 7]))
    ort.InferenceSession(str(first)).run(["logits"], _feed([5, 6, 8]))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    ort.InferenceSession(str(first), options).run(["logits"], _feed([5, 6, 7]))
    the = wordpiece_tokenizer().get_vocab()["the"]
    (a,) = ort.InferenceSession(str(first)).run(["logits"], _feed([the]))
    (b,) = ort.InferenceSession(str(other)).run(["logits"], _feed([the]))
    assert len(list(remembered.glob("*.npz"))) == 5
    assert a[0, 0, 1] > 0 > b[0, 0, 1]  # each model's own answer


def test_a_failing_run_is_not_remembered(remembered: Path, tmp_path: Path) -> None:
    broken = lookup_classifier(tmp_path / "a", {}, table_rows=40) / "model.onnx"
    session = ort.InferenceSession(str(broken))
    for _ in range(2):
        with pytest.raises(Exception, match="indices"):
            session.run(["logits"], _feed([500]))
    assert list(remembered.glob("*")) == []


def test_undo_restores_onnxruntime(tmp_path: Path) -> None:
    undo = remember_runs(tmp_path / "runs")
    undo()
    model = lookup_classifier(tmp_path / "a", {}) / "model.onnx"
    ort.InferenceSession(str(model)).run(["logits"], _feed([5]))
    assert list((tmp_path / "runs").glob("*")) == []
