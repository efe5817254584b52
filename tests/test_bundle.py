"""Bundle loading refuses every kind of broken bundle with a typed error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edge_lingua.bundle import check_files, load_bundle, read_manifest
from edge_lingua.compressor import SHIPPED_MODELS
from edge_lingua.errors import (
    BundleNotFoundError,
    ChecksumMismatchError,
    ManifestError,
    MissingFileError,
    UnsafePathError,
    UnsupportedFormatError,
    WrongBundleKindError,
)
from tests.toolchain_models import rewrite_checksums, three_label_model


@pytest.fixture
def bundle(tiny_bert_bundle: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bert_bundle, copy)
    return copy


def _edit_manifest(bundle: Path, **changes: object) -> None:
    path = bundle / "manifest.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_valid_bundle_loads_and_records_what_it_is(bundle: Path) -> None:
    loaded = load_bundle(bundle, kind="token-classifier")
    manifest = loaded.manifest
    assert manifest.kind == "token-classifier"
    assert manifest.model_file in manifest.files and manifest.tokenizer_file in manifest.files
    assert manifest.max_seq_len >= 8 and manifest.keep_label in (0, 1)
    assert {"bos", "eos", "pad"} <= set(manifest.special_tokens)
    assert manifest.source_model and manifest.license
    assert set(check_files(bundle, manifest).values()) == {"ok"}


def test_missing_file_is_refused(bundle: Path) -> None:
    (bundle / "tokenizer.json").unlink()
    with pytest.raises(MissingFileError, match=r"tokenizer\.json"):
        load_bundle(bundle)


def test_flipped_byte_in_model_is_refused(bundle: Path) -> None:
    model = bundle / read_manifest(bundle).model_file
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError, match="sha256"):
        load_bundle(bundle)


def test_unknown_format_version_is_refused(bundle: Path) -> None:
    _edit_manifest(bundle, format_version=99)
    with pytest.raises(UnsupportedFormatError, match="99"):
        load_bundle(bundle)


def test_wrong_kind_is_refused(bundle: Path) -> None:
    with pytest.raises(WrongBundleKindError, match="causal-lm"):
        load_bundle(bundle, kind="causal-lm")


@pytest.mark.parametrize("escape", ["../outside.onnx", "/etc/passwd", "sub/../../x"])
def test_path_escaping_the_bundle_is_refused(bundle: Path, escape: str) -> None:
    data = json.loads((bundle / "manifest.json").read_text())
    data["files"][escape] = "0" * 64
    (bundle / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(UnsafePathError, match="escapes"):
        load_bundle(bundle)


def test_non_bundle_paths_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BundleNotFoundError):
        load_bundle(tmp_path / "nope")
    with pytest.raises(BundleNotFoundError, match=r"manifest\.json"):
        load_bundle(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(BundleNotFoundError):
        load_bundle(tmp_path / "file")


def test_malformed_manifest_is_refused(bundle: Path) -> None:
    (bundle / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        load_bundle(bundle)
    partial = {"format_version": 1, "kind": "token-classifier"}
    (bundle / "manifest.json").write_text(json.dumps(partial))
    with pytest.raises(ManifestError, match="lacks required"):
        load_bundle(bundle)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"keep_label": "abc"}, "keep_label"),
        ({"keep_label": 5}, "keep_label"),
        ({"keep_label": -1}, "keep_label"),
        ({"keep_label": True}, "keep_label"),
        ({"special_tokens": [2, 3]}, "special_tokens"),
        ({"special_tokens": {"bos": "x", "eos": 3}}, "special_tokens"),
        ({"special_tokens": {"pad": 0}}, "special_tokens"),
        ({"model_inputs": 5}, "model_inputs"),
        ({"model_inputs": ["input_ids", 7]}, "model_inputs"),
        ({"max_seq_len": 10**12}, "max_seq_len"),
        ({"max_seq_len": 4}, "max_seq_len"),
        ({"max_seq_len": 128.0}, "max_seq_len"),
        ({"kind": ["token-classifier"]}, "kind"),
        ({"model_format": 1}, "model_format"),
        ({"quantization": None}, "quantization"),
        ({"source_model": 12}, "source_model"),
        ({"license": ""}, "license"),
        ({"model_file": None}, "model_file"),
        ({"tokenizer_file": "other.json"}, "tokenizer_file"),
        ({"files": {"model.onnx": "not-a-sha"}}, "files"),
        ({"files": []}, "files"),
        ({"extra": []}, "extra"),
        ({"extra": {"num_labels": "2"}}, "extra.num_labels"),
        ({"extra": {"num_labels": 1}}, "extra.num_labels"),
        ({"extra": {"num_labels": 3, "id2label": {"0": "drop", "1": "keep"}}}, "extra.id2label"),
        ({"extra": {"max_position_embeddings": 64}}, "max_seq_len"),
        ({"extra": {"window_len": 129}}, "extra.window_len"),
        ({"extra": {"window_len": 4}}, "extra.window_len"),
    ],
)
def test_every_malformed_field_is_a_manifest_error_naming_it(
    bundle: Path, changes: dict[str, object], field: str
) -> None:
    _edit_manifest(bundle, **changes)
    with pytest.raises(ManifestError) as caught:
        load_bundle(bundle)
    assert caught.value.field == field
    assert field.split(".")[-1] in str(caught.value)


def test_max_seq_len_beyond_the_position_embeddings_is_refused(bundle: Path) -> None:
    _edit_manifest(bundle, max_seq_len=129)  # the tiny BERT has 128 positions
    with pytest.raises(ManifestError, match="128 position embeddings") as caught:
        load_bundle(bundle)
    assert caught.value.field == "max_seq_len"
    _edit_manifest(bundle, max_seq_len=128)
    assert load_bundle(bundle).manifest.max_seq_len == 128


def test_three_label_model_with_updated_checksums_is_refused_at_load(bundle: Path) -> None:
    from edge_lingua.compressor import Compressor

    three_label_model(bundle, 3)
    with pytest.raises(ManifestError, match="3 logits per token") as caught:
        load_bundle(bundle)
    assert caught.value.field == "extra.num_labels"
    with pytest.raises(ManifestError, match="3 logits per token"):
        Compressor.load(bundle)


def test_three_label_model_with_a_symbolic_label_axis_is_refused_by_the_session(
    bundle: Path,
) -> None:
    """The graph does not say how many labels: the compressor asks the model at load."""
    from edge_lingua.compressor import Compressor

    three_label_model(bundle, "labels")
    assert load_bundle(bundle).manifest.num_labels == 2  # the graph cannot tell
    with pytest.raises(ManifestError, match="3 logits per token") as caught:
        Compressor.load(bundle)
    assert caught.value.field == "extra.num_labels"


def test_shipped_model_declares_what_its_manifest_says() -> None:
    from edge_lingua.compressor import default_bundle_path
    from edge_lingua.onnx_graph import read_graph_facts

    manifest = read_manifest(default_bundle_path())
    facts = read_graph_facts(default_bundle_path() / manifest.model_file)
    assert facts.position_limit == manifest.max_seq_len == 512
    assert facts.outputs["logits"][-1] == manifest.num_labels == 2


def test_a_file_that_is_not_onnx_is_a_manifest_error(bundle: Path) -> None:
    (bundle / "model.onnx").write_bytes(b"\xff" * 64)
    rewrite_checksums(bundle)
    with pytest.raises(ManifestError, match="not a readable ONNX model"):
        load_bundle(bundle)


def test_model_inputs_must_match_the_model(bundle: Path) -> None:
    from edge_lingua.compressor import Compressor

    _edit_manifest(bundle, model_inputs=["input_ids", "attention_mask", "pixel_values"])
    with pytest.raises(ManifestError, match="pixel_values") as caught:
        Compressor.load(bundle)
    assert caught.value.field == "model_inputs"


def test_model_needing_an_input_the_runtime_cannot_feed_is_refused(bundle: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    from edge_lingua.compressor import Compressor

    model = onnx.load(bundle / "model.onnx")
    model.graph.input.append(
        helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch", "seq"]))
    onnx.save(model, bundle / "model.onnx")
    rewrite_checksums(bundle)
    with pytest.raises(ManifestError, match="position_ids") as caught:
        Compressor.load(bundle)
    assert caught.value.field == "model_inputs"


@pytest.mark.parametrize("name", SHIPPED_MODELS)
def test_a_manifest_reads_back_as_the_json_it_was_written_as(name: str) -> None:
    """``Manifest.to_json`` is what ``write_manifest`` and ``edge-lingua inspect`` print: every
    field under its own name, the question fields only for a question-aware bundle."""
    path = Path(__file__).resolve().parents[1] / "edge_lingua" / "models" / name
    written = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    manifest = read_manifest(path)
    assert manifest.to_json() == written
    assert ("question_aware" in written) is (name != "small")
    assert type(manifest).from_json(manifest.to_json()) == manifest


def test_a_bundle_hands_out_only_the_files_its_manifest_lists(bundle: Path) -> None:
    loaded = load_bundle(bundle, kind="token-classifier")
    assert loaded.file("tokenizer.json") == (bundle / "tokenizer.json").resolve()
    (bundle / "notes.txt").write_text("not listed")
    for name in ("notes.txt", "../manifest.json"):
        with pytest.raises(MissingFileError, match=f"{name!r} is not listed in the bundle"):
            loaded.file(name)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"input_format": "triple"}, "input_format",
         "unknown input_format 'triple'; expected one of ('single', 'question-pair')"),
        ({"question_aware": True}, "question_aware",
         "question_aware must be true exactly when input_format is 'question-pair' "
         "(got True with 'single')"),
        ({"question_aware": "yes", "input_format": "question-pair"}, "question_aware",
         "(got 'yes' with 'question-pair')"),
        ({"input_format": "question-pair"}, "question_aware", "(got False with 'question-pair')"),
        ({"input_format": "question-pair", "question_aware": True, "max_question_tokens": 65},
         "max_question_tokens", "between 1 and max_seq_len / 2, got 65"),
        ({"input_format": "question-pair", "question_aware": True, "max_question_tokens": 0},
         "max_question_tokens", "got 0"),
    ],
)
def test_a_bad_question_format_says_what_is_wrong(
    bundle: Path, changes: dict[str, object], field: str, message: str
) -> None:
    _edit_manifest(bundle, max_seq_len=128, **changes)
    with pytest.raises(ManifestError) as caught:
        load_bundle(bundle)
    assert caught.value.field == field
    assert message in str(caught.value)


def test_a_question_pair_manifest_loads_with_its_question_length(bundle: Path) -> None:
    _edit_manifest(bundle, max_seq_len=128, input_format="question-pair", question_aware=True,
                   max_question_tokens=64)
    manifest = load_bundle(bundle).manifest
    assert (manifest.question_aware, manifest.input_format, manifest.max_question_tokens) == (
        True, "question-pair", 64)


def test_errors_on_broken_bundles_name_the_path_and_the_file(bundle: Path,
                                                             tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")
    with pytest.raises(BundleNotFoundError) as caught:
        load_bundle(tmp_path / "plain")
    assert str(caught.value) == f"{tmp_path / 'plain'} is not a directory, so it is not a bundle"
    (bundle / "tokenizer.json").unlink()
    with pytest.raises(MissingFileError) as missing:
        load_bundle(bundle)
    assert str(missing.value) == (f"bundle {bundle} lacks 'tokenizer.json', listed in its "
                                  "manifest")


@pytest.mark.parametrize(
    ("manifest", "error", "message"),
    [
        ([1, 2], ManifestError, "manifest.json must hold a JSON object"),
        ({"format_version": True}, UnsupportedFormatError, "True"),
        ({"format_version": 1, "kind": "token-classifier", "model_file": "model.onnx"},
         ManifestError, "model_format, tokenizer_file, files"),
    ],
)
def test_a_manifest_that_is_not_one_says_why(bundle: Path, manifest: object, error: type,
                                             message: str) -> None:
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(error) as caught:
        load_bundle(bundle)
    assert message in str(caught.value)


def test_write_manifest_checksums_the_named_files_and_writes_a_manifest_that_loads(
        bundle: Path) -> None:
    import hashlib

    from edge_lingua.bundle import Manifest, write_manifest

    before = read_manifest(bundle)
    fields = {k: v for k, v in before.__dict__.items() if k != "files"}
    (bundle / "manifest.json").unlink()
    written = write_manifest(bundle, files=list(before.files), **fields)
    assert written == before
    assert written.files == {name: hashlib.sha256((bundle / name).read_bytes()).hexdigest()
                             for name in before.files}
    text = (bundle / "manifest.json").read_text(encoding="utf-8")
    assert text == json.dumps(written.to_json(), indent=2) + "\n"  # fields in their order
    assert Manifest.from_json(json.loads(text)) == written
    assert load_bundle(bundle).manifest == written  # its checksums hold
    # a manifest that would not load is refused before anything is written
    (bundle / "manifest.json").unlink()
    with pytest.raises(ManifestError, match="keep_label"):
        write_manifest(bundle, files=list(before.files), **{**fields, "keep_label": 99})
    assert not (bundle / "manifest.json").exists()


def _manifest_data(**changes: object) -> dict:
    """A valid classifier manifest as JSON data, with ``changes`` (``extra`` merged; a value
    of ``...`` removes the field)."""
    data: dict = {
        "format_version": 1, "kind": "token-classifier", "model_file": "model.onnx",
        "model_format": "onnx", "tokenizer_file": "tokenizer.json",
        "files": {"model.onnx": "0" * 64, "tokenizer.json": "1" * 64}, "max_seq_len": 128,
        "special_tokens": {"bos": 2, "eos": 3}, "source_model": "s", "license": "l",
        "extra": {"num_labels": 2, "id2label": {"0": "drop", "1": "keep"},
                  "max_position_embeddings": 512},
    }
    extra = changes.pop("extra", {})
    if not isinstance(extra, dict):
        data["extra"], extra = extra, {}
    for target, edits in ((data, changes), (data["extra"], extra)):
        for key, value in edits.items():
            if value is ...:
                target.pop(key, None)
            else:
                target[key] = value
    return data


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"kind": ..., "license": ...}, "kind",
     "manifest.json lacks required field(s): kind, license"),
    ({"extra": []}, "extra", "manifest field 'extra' must be a JSON object"),
    ({"max_seq_len": 7}, "max_seq_len",
     f"manifest field 'max_seq_len' must be an integer in [8, {1 << 20}], got 7"),
    ({"keep_label": 2}, "keep_label", "keep_label 2 is not one of the model's 2 labels"),
    ({"keep_label": 1 << 16}, "keep_label",
     f"manifest field 'keep_label' must be an integer in [0, {(1 << 16) - 1}], got {1 << 16}"),
    ({"quantization": "int3"}, "quantization", "manifest field 'quantization' must be one of"),
    ({"special_tokens": {"bos": 2}}, "special_tokens",
     "a token-classifier manifest needs special_tokens bos and eos"),
    ({"special_tokens": {"bos": 2, "eos": 1 << 31}}, "special_tokens",
     "manifest field 'special_tokens' must map names to token ids (integers >= 0), got"),
    ({"model_inputs": "input_ids"}, "model_inputs",
     "manifest field 'model_inputs' must be a list of input names, got 'input_ids'"),
    ({"extra": {"num_labels": 1}}, "extra.num_labels",
     f"manifest field 'extra.num_labels' must be an integer in [2, {1 << 16}], got 1"),
    ({"extra": {"max_position_embeddings": 7}}, "extra.max_position_embeddings",
     f"manifest field 'extra.max_position_embeddings' must be an integer in [8, {1 << 20}], "
     "got 7"),
    ({"extra": {"max_position_embeddings": 127}}, "max_seq_len",
     "max_seq_len 128 exceeds extra.max_position_embeddings 127"),
    ({"extra": {"window_len": 129}}, "extra.window_len",
     "manifest field 'extra.window_len' must be an integer in [8, 128], got 129"),
    ({"extra": {"window_len": 7}}, "extra.window_len",
     "manifest field 'extra.window_len' must be an integer in [8, 128], got 7"),
    ({"extra": {"num_labels": 3}}, "extra.id2label",
     "manifest field 'extra.id2label' must map one name to each of the extra.num_labels labels"),
])
def test_each_bad_manifest_field_is_named_with_its_range(changes, field, message) -> None:
    from edge_lingua.bundle import Manifest

    with pytest.raises(ManifestError) as info:
        Manifest.from_json(_manifest_data(**changes))
    assert info.value.field == field and str(info.value).startswith(message)


@pytest.mark.parametrize(("changes", "expected"), [
    ({}, {"keep_label": 1, "quantization": "none", "window_len": 128, "num_labels": 2,
          "model_inputs": []}),
    ({"keep_label": 0, "max_seq_len": 8, "quantization": "dynamic-int8",
      "extra": {"window_len": 8}},
     {"keep_label": 0, "max_seq_len": 8, "quantization": "dynamic-int8", "window_len": 8}),
    # the edges of each range are inside it; a field left out takes its default
    ({"max_seq_len": 512, "extra": {"window_len": 512, "num_labels": ..., "id2label": ...}},
     {"max_seq_len": 512, "window_len": 512, "num_labels": 2}),
    ({"max_seq_len": 8}, {"max_seq_len": 8, "window_len": 8}),
    ({"extra": {"max_position_embeddings": ...}, "max_seq_len": 1 << 20},
     {"max_seq_len": 1 << 20}),
    ({"extra": {"num_labels": 1 << 16, "id2label": ...}, "keep_label": (1 << 16) - 1},
     {"num_labels": 1 << 16, "keep_label": (1 << 16) - 1}),
    ({"special_tokens": {"bos": 0, "eos": (1 << 31) - 1}},
     {"special_tokens": {"bos": 0, "eos": (1 << 31) - 1}}),
])
def test_manifest_fields_on_the_edges_of_their_ranges_load(changes, expected) -> None:
    from edge_lingua.bundle import Manifest

    manifest = Manifest.from_json(_manifest_data(**changes))
    assert {key: getattr(manifest, key) for key in expected} == expected
