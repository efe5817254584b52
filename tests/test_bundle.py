"""Bundle loading refuses every kind of broken bundle with a typed error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edge_lingua.bundle import check_files, load_bundle, read_manifest
from edge_lingua.errors import (
    BundleNotFoundError,
    ChecksumMismatchError,
    ManifestError,
    MissingFileError,
    UnsafePathError,
    UnsupportedFormatError,
    WrongBundleKindError,
)


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
