"""`edge-lingua quantize`: every mode on small random-weight models, the fidelity gate, errors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

pytest.importorskip("torch")
pytest.importorskip("optimum.exporters.onnx")

from edge_lingua.bundle import load_bundle
from edge_lingua.cli import main
from edge_lingua.compressor import Compressor
from edge_lingua.errors import CalibrationError, FidelityError, OutputExistsError, ToolchainError
from edge_lingua_quantize.calibration import read_texts
from edge_lingua_quantize.quantizer import quantize_bundle
from tests.toolchain_models import cached_bundle, paragraphs

if TYPE_CHECKING:
    from onnx import GraphProto

CALIBRATION = paragraphs(24, seed=51)
HELD_OUT = paragraphs(6, seed=52)
INT8_MODES = ("dynamic-int8", "static-qdq-int8", "qdq-u16")


def _check_bundle(out: Path, mode: str) -> dict:
    bundle = load_bundle(out, kind="token-classifier")
    assert bundle.manifest.quantization == mode
    # the int4 block size is recorded for int4 alone
    block_size = bundle.manifest.extra["quantization"]["block_size"]
    assert block_size == (32 if mode == "int4-weight" else None)
    assert "fidelity.json" in bundle.manifest.files
    # the bundle's files and nothing else: no working folder, no external-data file of a
    # model that fits in one
    assert {p.name for p in out.iterdir()} == {*bundle.manifest.files, "manifest.json"}
    assert "model.onnx.data" not in bundle.manifest.files
    report = json.loads((out / "fidelity.json").read_text())
    assert report["mode"] == mode and set(report["sets"]) == {"calibration", "held_out"}
    result = Compressor.load(out, providers=["cpu"]).compress(HELD_OUT[0], rate=0.5)
    assert 0 < sum(result.kept_mask[0]) < len(result.kept_mask[0])
    return report


def test_fuse_makes_fused_attention_and_keeps_agreement(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """--fuse: the encoder runs as onnxruntime's fused transformer operators, still gated."""
    import onnx

    source = cached_bundle("bert", tmp_path_factory)
    out = tmp_path / "fused"
    result = quantize_bundle(source, out, "dynamic-int8", calibration=CALIBRATION,
                             held_out=HELD_OUT, fuse=True,
                             keep_fp32=[r"layer\.0/output/dense/MatMul"])
    ops = {n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node}
    assert {"QAttention", "SkipLayerNormalization"} <= ops
    assert not ops & {"Softmax", "LayerNormalization", "Transpose"}
    assert "MatMul" in ops  # the node kept in fp32 survives the fusion under its own name
    assert result.report.passed and result.report.min_agreement >= 0.98
    settings = load_bundle(out).manifest.extra["quantization"]
    assert settings["fused"]["Attention"] == 2 and len(settings["fp32_nodes"]) == 1
    _check_bundle(out, "dynamic-int8")
    with pytest.raises(ToolchainError, match="dynamic-int8"):
        quantize_bundle(source, tmp_path / "static", "static-qdq-int8", calibration=CALIBRATION,
                        fuse=True)


def test_fuse_refuses_a_model_without_attention(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Asked to fuse and finding nothing to fuse is an error, not a silent plain quantization."""
    from tests.controlled_models import lookup_classifier

    source = lookup_classifier(tmp_path / "lookup", {})
    with pytest.raises(ToolchainError, match="no attention"):
        quantize_bundle(source, tmp_path / "out", "dynamic-int8", calibration=CALIBRATION,
                        fuse=True)


@pytest.mark.parametrize("mode", INT8_MODES)
def test_int8_modes_keep_agreement(
    mode: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """8/16-bit modes pass the 98% keep/drop agreement gate without forcing."""
    out = tmp_path / mode
    result = quantize_bundle(cached_bundle("bert", tmp_path_factory), out, mode,
                             calibration=CALIBRATION, held_out=HELD_OUT)
    report = _check_bundle(out, mode)
    assert report["passed"] and not report["forced"]
    assert result.report.min_agreement >= 0.98
    for fidelity in report["sets"].values():
        assert [r["rate"] for r in fidelity["rates"]] == [0.5, 0.33]
        assert all(r["kept_word_f1"] > 0.95 for r in fidelity["rates"])
        assert 0 < fidelity["max_logit_error"] < 0.5
    import onnxruntime

    settings = load_bundle(out).manifest.extra["quantization"]
    assert settings == {
        "per_channel": False, "keep_fp32": [], "fused": {}, "fp32_nodes": [],
        "calibrate_method": None if mode == "dynamic-int8" else "minmax", "block_size": None,
        "calibration_texts": len(CALIBRATION),
        "calibration_windows": len(CALIBRATION) if mode != "dynamic-int8" else 0,
        "held_out_texts": len(HELD_OUT), "held_out_from_calibration": False,
        "onnxruntime": onnxruntime.__version__}
    assert report["settings"] == settings
    graph = _graph(out)
    assert not {n.op_type for n in graph.node} & {"Attention", "QAttention"}  # only when asked
    assert _weight_scale_sizes(graph) == {1}  # one scale per weight tensor without per_channel
    if mode != "dynamic-int8":  # the calibrated modes quantize activations to their width
        assert _activation_types(graph) == {
            "static-qdq-int8": {"uint8"}, "qdq-u16": {"uint16"}}[mode]


def _graph(bundle: Path) -> GraphProto:
    import onnx

    return onnx.load(str(bundle / "model.onnx")).graph


def _weight_scale_sizes(graph: GraphProto) -> set[int]:
    """The sizes of the scales of a quantized model's matrix weights (onnxruntime names them
    ``W_quantized`` and ``W_scale``; embeddings, which a Gather reads, excepted): 1 per
    tensor, or one per output channel."""
    from onnx import TensorProto, numpy_helper

    initializers = {i.name: i for i in graph.initializer}
    gathered = {n.input[0] for n in graph.node if n.op_type == "Gather"}
    return {int(numpy_helper.to_array(initializers[name.removesuffix("_quantized") + "_scale"]
                                      ).size)
            for name, i in initializers.items()
            if name.endswith("_quantized") and len(i.dims) == 2 and name not in gathered
            and i.data_type in (TensorProto.INT8, TensorProto.UINT8)}


def _activation_types(graph: GraphProto) -> set[str]:
    """The integer types a QDQ model quantizes its activations to (QuantizeLinear zero points)."""
    from onnx import numpy_helper

    zero_points = {i.name: numpy_helper.to_array(i).dtype.name for i in graph.initializer}
    return {zero_points[n.input[2]] for n in graph.node if n.op_type == "QuantizeLinear"}


def test_keep_fp32_leaves_matching_nodes_unquantized(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Mixed precision: nodes matching --keep-fp32 stay float MatMuls, the rest go INT8."""
    import onnx

    source = cached_bundle("bert", tmp_path_factory)
    out = tmp_path / "mixed"
    pattern = r"layer\.0/output/dense/MatMul"
    quantize_bundle(source, out, "dynamic-int8", calibration=CALIBRATION, held_out=HELD_OUT,
                    keep_fp32=[pattern], threshold=0.0)
    graph = onnx.load(str(out / "model.onnx")).graph
    kept = [n for n in graph.node if n.name == "/bert/encoder/layer.0/output/dense/MatMul"]
    assert [n.op_type for n in kept] == ["MatMul"]
    assert any(n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for n in graph.node)
    settings = load_bundle(out).manifest.extra["quantization"]
    assert settings["keep_fp32"] == [pattern] and len(settings["fp32_nodes"]) == 1
    with pytest.raises(ToolchainError, match="no node"):
        quantize_bundle(source, tmp_path / "none", "dynamic-int8", calibration=CALIBRATION,
                        keep_fp32=["no-such-node"])
    with pytest.raises(ToolchainError, match="regular expression"):
        quantize_bundle(source, tmp_path / "bad", "dynamic-int8", calibration=CALIBRATION,
                        keep_fp32=["(unclosed"])


def test_percentile_calibration(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, capfd: pytest.CaptureFixture[str]
) -> None:
    """Percentile calibration gets windows of one shape (padded, mask 0), and a progress bar
    counts them."""
    method = "percentile"
    out = tmp_path / method
    quantize_bundle(cached_bundle("bert", tmp_path_factory), out, "static-qdq-int8",
                    calibration=CALIBRATION[:16], held_out=HELD_OUT, calibrate_method=method,
                    threshold=0.0)
    settings = load_bundle(out).manifest.extra["quantization"]
    assert settings["calibrate_method"] == method and settings["calibration_windows"] == 16
    progress = capfd.readouterr().err
    assert re.search(r"calibrating:\s+\d+%\|[^|]*\|\s*\d+/16 \[[^\]]*window/s\]", progress)
    result = Compressor.load(out).compress(HELD_OUT[0], rate=0.5)
    assert 0 < sum(result.kept_mask[0]) < len(result.kept_mask[0])


@pytest.mark.parametrize("arch", ["distilbert", "xlm-roberta"])
def test_dynamic_int8_other_architectures(
    arch: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    out = tmp_path / "q"
    result = quantize_bundle(cached_bundle(arch, tmp_path_factory), out, "dynamic-int8",
                             calibration=CALIBRATION, held_out=HELD_OUT, per_channel=True)
    assert result.report.passed
    assert load_bundle(out).manifest.extra["quantization"]["per_channel"] is True
    # a scale per output channel of every weight
    assert min(_weight_scale_sizes(_graph(out))) > 1
    _check_bundle(out, "dynamic-int8")


def test_int4_weight_and_the_threshold(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A bundle under the threshold is refused unless forced; forced, the report says so."""
    source = cached_bundle("bert", tmp_path_factory)
    with pytest.raises(FidelityError, match="under the threshold"):
        quantize_bundle(source, tmp_path / "refused", "int4-weight", calibration=CALIBRATION,
                        held_out=HELD_OUT, threshold=1.0)
    assert not (tmp_path / "refused").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no staging folder left behind
    result = quantize_bundle(source, tmp_path / "forced", "int4-weight", calibration=CALIBRATION,
                             held_out=HELD_OUT, threshold=1.0, force=True, block_size=32)
    report = _check_bundle(tmp_path / "forced", "int4-weight")
    assert report["forced"] and report["passed"] == result.report.passed
    import onnx

    graph = onnx.load(str(tmp_path / "forced" / "model.onnx"))
    assert any(node.op_type == "MatMulNBits" for node in graph.graph.node)


def test_held_out_defaults_to_every_fifth_calibration_text(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    result = quantize_bundle(cached_bundle("bert", tmp_path_factory), tmp_path / "q",
                             "dynamic-int8", calibration=CALIBRATION)
    assert result.report.sets["held_out"].texts == len(CALIBRATION) // 5
    assert result.report.sets["calibration"].texts == len(CALIBRATION) - len(CALIBRATION) // 5


@pytest.mark.parametrize(("count", "held"), [
    (1, [0]), (2, [1]), (4, [3]), (5, [4]), (6, [4]), (11, [4, 9])])
def test_without_held_out_text_every_fifth_or_the_last_is_held_out(
    count: int, held: list[int]
) -> None:
    """One text calibrates and measures; under five the last is held out; from five on, every
    fifth."""
    from edge_lingua_quantize.quantizer import _split

    texts = [f"text {i}" for i in range(count)]
    calibration, held_out = _split(texts, None)
    assert held_out == [texts[i] for i in held]
    assert calibration == (texts if count == 1 else [t for t in texts if t not in held_out])
    assert _split(texts, ["given", " "]) == (texts, ["given"])
    with pytest.raises(CalibrationError, match=r"^held-out text is empty"):
        _split(texts, ["", " "])


def test_calibration_text_errors(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    source = cached_bundle("bert", tmp_path_factory)
    with pytest.raises(CalibrationError):
        quantize_bundle(source, tmp_path / "q", "static-qdq-int8", calibration=["", "  \n"])
    with pytest.raises(CalibrationError):
        quantize_bundle(source, tmp_path / "q", "dynamic-int8", calibration=CALIBRATION,
                        held_out=[])
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n  \n")
    with pytest.raises(CalibrationError, match="no text"):
        read_texts(empty)
    with pytest.raises(CalibrationError, match="does not exist"):
        read_texts(tmp_path / "missing.txt")
    assert not (tmp_path / "q").exists()


def test_read_texts_formats(tmp_path: Path) -> None:
    plain = tmp_path / "cal.txt"
    plain.write_text("first text\nstill first\n\nsecond text\n")
    assert read_texts(plain) == ["first text still first", "second text"]
    lines = tmp_path / "cal.jsonl"
    lines.write_text('"a string"\n{"text": "a text"}\n{"question": "q?", "answer": "a."}\n')
    assert read_texts(lines) == ["a string", "a text", "q? a."]
    windows = tmp_path / "crlf.txt"
    windows.write_bytes("café au lait\r\nstill first\r\n\r\nsecond\r\n".encode())
    assert read_texts(windows) == ["café au lait still first", "second"]


@pytest.mark.parametrize(("name", "content", "message"), [
    ("bad.jsonl", b'"fine"\n\n{"text": \n', r"bad\.jsonl:3 is not valid JSON"),
    ("list.jsonl", b'"fine"\n[1, 2]\n', r"list\.jsonl:2 must be a string or an object"),
    ("latin1.txt", "caf\u00e9".encode("latin-1"), r"latin1\.txt is not UTF-8 text"),
])
def test_read_texts_names_the_file_and_line_it_cannot_read(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(CalibrationError, match=message):
        read_texts(tmp_path / name)


def test_refuses_non_fp32_or_existing_output(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    source = cached_bundle("bert", tmp_path_factory)
    quantize_bundle(source, tmp_path / "q", "dynamic-int8", calibration=CALIBRATION)
    with pytest.raises(OutputExistsError):
        quantize_bundle(source, tmp_path / "q", "dynamic-int8", calibration=CALIBRATION)
    with pytest.raises(ToolchainError, match="fp32"):
        quantize_bundle(tmp_path / "q", tmp_path / "qq", "dynamic-int8", calibration=CALIBRATION)
    with pytest.raises(ToolchainError, match="unknown mode"):
        quantize_bundle(source, tmp_path / "qq", "int3", calibration=CALIBRATION)


def test_cli_quantize(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture
) -> None:
    source = cached_bundle("bert", tmp_path_factory)
    cal = tmp_path / "cal.txt"
    cal.write_text("\n\n".join(CALIBRATION))
    held = tmp_path / "held.jsonl"
    held.write_text("\n".join(json.dumps({"text": t}) for t in HELD_OUT))
    out = tmp_path / "q"
    argv = ["quantize", str(source), str(out), "--mode", "static-qdq-int8", "--calibration",
            str(cal), "--held-out", str(held), "--per-channel", "--rates", "0.4"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"held_out ({len(HELD_OUT)} texts" in printed
    assert "rate 0.4" in printed and "PASS" in printed
    assert load_bundle(out).manifest.quantization == "static-qdq-int8"
    assert max(_weight_scale_sizes(_graph(out))) > 1  # --per-channel reached the quantizer
    assert main(argv) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: ")
    (tmp_path / "empty.txt").write_text("")
    assert main(["quantize", str(source), str(tmp_path / "q2"), "--mode", "dynamic-int8",
                 "--calibration", str(tmp_path / "empty.txt")]) == 2
    assert "calibration" in capsys.readouterr().err


def test_rebuilt_fp32_graph_requantizes_to_the_same_int8_weights(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """training.rebuild_fp32 (how the default was re-quantized without its fp32 checkpoint):
    dequantized weights in the fp32 graph give back every int8 tensor when quantized again."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from training.rebuild_fp32 import rebuild

    source = cached_bundle("bert", tmp_path_factory)
    quantize_bundle(source, tmp_path / "int8", "dynamic-int8", calibration=CALIBRATION,
                    held_out=HELD_OUT, per_channel=True, threshold=0.0)
    rebuild(tmp_path / "int8", source, tmp_path / "fp32")
    rebuilt = load_bundle(tmp_path / "fp32", kind="token-classifier")
    assert rebuilt.manifest.quantization == "none"
    quantize_bundle(tmp_path / "fp32", tmp_path / "again", "dynamic-int8",
                    calibration=CALIBRATION, held_out=HELD_OUT, per_channel=True, threshold=0.0)

    def weights(bundle: Path) -> dict[str, np.ndarray]:
        graph = onnx.load(str(bundle / "model.onnx")).graph
        return {i.name: numpy_helper.to_array(i) for i in graph.initializer}

    first, second = weights(tmp_path / "int8"), weights(tmp_path / "again")
    assert first.keys() == second.keys()
    assert any(name.endswith("_quantized") for name in first)
    for name, value in first.items():
        np.testing.assert_array_equal(second[name], value, err_msg=name)


@pytest.mark.parametrize("arch", ["bert", "xlm-roberta"])  # pad ids 0 and 1
def test_calibration_feeds_are_the_runtimes_windows(
    tmp_path_factory: pytest.TempPathFactory, arch: str
) -> None:
    import numpy as np

    from edge_lingua.compressor import load_tokenizer
    from edge_lingua_quantize.calibration import model_feeds

    bundle = load_bundle(cached_bundle(arch, tmp_path_factory))
    manifest = bundle.manifest
    bos, eos, pad = (manifest.special_tokens[k] for k in ("bos", "eos", "pad"))
    width = manifest.max_seq_len - 2
    text = " ".join(paragraphs(3, seed=7))
    ids = load_tokenizer(bundle.tokenizer_path).encode(text, add_special_tokens=False).ids
    assert len(ids) > 2 * width
    feeds = model_feeds(bundle, [text, ""])
    assert len(feeds) == -(-len(ids) // width) + 1  # the empty text is one window: [bos, eos]
    assert feeds[-1]["input_ids"].tolist() == [[bos, eos]]
    inner = []
    for feed in feeds[:-1]:
        window = feed["input_ids"]
        assert window.dtype == np.int64 and window.shape[0] == 1
        assert window[0, 0] == bos and window[0, -1] == eos
        assert window.shape[1] == manifest.max_seq_len or feed is feeds[-2]  # full but the last
        assert feed["attention_mask"].tolist() == [[1] * window.shape[1]]
        assert not feed.get("token_type_ids", np.zeros(1)).any()
        assert set(feed) == set(manifest.model_inputs)
        inner.extend(window[0, 1:-1].tolist())
    assert inner == ids
    padded = model_feeds(bundle, ["a short text"], pad_to=manifest.max_seq_len)[0]
    n = int(padded["attention_mask"].sum())
    assert padded["input_ids"].shape == (1, manifest.max_seq_len)
    assert padded["input_ids"][0, n - 1] == eos and (padded["input_ids"][0, n:] == pad).all()
    assert not padded["attention_mask"][0, n:].any()
