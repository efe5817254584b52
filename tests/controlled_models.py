"""Bundles whose logits the tests set by hand, so expectations can be computed on paper.

``lookup_classifier`` is a token classifier whose keep logit is a table lookup by token id
(drop logit 0, so a token's keep probability is ``sigmoid(table[id])``), behind a position
table of ``max_seq_len`` rows: like a real BERT it cannot run a window longer than that.
``unigram_causal_lm`` is a causal LM whose next-token distribution is one fixed unigram
distribution, with a real KV cache, so a token's surprisal is ``-log p(token)`` wherever it
stands. Both are ONNX graphs built with ``onnx.helper`` and packed as real bundles (manifest,
checksums) through ``edge_lingua.bundle.write_manifest``; no torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edge_lingua.bundle import write_manifest
from tests.toolchain_models import _wordpiece_tokenizer

DEFAULT_KEEP_LOGIT = -4.0


def logit(p: float) -> float:
    """The keep logit that gives keep probability ``p`` (drop logit 0)."""
    return math.log(p / (1.0 - p))


def wordpiece_tokenizer():
    """The test suite's BERT-style WordPiece tokenizer (corpus words, then single characters)."""
    return _wordpiece_tokenizer()


def lookup_classifier(
    out: Path,
    keep_probs: Mapping[str, float],
    *,
    max_seq_len: int = 16,
    table_rows: int | None = None,
) -> Path:
    """A token-classifier bundle: ``keep_probs`` maps vocabulary pieces (e.g. ``"the"``,
    ``"##z"``) to their keep probability; every other piece gets ``sigmoid(-4)``.

    ``table_rows`` shorter than the vocabulary makes a broken model: ids past it fail at run time.
    """
    import onnx
    from onnx import TensorProto, helper

    tokenizer = wordpiece_tokenizer()
    vocab = tokenizer.get_vocab()
    rows = len(vocab) if table_rows is None else table_rows
    table = np.zeros((rows, 2), dtype=np.float32)
    table[:, 1] = DEFAULT_KEEP_LOGIT
    for piece, p in keep_probs.items():
        table[vocab[piece], 1] = logit(p)
    positions = np.zeros((max_seq_len, 2), dtype=np.float32)
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["token_logits"], axis=0),
        helper.make_node("Shape", ["input_ids"], ["ids_shape"]),
        helper.make_node("Gather", ["ids_shape", "one"], ["seq_len"], axis=0),
        helper.make_node("Range", ["zero", "seq_len", "one"], ["position"]),
        # a position past max_seq_len has no row: onnxruntime fails, as a real encoder would
        helper.make_node("Gather", ["positions", "position"], ["position_logits"], axis=0),
        helper.make_node("Add", ["token_logits", "position_logits"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "lookup-classifier",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq", 2])],
        initializer=[
            onnx.numpy_helper.from_array(table, "table"),
            onnx.numpy_helper.from_array(positions, "positions"),
            onnx.numpy_helper.from_array(np.asarray(0, dtype=np.int64), "zero"),
            onnx.numpy_helper.from_array(np.asarray(1, dtype=np.int64), "one"),
        ],
    )
    return _save_bundle(
        out, graph, tokenizer, kind="token-classifier", max_seq_len=max_seq_len, keep_label=1,
        special_tokens={"bos": vocab["[CLS]"], "eos": vocab["[SEP]"], "pad": vocab["[PAD]"]},
        model_inputs=["input_ids", "attention_mask"],
        source_model="hand-set lookup table (test fixture)",
    )


def unigram_causal_lm(out: Path, probs: Mapping[str, float], *, max_seq_len: int = 256) -> Path:
    """A causal-LM bundle over a whitespace word vocabulary: the words of ``probs`` (with
    their next-token probabilities; the rest of the mass goes to ``<s>``) and ``<s>`` as BOS."""
    import onnx
    from onnx import TensorProto, helper
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = ["<s>", "<unk>", *probs]
    vocab = {w: i for i, w in enumerate(words)}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    mass = np.full(len(words), 1e-6)
    for word, p in probs.items():
        mass[vocab[word]] = p
    mass[0] = max(1.0 - mass[1:].sum(), 1e-6)
    row = np.log(mass / mass.sum()).astype(np.float32).reshape(1, 1, -1)
    cache = ["past_key_values.0.key", "past_key_values.0.value"]
    nodes = [
        helper.make_node("Shape", ["input_ids"], ["ids_shape"]),
        helper.make_node("Concat", ["ids_shape", "vocab_dim"], ["logits_shape"], axis=0),
        helper.make_node("Expand", ["row", "logits_shape"], ["logits"]),
        helper.make_node("Cast", ["input_ids"], ["ids_float"], to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["ids_float", "kv_shape"], ["new_kv"]),
        helper.make_node("Concat", [cache[0], "new_kv"], ["present.0.key"], axis=2),
        helper.make_node("Concat", [cache[1], "new_kv"], ["present.0.value"], axis=2),
    ]
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, "seq"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, [1, "total"]),
        *(helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 1, "past", 1]) for n in cache),
    ]
    outputs = [
        helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, "seq", len(words)]),
        *(helper.make_tensor_value_info(n.replace("past_key_values", "present"),
                                        TensorProto.FLOAT, [1, 1, "total", 1]) for n in cache),
    ]
    graph = helper.make_graph(
        nodes, "unigram-lm", inputs, outputs,
        initializer=[
            onnx.numpy_helper.from_array(row, "row"),
            onnx.numpy_helper.from_array(np.asarray([len(words)], dtype=np.int64), "vocab_dim"),
            onnx.numpy_helper.from_array(np.asarray([1, 1, -1, 1], dtype=np.int64), "kv_shape"),
        ],
    )
    return _save_bundle(
        out, graph, tokenizer, kind="causal-lm", max_seq_len=max_seq_len,
        special_tokens={"bos": 0}, model_inputs=["input_ids", "attention_mask", *cache],
        source_model="hand-set unigram distribution (test fixture)",
    )


def _save_bundle(out: Path, graph: Any, tokenizer: Any, **manifest: Any) -> Path:
    """Write ``graph`` (opset 17) and ``tokenizer`` as an ONNX bundle with ``manifest``'s fields."""
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    out.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out / "model.onnx"))
    tokenizer.save(str(out / "tokenizer.json"))
    write_manifest(out, model_file="model.onnx", model_format="onnx",
                   tokenizer_file="tokenizer.json", files=["model.onnx", "tokenizer.json"],
                   license="Apache-2.0", **manifest)
    return out


def surprisal(probs: Mapping[str, float], word: str) -> float:
    """Nats of ``word`` under :func:`unigram_causal_lm` built from ``probs``."""
    total = sum(probs.values())
    rest = max(1.0 - total, 1e-6)
    return -math.log(probs[word] / (total + rest + 1e-6))  # 1e-6: the <unk> row
