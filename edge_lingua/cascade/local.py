"""The on-device model: a GGUF run by llama-cpp-python (imported only when a model loads).

Confidence is the mean log-probability of the generated tokens under greedy decoding. It
is read from the logits llama.cpp hands a logits processor at every step (the greedy token
is the arg-max, so its log-probability is ``max - logsumexp``), which avoids
``logits_all=True`` and its ``n_ctx x n_vocab`` score buffer.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge_lingua.cascade.policy import LocalAnswer
from edge_lingua.errors import InvalidArgumentError, LocalModelError


class _GreedyLogprobs:
    """A llama-cpp logits processor that records the greedy token's log-probability."""

    def __init__(self) -> None:
        self.logprobs: list[float] = []

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        top = float(np.max(scores))
        self.logprobs.append(-float(np.log(np.sum(np.exp(scores - top)))))
        return scores


class LocalModel:
    """A GGUF chat model on the device.

    ``LocalModel("gemma-3-270m-q4_k_m.gguf", n_ctx=2048).generate(messages, max_tokens=32)``.
    Calls are serialised (a llama.cpp context is not thread-safe).
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        chat_format: str | None = None,
        seed: int = 0,
    ) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise InvalidArgumentError(f"local model file {path} does not exist")
        try:
            from llama_cpp import Llama
        except ImportError:
            raise LocalModelError(
                "llama-cpp-python is not installed: pip install 'edge-lingua[cascade]'"
            ) from None
        try:
            # the prompt is evaluated with n_threads_batch threads (llama-cpp-python's default:
            # every core), the answer generated with n_threads: both are the caller's count
            self._llama = Llama(
                model_path=str(path), n_ctx=n_ctx, n_threads=n_threads,
                n_threads_batch=n_threads, chat_format=chat_format,
                seed=seed, verbose=False,  # pragma: no mutate (greedy; verbose=None is False)
            )
        except (ValueError, RuntimeError) as exc:
            raise LocalModelError(f"llama.cpp could not load {path.name}: {exc}") from None
        self.name = path.name
        self._lock = threading.Lock()

    def generate(self, messages: list[dict[str, Any]], max_tokens: int) -> LocalAnswer:
        """Greedy answer to chat ``messages`` and its mean token log-probability."""
        from llama_cpp import LogitsProcessorList

        recorder = _GreedyLogprobs()
        started = time.perf_counter()
        with self._lock:
            # evaluate every prompt from scratch: llama.cpp's log-probs depend on how a prompt
            # is split into batches, so reusing the previous prompt's cached prefix would make
            # the confidence (and the route) depend on what was asked before
            self._llama.reset()
            try:
                out = self._llama.create_chat_completion(
                    messages=messages, max_tokens=max_tokens, temperature=0.0,
                    logits_processor=LogitsProcessorList([recorder]),
                    # greedy: no penalty, whatever llama-cpp-python's default becomes
                    repeat_penalty=1.0,  # pragma: no mutate (1.0 is today's default)
                )
            except (ValueError, RuntimeError) as exc:  # e.g. prompt longer than n_ctx
                raise LocalModelError(f"the local model failed: {exc}") from None
        elapsed = time.perf_counter() - started
        usage = out["usage"]  # llama-cpp-python counts every completion
        text = out["choices"][0]["message"].get("content") or ""
        mean = float(np.mean(recorder.logprobs)) if recorder.logprobs else float("-inf")
        return LocalAnswer(
            text=text,
            mean_logprob=mean,
            completion_tokens=int(usage["completion_tokens"]),
            prompt_tokens=int(usage["prompt_tokens"]),
            elapsed_s=elapsed,
        )
