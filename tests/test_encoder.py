"""Window scoring: batches never mix prompts, so compress_many equals compress bit for bit."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from edge_lingua.compressor import Compressor, default_bundle_path
from training.corpus import gsm8k


@pytest.fixture(scope="module")
def batched() -> Compressor:
    """The shipped INT8 model with 4 windows per inference call (dynamic INT8 quantizes each
    call's activations with one scale, so a batch shared between prompts would couple them)."""
    if not (default_bundle_path() / "manifest.json").is_file():
        pytest.skip("the shipped model is not installed")
    return Compressor.load(threads=1, batch_size=4)


def _prompts(shared_data) -> list[str]:
    problems = [e.cot for e in gsm8k("test")[:36]]
    # ~800, ~1,300 and ~500 model tokens: two, three and one windows of 512
    return ["\n\n".join(problems[:12]), "\n\n".join(problems[12:32]), "\n\n".join(problems[32:])]


def test_compress_many_equals_compress_bit_for_bit_with_batched_windows(
    batched: Compressor, shared_data
) -> None:
    prompts = _prompts(shared_data)
    windows = [len(batched.score(p).windows) for p in prompts]
    assert windows[1] >= 3 and sum(windows) > 4  # batches hold several windows
    together = batched.compress_many(prompts, rate=0.33)
    alone = [batched.compress(p, rate=0.33) for p in prompts]
    reversed_order = batched.compress_many(prompts[::-1], rate=0.33)[::-1]
    for a, b, c in zip(together, alone, reversed_order, strict=True):
        assert replace(a, elapsed_s=0) == replace(b, elapsed_s=0) == replace(c, elapsed_s=0)


def test_batched_scores_are_one_prompts_windows_together(batched: Compressor, shared_data) -> None:
    """The batch of a prompt's windows is exactly what the encoder saw: scoring each window
    alone (batch of one) differs, which is why batches never cross prompts."""
    prompt = _prompts(shared_data)[1]
    scores = batched.score(prompt)
    single = Compressor.load(threads=1, batch_size=1).score(prompt)
    assert scores.windows == single.windows
    difference = np.abs(scores.token_probs - single.token_probs)
    assert difference.max() > 0  # activation scales are shared across a batch
    assert difference.mean() < 0.05  # but the same model on the same windows
    assert scores.logits is not None and scores.logits.shape == (scores.token_ids.size, 2)


def test_window_len_of_the_manifest_sets_the_windows(tiny_bert_bundle, tmp_path) -> None:
    import json
    import shutil

    text = " ".join(["The ferry leaves at 7:40 and reaches the island 35 minutes later."] * 30)
    full = Compressor.load(tiny_bert_bundle).score(text)
    short = tmp_path / "short"
    shutil.copytree(tiny_bert_bundle, short)
    data = json.loads((short / "manifest.json").read_text())
    data["extra"]["window_len"] = 64
    (short / "manifest.json").write_text(json.dumps(data))
    scores = Compressor.load(short).score(text)
    assert max(hi - lo for lo, hi in full.windows) > 62
    assert max(hi - lo for lo, hi in scores.windows) <= 62 and len(scores.windows) > 1
    assert scores.words == full.words


@pytest.mark.parametrize(("spin_wait", "entry"), [(True, "1"), (False, "0")])
def test_spin_wait_sets_the_session_and_keeps_the_output(
    tiny_bert_bundle, spin_wait: bool, entry: str
) -> None:
    from edge_lingua.providers import SessionConfig

    options = SessionConfig(threads=2, spin_wait=spin_wait).session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == entry
    text = "The ferry leaves at 7:40 and reaches the island 35 minutes later. " * 20
    result = Compressor.load(tiny_bert_bundle, threads=2, spin_wait=spin_wait).score(text)
    reference = Compressor.load(tiny_bert_bundle, threads=2).score(text)
    assert np.array_equal(result.token_probs, reference.token_probs)
