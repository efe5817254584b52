"""training.distill: the shipped INT8 bundle rebuilt as a PyTorch teacher, and student layers."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from edge_lingua.compressor import default_bundle_path

torch = pytest.importorskip("torch")
distill = pytest.importorskip("training.distill")

pytestmark = pytest.mark.slow


def _minilm_config(tmp_path: Path) -> Path:
    """all-MiniLM-L6-v2's architecture (the shipped model's backbone) as a config.json."""
    config = {"architectures": ["BertModel"], "model_type": "bert", "hidden_size": 384,
              "num_hidden_layers": 6, "num_attention_heads": 12, "intermediate_size": 1536,
              "hidden_act": "gelu", "max_position_embeddings": 512, "type_vocab_size": 2,
              "vocab_size": 30522, "layer_norm_eps": 1e-12, "pad_token_id": 0,
              "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def unfused_default(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped (fused) default's fp32 graph, rebuilt as training/README.md step 3b does."""
    from edge_lingua_export.classifier import export_classifier
    from tests.toolchain_models import build_minilm_classifier, minilm_dir
    from training.rebuild_fp32 import rebuild

    root = tmp_path_factory.mktemp("unfused")
    export_classifier(build_minilm_classifier(root / "hf", minilm_dir()), root / "template")
    rebuild(default_bundle_path(), root / "template", root / "fp32")
    return root / "fp32"


@pytest.fixture(scope="module")
def teacher(unfused_default: Path, tmp_path_factory: pytest.TempPathFactory):
    return distill.build_teacher(unfused_default,
                                 _minilm_config(tmp_path_factory.mktemp("minilm")))


def test_a_fused_bundle_is_refused_with_the_way_out() -> None:
    with pytest.raises(ValueError, match="rebuild_fp32"):
        distill.teacher_weights(default_bundle_path() / "model.onnx")


def _window(shared_data: Path) -> np.ndarray:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(default_bundle_path() / "tokenizer.json"))
    lines = (shared_data / "gsm8k" / "test.jsonl").read_text(encoding="utf-8").splitlines()
    text = "\n".join(json.loads(line)["answer"] for line in lines[:6])
    ids = tokenizer.encode(text, add_special_tokens=False).ids[:300]
    return np.asarray([[distill.CLS, *ids, distill.SEP]], dtype=np.int64)


def test_rebuilt_teacher_scores_like_the_shipped_int8_model(teacher, shared_data: Path) -> None:
    import onnxruntime as ort

    ids = _window(shared_data)
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids),
            "token_type_ids": np.zeros_like(ids)}
    session = ort.InferenceSession(str(default_bundle_path() / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    onnx_logits = session.run(["logits"], feed)[0][0]
    with torch.no_grad():
        torch_logits = teacher(**{k: torch.from_numpy(v) for k, v in feed.items()}).logits[0]
    onnx_keep = np.exp(onnx_logits[:, 1]) / np.exp(onnx_logits).sum(-1)
    torch_keep = torch.softmax(torch_logits, -1)[:, 1].numpy()
    # the shipped INT8 graph also quantizes activations at run time: close, not equal
    assert np.abs(onnx_keep - torch_keep).mean() < 0.03
    assert ((onnx_keep > 0.5) == (torch_keep > 0.5)).mean() > 0.95


def test_every_weight_of_the_bundle_is_rebuilt(unfused_default: Path) -> None:
    weights = distill.teacher_weights(unfused_default / "model.onnx")
    for layer in range(6):
        for name in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense", "intermediate.dense", "output.dense"):
            key = f"bert.encoder.layer.{layer}.{name}.weight"
            assert weights[key].dtype == np.float32
            assert weights[key].shape == ((1536, 384) if name == "intermediate.dense" else
                                          (384, 1536) if name == "output.dense" else (384, 384))
    assert weights["classifier.weight"].shape == (2, 384)
    assert weights["bert.embeddings.word_embeddings.weight"].shape == (30522, 384)
    # the FFN outputs the quantizer kept fp32 are read as they are, not dequantized twice
    assert len(np.unique(weights["bert.encoder.layer.0.output.dense.weight"][0])) > 255


def test_student_keeps_the_chosen_layers_and_leaves_the_teacher_whole(teacher) -> None:
    student = distill.student_from(teacher, [0, 2, 5])
    assert student.config.num_hidden_layers == 3
    assert len(teacher.bert.encoder.layer) == 6
    for index, source in enumerate([0, 2, 5]):
        mine = student.bert.encoder.layer[index].state_dict()
        theirs = teacher.bert.encoder.layer[source].state_dict()
        assert all(torch.equal(mine[k], theirs[k]) for k in theirs)
    student.bert.encoder.layer[0].output.dense.weight.data.zero_()
    assert teacher.bert.encoder.layer[0].output.dense.weight.abs().sum() > 0


def test_packed_windows_cover_the_token_stream_in_order() -> None:
    texts = [list(range(1000 + 100 * i, 1000 + 100 * i + n)) for i, n in enumerate([70, 300, 5,
                                                                                    900])]
    windows = distill.pack_windows(texts, limit=100, rng=random.Random(0))
    assert all(w[0] == distill.CLS and w[-1] == distill.SEP for w in windows)
    assert all(len(w) <= distill.MAX_LEN for w in windows)
    assert [t for w in windows for t in w[1:-1]] == [t for tokens in texts for t in tokens]
    assert len(distill.pack_windows(texts, limit=2, rng=random.Random(0))) == 2
