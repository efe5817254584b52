"""Causal-LM scoring with a GGUF model through llama-cpp-python.

The model's own tokenizer (``Llama.tokenize``) is used; character offsets come from
detokenizing token by token. Logits are read straight from llama.cpp's output buffer for one
batch of ``window`` tokens at a time (``logits_all`` stays off, so llama-cpp-python never
allocates its ``[n_ctx, vocab]`` score matrix).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edge_lingua.errors import BundleError, InferenceError, InvalidArgumentError
from edge_lingua.perplexity.scorer import CausalLMScorer, Encoded

PROVIDER = "llama.cpp"


class LlamaCppScorer(CausalLMScorer):
    """A :class:`CausalLMScorer` over a ``.gguf`` file."""

    def __init__(
        self, model_path: Path, n_ctx: int = 1024, threads: int | None = None, window: int = 64
    ) -> None:
        super().__init__()
        try:
            import llama_cpp
        except ImportError:
            raise BundleError(
                "GGUF models need llama-cpp-python: pip install llama-cpp-python"
            ) from None
        if not isinstance(n_ctx, int) or n_ctx < 64:
            raise InvalidArgumentError(f"n_ctx must be an integer >= 64, got {n_ctx!r}")
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise InvalidArgumentError(f"threads must be a positive integer, got {threads!r}")
        self.window = min(window, n_ctx)
        try:
            self._llm = llama_cpp.Llama(
                model_path=str(model_path),
                n_ctx=n_ctx,
                n_batch=self.window,  # llama.cpp clamps its micro-batch to this
                n_threads=threads,
                n_threads_batch=threads,
                verbose=False,  # pragma: no mutate (None reads as False)
            )
        except (ValueError, RuntimeError) as exc:
            raise BundleError(f"llama.cpp could not load {model_path}: {exc}") from None
        self.provider = PROVIDER
        self.max_context = self._llm.n_ctx()
        self._n_vocab = self._llm.n_vocab()
        bos = self._llm.token_bos()
        self.bos_id = bos if bos >= 0 else None
        self.reset()

    def encode(self, text: str) -> Encoded:
        data = text.encode()
        # no BOS (the scorer adds one before the first window); special tokens read as text
        ids = self._llm.tokenize(data, add_bos=False)  # pragma: no mutate (ctypes: None=False)
        pieces = [self._llm.detokenize([t]) for t in ids]
        offsets = char_offsets(text, data, pieces)
        # (int64 is NumPy's own choice on 64-bit Linux and macOS; said for Windows' NumPy 1.x)
        return Encoded(np.asarray(ids, dtype=np.int64), offsets)  # pragma: no mutate

    def _reset_cache(self) -> None:
        self._llm._ctx.kv_cache_clear()

    def _forward(self, ids: Sequence[int], n_past: int, all_rows: bool) -> np.ndarray:
        ctx, batch = self._llm._ctx, self._llm._batch
        ctx.kv_cache_seq_rm(0, n_past, -1)  # pragma: no mutate (any end < 0: to the end)
        batch.set_batch(batch=list(ids), n_past=n_past, logits_all=all_rows)
        try:
            ctx.decode(batch)
        except RuntimeError as exc:
            raise InferenceError(f"llama.cpp failed to evaluate the text: {exc}") from None
        rows = len(ids) if all_rows else 1  # llama.cpp packs the rows that asked for logits
        return np.ctypeslib.as_array(ctx.get_logits(), shape=(rows, self._n_vocab)).copy()


def char_offsets(text: str, data: bytes, pieces: list[bytes]) -> np.ndarray:
    """Character span of every token, from the byte pieces its detokenizer gives back."""
    offsets = np.zeros((len(pieces), 2), dtype=np.int64)
    if b"".join(pieces) == data:
        # byte position -> character position (continuation bytes map to their character)
        char_at = np.cumsum([(b & 0xC0) != 0x80 for b in data] + [True]) - 1
        ends = np.cumsum([len(p) for p in pieces])
        starts = ends - np.asarray([len(p) for p in pieces])
        offsets[:, 0], offsets[:, 1] = char_at[starts], char_at[ends]
        return offsets
    # the tokenizer normalised the text: find each piece's visible characters in order
    pos = 0
    for i, piece in enumerate(pieces):
        visible = piece.decode("utf-8", errors="ignore").strip()
        found = text.find(visible, pos) if visible else -1
        start = found if found >= 0 else pos
        end = start + len(visible) if found >= 0 else pos
        offsets[i] = (start, end)
        pos = end
    return offsets
