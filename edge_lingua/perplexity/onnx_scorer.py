"""Causal-LM scoring with an ONNX bundle on onnxruntime (optimum's text-generation-with-past).

The graph takes ``input_ids``, ``attention_mask``, optionally ``position_ids``, and
``past_key_values.{i}.key/value`` of shape ``[batch, kv_heads, past_len, head_dim]``; it
returns ``logits`` and ``present.{i}.key/value``. The first call feeds an empty past.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from edge_lingua.bundle import Bundle
from edge_lingua.errors import InferenceError, ManifestError
from edge_lingua.perplexity.scorer import CausalLMScorer, Encoded
from edge_lingua.providers import SessionConfig, create_session

_PAST = "past_key_values."
_ORT_FLOAT = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
# manifest ``extra`` keys that may give the cache geometry when the graph's dims are symbolic
_HEADS_KEYS = ("num_key_value_heads", "num_heads", "num_attention_heads", "n_head")
_HEAD_DIM_KEYS = ("head_dim",)


class OnnxCausalLMScorer(CausalLMScorer):
    """A :class:`CausalLMScorer` over an ONNX causal-LM bundle."""

    def __init__(self, bundle: Bundle, config: SessionConfig, window: int = 128) -> None:
        super().__init__()
        manifest = bundle.manifest
        self._session, self.provider = create_session(bundle.model_path, config)
        self._tokenizer = Tokenizer.from_file(str(bundle.tokenizer_path))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.bos_id = manifest.special_tokens.get("bos")
        self.max_context = manifest.max_seq_len
        self.window = min(window, self.max_context)
        inputs = {i.name: i for i in self._session.get_inputs()}
        for name in ("input_ids", "attention_mask"):
            if name not in inputs:
                raise ManifestError(f"the causal-LM graph has no {name!r} input")
        self._has_positions = "position_ids" in inputs
        # each cache input's output is named after it, so the order of the names is free
        self._past_names = [n for n in inputs if n.startswith(_PAST)]
        if not self._past_names:
            raise ManifestError("the causal-LM graph has no past_key_values inputs (no KV cache)")
        self._present_names = ["present." + n[len(_PAST):] for n in self._past_names]
        self._empty_past = {
            name: _empty(inputs[name], manifest.extra) for name in self._past_names
        }
        self._past: dict[str, np.ndarray]
        self.reset()

    def encode(self, text: str) -> Encoded:
        enc = self._tokenizer.encode(text, add_special_tokens=False)
        return Encoded(
            ids=np.asarray(enc.ids, dtype=np.int64),
            offsets=np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2),
        )

    def _reset_cache(self) -> None:
        self._past = dict(self._empty_past)

    def _forward(self, ids: Sequence[int], n_past: int, all_rows: bool) -> np.ndarray:
        if n_past < self._past_len():
            self._past = {k: v[:, :, :n_past] for k, v in self._past.items()}
        n = len(ids)
        feeds: dict[str, np.ndarray] = {
            "input_ids": np.asarray([ids], dtype=np.int64),
            "attention_mask": np.ones((1, n_past + n), dtype=np.int64),
            **self._past,
        }
        if self._has_positions:
            feeds["position_ids"] = np.arange(n_past, n_past + n, dtype=np.int64)[None, :]
        try:
            outputs = self._session.run(["logits", *self._present_names], feeds)
        except Exception as exc:
            raise InferenceError(f"onnxruntime failed on the causal LM: {exc}") from None
        self._past = dict(zip(self._past_names, outputs[1:], strict=True))
        return outputs[0][0] if all_rows else outputs[0][0, -1:]

    def _past_len(self) -> int:
        return int(next(iter(self._past.values())).shape[2])


def _empty(arg: ort.NodeArg, extra: dict) -> np.ndarray:
    """A zero-length past for one cache input, shaped [1, heads, 0, head_dim]."""
    shape = list(arg.shape)
    if len(shape) != 4:
        raise ManifestError(f"{arg.name} has rank {len(shape)}; expected [batch, heads, seq, dim]")
    heads, dim = shape[1], shape[3]
    if not isinstance(heads, int):
        heads = next((int(extra[k]) for k in _HEADS_KEYS if k in extra), None)
    if not isinstance(dim, int):
        dim = next((int(extra[k]) for k in _HEAD_DIM_KEYS if k in extra), None)
        if dim is None and "hidden_size" in extra and "num_attention_heads" in extra:
            dim = int(extra["hidden_size"]) // int(extra["num_attention_heads"])
    if heads is None or dim is None:
        raise ManifestError(
            f"cannot tell the KV-cache shape of {arg.name}: the graph's dims are symbolic and "
            "the manifest's extra lacks num_heads (or num_key_value_heads) and head_dim"
        )
    dtype = _ORT_FLOAT.get(arg.type)
    if dtype is None:
        raise ManifestError(f"{arg.name} has unsupported type {arg.type}")
    return np.zeros((1, heads, 0, dim), dtype=dtype)
