"""The token classifier over encoder windows: feeds, batches and keep probabilities.

Windows are scored as they come and reduced at once to float32 keep probabilities, so no
prompt's logits are ever held whole (unless the caller asks for them, as ``Compressor.score``
does). A batch only ever holds windows of one prompt: with dynamic INT8 quantization the
activation scales are computed over the whole batch tensor, so windows of different prompts
in one batch would make a prompt's result depend on its neighbours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from edge_lingua.bundle import Manifest
from edge_lingua.errors import InferenceError, ManifestError
from edge_lingua.question import Question, encoder_rows

LOGITS = "logits"
FEEDS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True)
class WindowScores:
    """Keep probabilities of one context's tokens, and its logits when asked for."""

    token_probs: np.ndarray  # [n_tokens] float32
    logits: np.ndarray | None  # [n_tokens, n_labels] float32, or None


class WindowEncoder:
    """Runs a bundle's token classifier on windows of token ids (special tokens added here)."""

    def __init__(self, session: ort.InferenceSession, manifest: Manifest, batch_size: int) -> None:
        special = manifest.special_tokens
        self._bos, self._eos, self._pad = special["bos"], special["eos"], special.get("pad", 0)
        self._keep_label = manifest.keep_label
        self._session = session
        self.batch_size = batch_size
        self.max_tokens = manifest.window_len - 2
        self._inputs = {i.name: i.type for i in session.get_inputs()}
        if "input_ids" not in self._inputs:
            raise ManifestError("the model has no 'input_ids' input", field="model_inputs")
        unfed = sorted(set(self._inputs) - set(FEEDS))
        if unfed:
            raise ManifestError(f"the model needs inputs a token classifier is not given: "
                                f"{', '.join(unfed)}", field="model_inputs")
        unknown = [name for name in manifest.model_inputs if name not in self._inputs]
        if unknown:
            raise ManifestError(f"model_inputs lists {', '.join(unknown)}, which the model does "
                                "not take", field="model_inputs")
        self._int32 = {name for name, kind in self._inputs.items() if kind == "tensor(int32)"}
        outputs = {o.name: o.shape for o in session.get_outputs()}
        if LOGITS not in outputs:
            raise ManifestError(f"the model has no {LOGITS!r} output", field="model_file")
        labels = (outputs[LOGITS] or [None])[-1]
        if not isinstance(labels, int):  # a symbolic axis: ask the model itself
            labels = self.logits([np.zeros(1, np.int64)])[0].shape[1]
        if labels != manifest.num_labels:
            raise ManifestError(
                f"the model gives {labels} logits per token, but the manifest describes "
                f"{manifest.num_labels} labels (keep_label {manifest.keep_label})",
                field="extra.num_labels",
            )

    def logits(
        self, windows: Sequence[np.ndarray], question: Question | None = None
    ) -> list[np.ndarray]:
        """One onnxruntime call over a batch of windows (each read beside ``question``, if
        given); logits of the window tokens only."""
        rows = encoder_rows(windows, [question] * len(windows), self._bos, self._eos, self._pad)
        width = rows.input_ids.shape[1]
        feed = {"input_ids": rows.input_ids, "attention_mask": rows.attention_mask,
                "token_type_ids": rows.token_type_ids}
        feed = {
            name: value.astype(np.int32) if name in self._int32 else value
            for name, value in feed.items()
            if name in self._inputs
        }
        try:
            (logits,) = self._session.run([LOGITS], feed)
        except Exception as exc:
            raise InferenceError(
                f"onnxruntime failed on a window of {width} tokens: {exc}"
            ) from None
        return [logits[row, start : start + w.size].astype(np.float32)
                for row, (start, w) in enumerate(zip(rows.starts, windows, strict=True))]

    def keep_probs(self, logits: np.ndarray) -> np.ndarray:
        """Softmax keep probability per token.

        In float64, rounded once to float32: numpy's float32 exp is not correctly rounded and
        differs between SIMD levels, so float32 probabilities would not be reproducible on
        other machines or in the Java/Android port.
        """
        wide = logits.astype(np.float64)
        exp = np.exp(wide - wide.max(axis=1, keepdims=True))
        return (exp[:, self._keep_label] / exp.sum(axis=1)).astype(np.float32)

    def score(
        self,
        token_ids: np.ndarray,
        windows: Sequence[tuple[int, int]],
        keep_logits: bool = False,
        question: Question | None = None,
    ) -> WindowScores:
        """Keep probabilities of every token of one context, given its windows.

        ``windows`` should be all the windows of one prompt's context; they are batched
        ``batch_size`` at a time in order.
        """
        probs = np.zeros(token_ids.size, np.float32)
        logits: np.ndarray | None = None
        for first in range(0, len(windows), self.batch_size):
            batch = windows[first : first + self.batch_size]
            out = self.logits([token_ids[lo:hi] for lo, hi in batch], question)
            for (lo, hi), window_logits in zip(batch, out, strict=True):
                probs[lo:hi] = self.keep_probs(window_logits)
                if keep_logits:
                    if logits is None:
                        logits = np.empty((token_ids.size, window_logits.shape[1]), np.float32)
                    logits[lo:hi] = window_logits
        if keep_logits and logits is None:
            logits = np.zeros((0, 0), np.float32)
        return WindowScores(token_probs=probs, logits=logits)
