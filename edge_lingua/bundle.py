"""Bundles: a directory with a model, its tokenizer and a manifest with checksums.

A bundle is everything the runtime needs to run a model with no torch and no
network. ``manifest.json`` describes it::

    {
      "format_version": 1,
      "kind": "token-classifier" | "causal-lm",
      "model_file": "model.onnx",          # or a .gguf / .ort file
      "model_format": "onnx" | "ort" | "gguf",
      "tokenizer_file": "tokenizer.json",
      "files": {"model.onnx": "<sha256>", "tokenizer.json": "<sha256>", ...},
      "max_seq_len": 512,
      "keep_label": 1,                    # token-classifier: which logit means keep
      "special_tokens": {"bos": 101, "eos": 102, "pad": 0},
      "model_inputs": ["input_ids", "attention_mask", "token_type_ids"],
      "quantization": "none" | "dynamic-int8" | "static-qdq-int8" | ...,
      "question_aware": true,             # token-classifier; only written when true:
      "input_format": "question-pair",    #   [CLS] question [SEP] window [SEP], token types 0/1
      "max_question_tokens": 64,          #   longer questions are cut (and the result says so)
      "source_model": "...",
      "license": "...",
      "extra": {...}
    }
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_lingua.errors import (
    BundleNotFoundError,
    ChecksumMismatchError,
    ManifestError,
    MissingFileError,
    UnsafePathError,
    UnsupportedFormatError,
    WrongBundleKindError,
)
from edge_lingua.onnx_graph import read_graph_facts

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
KINDS = ("token-classifier", "causal-lm")
MODEL_FORMATS = ("onnx", "ort", "gguf")
QUANTIZATION_MODES = (
    "none",
    "dynamic-int8",
    "static-qdq-int8",
    "qdq-u16",
    "int4-weight",
    "f16",
    "q8_0",
)
# token-classifier inputs: "single" is [CLS] window [SEP] (every bundle without the fields);
# "question-pair" is [CLS] question [SEP] window [SEP] with token types 0 then 1
INPUT_FORMATS = ("single", "question-pair")
_CHUNK = 1 << 20
# Bounds of manifest numbers: no real model has a longer context or more labels.
MAX_SEQ_LEN = 1 << 20
_MAX_LABELS = 1 << 16
_MAX_TOKEN_ID = 1 << 31
_SHA256 = re.compile(r"[0-9a-f]{64}")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Manifest:
    """The parsed ``manifest.json`` of a bundle."""

    kind: str
    model_file: str
    model_format: str
    tokenizer_file: str
    files: dict[str, str]
    max_seq_len: int
    source_model: str
    license: str
    quantization: str = "none"
    keep_label: int = 1
    special_tokens: dict[str, int] = field(default_factory=dict)
    model_inputs: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    input_format: str = "single"
    max_question_tokens: int = 0

    @property
    def question_aware(self) -> bool:
        """Whether the classifier reads a question beside each window."""
        return self.input_format == "question-pair"

    def input_fields(self) -> dict[str, Any]:
        """The input-format fields, for tools that write a new manifest from this one."""
        return {"input_format": self.input_format, "max_question_tokens": self.max_question_tokens}

    def to_json(self) -> dict[str, Any]:
        question = {"question_aware": True, **self.input_fields()} if self.question_aware else {}
        return {
            "format_version": self.format_version,
            "kind": self.kind,
            "model_file": self.model_file,
            "model_format": self.model_format,
            "tokenizer_file": self.tokenizer_file,
            "files": dict(sorted(self.files.items())),
            "max_seq_len": self.max_seq_len,
            "keep_label": self.keep_label,
            "special_tokens": self.special_tokens,
            "model_inputs": self.model_inputs,
            "quantization": self.quantization,
            **question,
            "source_model": self.source_model,
            "license": self.license,
            "extra": self.extra,
        }

    @property
    def num_labels(self) -> int:
        """Labels of a classifier's logits: ``extra.num_labels``, else its id2label, else 2."""
        if "num_labels" in self.extra:
            return int(self.extra["num_labels"])
        if "id2label" in self.extra:
            return len(self.extra["id2label"])
        return 2

    @property
    def window_len(self) -> int:
        """Tokens per encoder window, special tokens included: ``extra.window_len`` (shorter
        windows cost less attention per token), else ``max_seq_len``."""
        return int(self.extra.get("window_len", self.max_seq_len))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Manifest:
        """Validate every field's type and range; ManifestError naming the field otherwise."""
        if not isinstance(data, Mapping):
            raise ManifestError("manifest.json must hold a JSON object")
        version = data.get("format_version")
        if version != FORMAT_VERSION or isinstance(version, bool):
            raise UnsupportedFormatError(
                f"bundle format version {version!r} is not supported "
                f"(this runtime reads version {FORMAT_VERSION})"
            )
        required = ("kind", "model_file", "model_format", "tokenizer_file", "files",
                    "max_seq_len", "source_model", "license")
        missing = [key for key in required if key not in data]
        if missing:
            raise ManifestError(f"manifest.json lacks required field(s): {', '.join(missing)}",
                                field=missing[0])
        kind = _choice(data, "kind", KINDS)
        files = data["files"]
        if not isinstance(files, Mapping) or not all(
            isinstance(k, str) and k and isinstance(v, str) and _SHA256.fullmatch(v)
            for k, v in files.items()
        ):
            raise ManifestError("manifest field 'files' must map file names to sha256 hex strings",
                                field="files")
        for key in ("model_file", "tokenizer_file"):
            if _text(data, key) not in files:
                raise ManifestError(f"{key} {data[key]!r} is not listed in 'files'", field=key)
        extra = data.get("extra", {})
        if not isinstance(extra, Mapping):
            raise ManifestError("manifest field 'extra' must be a JSON object", field="extra")
        special = data.get("special_tokens", {})
        if not isinstance(special, Mapping) or not all(
            isinstance(k, str) and _is_int(v) and 0 <= v < _MAX_TOKEN_ID
            for k, v in special.items()
        ):
            raise ManifestError("manifest field 'special_tokens' must map names to token ids "
                                f"(integers >= 0), got {special!r}", field="special_tokens")
        if kind == "token-classifier" and not {"bos", "eos"} <= set(special):
            raise ManifestError("a token-classifier manifest needs special_tokens bos and eos",
                                field="special_tokens")
        inputs = data.get("model_inputs", [])
        if not isinstance(inputs, list) or not all(isinstance(x, str) and x for x in inputs):
            raise ManifestError("manifest field 'model_inputs' must be a list of input names, "
                                f"got {inputs!r}", field="model_inputs")
        input_format, max_question_tokens = _input_format(
            data, _integer(data, "max_seq_len", 8, MAX_SEQ_LEN))
        manifest = cls(
            kind=kind,
            model_file=data["model_file"],
            model_format=_choice(data, "model_format", MODEL_FORMATS),
            tokenizer_file=data["tokenizer_file"],
            files=dict(files),
            max_seq_len=_integer(data, "max_seq_len", 8, MAX_SEQ_LEN),
            source_model=_text(data, "source_model"),
            license=_text(data, "license"),
            quantization=_choice(data, "quantization", QUANTIZATION_MODES, "none"),
            keep_label=_integer(data, "keep_label", 0, _MAX_LABELS - 1, 1),
            special_tokens=dict(special),
            model_inputs=list(inputs),
            extra=dict(extra),
            input_format=input_format,
            max_question_tokens=max_question_tokens,
        )
        _integer(extra, "num_labels", 2, _MAX_LABELS, 2, prefix="extra.")
        _integer(extra, "max_position_embeddings", 8, MAX_SEQ_LEN, 8, prefix="extra.")
        _integer(extra, "window_len", 8, manifest.max_seq_len, 8, prefix="extra.")
        labels = extra.get("id2label", {})
        if not isinstance(labels, Mapping) or (
            "num_labels" in extra and "id2label" in extra and len(labels) != extra["num_labels"]
        ):
            raise ManifestError("manifest field 'extra.id2label' must map one name to each of "
                                "the extra.num_labels labels", field="extra.id2label")
        if kind == "token-classifier" and manifest.keep_label >= manifest.num_labels:
            raise ManifestError(
                f"keep_label {manifest.keep_label} is not one of the model's "
                f"{manifest.num_labels} labels", field="keep_label")
        if manifest.max_seq_len > extra.get("max_position_embeddings", MAX_SEQ_LEN):
            raise ManifestError(
                f"max_seq_len {manifest.max_seq_len} exceeds extra.max_position_embeddings "
                f"{extra['max_position_embeddings']}", field="max_seq_len")
        return manifest


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _integer(data: Mapping[str, Any], key: str, low: int, high: int, default: int | None = None,
             prefix: str = "") -> int:
    value = data.get(key, default)
    if not _is_int(value) or not low <= value <= high:
        raise ManifestError(f"manifest field '{prefix}{key}' must be an integer in "
                            f"[{low}, {high}], got {value!r}", field=prefix + key)
    return int(value)


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not value:
        raise ManifestError(f"manifest field '{key}' must be a non-empty string, got {value!r}",
                            field=key)
    return value


def _choice(data: Mapping[str, Any], key: str, allowed: tuple[str, ...],
            default: str | None = None) -> str:
    value = data.get(key, default)
    if value not in allowed or not isinstance(value, str):
        raise ManifestError(f"manifest field '{key}' must be one of {', '.join(allowed)}; "
                            f"got {value!r}", field=key)
    return value


def _input_format(data: Mapping[str, Any], max_seq_len: int) -> tuple[str, int]:
    """The checked input format and question length of a manifest (defaults: single, 0)."""
    input_format = data.get("input_format", "single")
    if input_format not in INPUT_FORMATS:
        raise ManifestError(f"unknown input_format {input_format!r}; expected one of "
                            f"{INPUT_FORMATS}", field="input_format")
    question_aware = data.get("question_aware", False)
    if not isinstance(question_aware, bool) or question_aware != (
        input_format == "question-pair"
    ):
        raise ManifestError("question_aware must be true exactly when input_format is "
                            f"'question-pair' (got {question_aware!r} with {input_format!r})",
                            field="question_aware")
    max_question_tokens = data.get("max_question_tokens", 0)
    if question_aware and (not isinstance(max_question_tokens, int)
                           or not 1 <= max_question_tokens <= max_seq_len // 2):
        raise ManifestError("a question-aware manifest needs max_question_tokens between 1 and "
                            f"max_seq_len / 2, got {max_question_tokens!r}",
                            field="max_question_tokens")
    return input_format, max_question_tokens if question_aware else 0


@dataclass(frozen=True)
class Bundle:
    """A verified bundle on disk."""

    path: Path
    manifest: Manifest

    @property
    def model_path(self) -> Path:
        return self.path / self.manifest.model_file

    @property
    def tokenizer_path(self) -> Path:
        return self.path / self.manifest.tokenizer_file

    def file(self, name: str) -> Path:
        """Path of a file the manifest lists."""
        if name not in self.manifest.files:
            raise MissingFileError(f"{name!r} is not listed in the bundle manifest")
        return _inside(self.path, name)


def _inside(root: Path, name: str) -> Path:
    target = (root / name).resolve()
    if not target.is_relative_to(root.resolve()):
        raise UnsafePathError(f"manifest path {name!r} escapes the bundle directory {root}")
    return target


def read_manifest(path: str | Path) -> Manifest:
    """Parse a bundle's manifest without checking its files."""
    root = Path(path)
    manifest_path = root / MANIFEST_NAME
    if not root.is_dir():
        raise BundleNotFoundError(f"{root} is not a directory, so it is not a bundle")
    if not manifest_path.is_file():
        raise BundleNotFoundError(f"{root} is not a bundle: it has no {MANIFEST_NAME}")
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{manifest_path} is not valid JSON: {exc}") from None
    manifest = Manifest.from_json(data)
    for name in manifest.files:
        _inside(root, name)
    return manifest


def check_files(path: str | Path, manifest: Manifest) -> dict[str, str]:
    """Status of every listed file: 'ok', 'missing' or 'mismatch'."""
    root = Path(path)
    status: dict[str, str] = {}
    for name, expected in manifest.files.items():
        target = _inside(root, name)
        if not target.is_file():
            status[name] = "missing"
        elif sha256_file(target) != expected:
            status[name] = "mismatch"
        else:
            status[name] = "ok"
    return status


def load_bundle(path: str | Path, kind: str | None = None, verify: bool = True) -> Bundle:
    """Open a bundle, check its kind and (by default) every file's checksum."""
    root = Path(path)
    manifest = read_manifest(root)
    if kind is not None and manifest.kind != kind:
        raise WrongBundleKindError(
            f"{root} holds a {manifest.kind!r} model, but a {kind!r} bundle is needed"
        )
    if verify:
        for name, state in check_files(root, manifest).items():
            if state == "missing":
                raise MissingFileError(f"bundle {root} lacks {name!r}, listed in its manifest")
            if state == "mismatch":
                raise ChecksumMismatchError(
                    f"{name!r} in bundle {root} does not match its sha256 in the manifest: "
                    "the file is corrupt or was changed"
                )
    else:
        for name in manifest.files:
            if not _inside(root, name).is_file():
                raise MissingFileError(f"bundle {root} lacks {name!r}, listed in its manifest")
    check_model(root, manifest)
    return Bundle(path=root, manifest=manifest)


def check_model(path: str | Path, manifest: Manifest) -> None:
    """Check the manifest against what its ONNX model declares.

    ``max_seq_len`` may not exceed the rows of the position-embedding table, and a token
    classifier's ``logits`` output must have ``num_labels`` labels. ORT-format and GGUF models
    carry no ONNX graph to read; the compressor checks their outputs when it opens a session.
    """
    if manifest.model_format != "onnx":
        return
    facts = read_graph_facts(_inside(Path(path), manifest.model_file))
    positions = facts.position_limit
    if positions is not None and manifest.max_seq_len > positions:
        raise ManifestError(
            f"max_seq_len {manifest.max_seq_len} exceeds the {positions} position embeddings "
            f"of {manifest.model_file}", field="max_seq_len")
    if manifest.kind != "token-classifier":
        return
    if "logits" not in facts.outputs:
        raise ManifestError(f"{manifest.model_file} has no 'logits' output (it has "
                            f"{', '.join(facts.outputs) or 'none'})", field="model_file")
    labels = facts.outputs["logits"][-1:] or (None,)
    if isinstance(labels[0], int) and labels[0] != manifest.num_labels:
        raise ManifestError(
            f"{manifest.model_file} gives {labels[0]} logits per token, but the manifest "
            f"describes {manifest.num_labels} labels (keep_label {manifest.keep_label})",
            field="extra.num_labels")


def write_manifest(path: str | Path, **fields: Any) -> Manifest:
    """Checksum the files named in ``fields['files']`` (a list of names) and write manifest.json.

    Used by the toolchain; every other field is passed to :class:`Manifest`.
    """
    root = Path(path)
    names = list(fields.pop("files"))
    checksums = {name: sha256_file(_inside(root, name)) for name in names}
    manifest = Manifest(files=checksums, **fields)
    Manifest.from_json(manifest.to_json())  # validate what we are about to write
    (root / MANIFEST_NAME).write_text(
        json.dumps(manifest.to_json(), indent=2, sort_keys=False) + "\n", encoding="utf-8"
    )
    return manifest
