"""Batching never changes a result: ``compress_many`` equals ``compress`` prompt by prompt on the
shipped INT8 model (dynamic INT8 quantizes activations per batch tensor, so windows of other
prompts in the same call would shift the scores)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_lingua.compressor import Compressor


@pytest.fixture(scope="module")
def shipped() -> Compressor:
    return Compressor.load(threads=2)


def _gsm8k(data: Path, n: int) -> list[str]:
    with (data / "gsm8k" / "test.jsonl").open(encoding="utf-8") as handle:
        rows = [json.loads(next(handle)) for _ in range(n)]
    return [f"{row['question']}\n{row['answer']}" for row in rows]


def test_compress_many_equals_compress_on_the_shipped_int8_model(
    shipped: Compressor, shared_data: Path
) -> None:
    texts = _gsm8k(shared_data, 24)
    long_prompt = "\n\n".join(texts[:8])  # several encoder windows
    prompts: list[str | list[str]] = [long_prompt, *texts[8:], texts[:2]]
    assert len(shipped.score(long_prompt).windows) >= 2
    many = shipped.compress_many(prompts, rate=0.33)
    words = 0
    for prompt, batched in zip(prompts, many, strict=True):
        alone = shipped.compress(prompt, rate=0.33)
        assert batched.kept_mask == alone.kept_mask
        assert batched.compressed_prompt == alone.compressed_prompt
        words += sum(len(w) for w in alone.words)
    assert words > 1500
