"""The multilingual model shipped beside the default (edge_lingua/models/multilingual): the
default's encoder with Gemma 3's vocabulary (training.multilingual,
docs/MODEL_CARD_MULTILINGUAL.md)."""

from __future__ import annotations

import json
import warnings
from importlib import resources
from pathlib import Path

import pytest

from benchmarks.question_aware import answer_retained
from edge_lingua.bundle import load_bundle
from edge_lingua.compressor import Compressor, default_bundle_path
from training.qa_corpus import xquad_articles

MULTILINGUAL = Path(str(resources.files("edge_lingua") / "models" / "multilingual"))
MAX_BUNDLE_BYTES = 45 * 1000 * 1000
RIVER = ("长江是中国最长的河流，全长约6300公里，流经青海、西藏、四川、云南、重庆、湖北、湖南、"
         "江西、安徽、江苏和上海。长江三峡水利枢纽于2006年建成。")


@pytest.fixture(scope="module")
def multilingual() -> Compressor:
    return Compressor.load("multilingual", providers=["cpu"], threads=2)


def test_the_bundle_is_a_question_aware_int8_bundle_that_says_its_licence() -> None:
    bundle = load_bundle(MULTILINGUAL, kind="token-classifier")  # checksums verified
    manifest = bundle.manifest
    assert manifest.quantization == "dynamic-int8" and manifest.keep_label == 1
    assert manifest.input_format == "question-pair" and manifest.max_question_tokens == 64
    assert manifest.special_tokens == {"bos": 101, "eos": 102, "pad": 0}
    assert "Gemma" in manifest.license and "Apache-2.0" in manifest.license
    licence = bundle.file("LICENSE").read_text(encoding="utf-8")
    assert "Model Derivative" in licence and "token embeddings" in licence
    card = bundle.file("README.md").read_text(encoding="utf-8")
    assert card.startswith("---\nlicense: gemma") and "multilingual compressor" in card
    assert sum((bundle.path / name).stat().st_size for name in manifest.files) < MAX_BUNDLE_BYTES
    assert json.loads(bundle.file("fidelity.json").read_text(encoding="utf-8"))["passed"]
    model = json.loads(bundle.file("tokenizer.json").read_text(encoding="utf-8"))["model"]
    assert model["type"] == "BPE" and model["byte_fallback"] and len(model["vocab"]) > 50_000


def test_it_loads_by_name(multilingual: Compressor) -> None:
    assert multilingual.bundle.path == MULTILINGUAL
    assert multilingual.question_aware
    assert Compressor.load(providers=["cpu"]).bundle.path == default_bundle_path()


def test_chinese_is_compressed_in_phrases_around_what_the_question_asks(
        multilingual: Compressor) -> None:
    """The answer to each question survives whole, in the text's own characters and order,
    and no space is put between Chinese phrases."""
    length = multilingual.compress(RIVER, question="长江有多长？", rate=0.33)
    built = multilingual.compress(RIVER, question="三峡水利枢纽何时建成？", rate=0.33)
    assert "6300公里" in length.compressed_prompt
    assert "2006年建成" in built.compressed_prompt
    assert length.compressed_prompt != built.compressed_prompt
    for result in (length, built):
        assert " " not in result.compressed_prompt.replace("6300 ", "")
        position = 0
        for char in result.compressed_prompt.replace(" ", ""):
            position = RIVER.index(char, position) + 1
    assert multilingual.compress(RIVER, rate=1.0).compressed_prompt == RIVER


def test_it_keeps_far_more_chinese_answers_than_the_default(
        multilingual: Compressor, shared_data: Path) -> None:
    """On 40 Chinese XQuAD evaluation questions at rate 0.33 (docs/MODEL_CARD_MULTILINGUAL.md:
    0.747 against 0.287 on all 265)."""
    default = Compressor.load(providers=["cpu"], threads=2)
    questions = [q for p in xquad_articles("zh", "eval") for q in p][:40]

    def kept(compressor: Compressor) -> int:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the default reads little Chinese and says so
            return sum(answer_retained(q.answers, compressor.compress(
                q.paragraph, question=q.question, rate=0.33).compressed_prompt)
                for q in questions)

    ours, theirs = kept(multilingual), kept(default)
    assert ours >= 24 and ours >= theirs + 10, (ours, theirs)
