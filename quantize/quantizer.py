"""Quantize a token-classifier bundle with onnxruntime's quantization tools, gated by fidelity."""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import onnxruntime as ort

from edge_lingua.bundle import Manifest, load_bundle, write_manifest
from edge_lingua.errors import FidelityError, ToolchainError
from edge_lingua_export import common
from edge_lingua_quantize.calibration import TextCalibrationReader, model_feeds, require_texts
from edge_lingua_quantize.fidelity import (
    DEFAULT_RATES,
    DEFAULT_THRESHOLD,
    REPORT_NAME,
    FidelityReport,
    measure,
)
from edge_lingua_quantize.modes import CALIBRATE_METHODS, CALIBRATED, DEFAULT_BLOCK_SIZE, MODES

# Every n-th calibration text is held out when no held-out text is given.
HOLD_OUT_EVERY = 5


@dataclass(frozen=True)
class QuantizeResult:
    """What ``quantize_bundle`` wrote: the new manifest and its fidelity report."""

    manifest: Manifest
    report: FidelityReport


def _split(calibration: list[str], held_out: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """Calibration and held-out texts; without held-out text, every fifth one is held out."""
    if held_out is not None:
        return calibration, require_texts(held_out, "held-out")
    if len(calibration) < 2:
        return calibration, calibration
    if len(calibration) < HOLD_OUT_EVERY:
        return calibration[:-1], calibration[-1:]
    held = [i % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1 for i in range(len(calibration))]
    return ([t for t, h in zip(calibration, held, strict=True) if not h],
            [t for t, h in zip(calibration, held, strict=True) if h])


def _matching_nodes(model_path: Path, patterns: Sequence[str]) -> list[str]:
    """Names of the graph's nodes that match any of the regular expressions ``patterns``."""
    import onnx

    if not patterns:
        return []
    try:
        compiled = [re.compile(p) for p in patterns]
    except re.error as exc:
        raise ToolchainError(f"--keep-fp32 pattern is not a regular expression: {exc}") from None
    graph = onnx.load(str(model_path), load_external_data=False).graph
    names = [n.name for n in graph.node if any(c.search(n.name) for c in compiled)]
    if not names:
        raise ToolchainError(f"no node of the model matches --keep-fp32 {list(patterns)}")
    return names


def _run_tool(mode: str, src: Path, dst: Path, feeds: list[dict], *, per_channel: bool,
              calibrate_method: str, block_size: int, external_data: bool,
              keep_fp32: list[str]) -> None:
    """Call the onnxruntime quantizer for ``mode``: model ``src`` in, model ``dst`` out."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    if mode == "dynamic-int8":
        import onnx

        # the fused operators (com.microsoft domain) defeat shape inference: say their type
        quantize_dynamic(src, dst, per_channel=per_channel, weight_type=QuantType.QInt8,
                         use_external_data_format=external_data, nodes_to_exclude=keep_fp32,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    elif mode in CALIBRATED:
        activation, weight = (
            (QuantType.QUInt8, QuantType.QInt8) if mode == "static-qdq-int8"
            else (QuantType.QUInt16, QuantType.QUInt8)
        )
        method = {"minmax": CalibrationMethod.MinMax,
                  "percentile": CalibrationMethod.Percentile}[calibrate_method]
        quantize_static(
            src, dst, TextCalibrationReader(feeds), quant_format=QuantFormat.QDQ,
            per_channel=per_channel, activation_type=activation, weight_type=weight,
            calibrate_method=method, use_external_data_format=external_data,
            nodes_to_exclude=keep_fp32,
        )
    else:
        quantizer = MatMulNBitsQuantizer(str(src), bits=4, block_size=block_size,
                                         is_symmetric=True, op_types_to_quantize=("MatMul",),
                                         nodes_to_exclude=keep_fp32)
        quantizer.process()
        quantizer.model.save_model_to_file(str(dst), use_external_data_format=external_data)


def quantize_bundle(
    bundle: str | Path, out: str | Path, mode: str, *,
    calibration: Sequence[str] | None, held_out: Sequence[str] | None = None,
    per_channel: bool = False, threshold: float = DEFAULT_THRESHOLD,
    rates: Sequence[float] = DEFAULT_RATES, force: bool = False,
    calibrate_method: str = "minmax", block_size: int = DEFAULT_BLOCK_SIZE,
    keep_fp32: Sequence[str] = (), fuse: bool = False, report_to: TextIO | None = None,
) -> QuantizeResult:
    """Quantize an fp32 token-classifier bundle into a new bundle at ``out``.

    ``calibration`` texts calibrate the static modes; with ``held_out`` (else every
    fifth calibration text, kept out of calibration) they also measure fidelity. A bundle whose
    keep/drop agreement falls under ``threshold`` is not written unless ``force``. The report's
    summary goes to ``report_to`` (if given) before that decision. ``keep_fp32`` holds regular
    expressions of node names left unquantized (mixed precision for sensitive layers). ``fuse``
    first fuses the encoder's attention, layer norms and GELU into onnxruntime's transformer
    operators (``Attention``, ``SkipLayerNormalization``, ``BiasGelu``), which the quantizer then
    turns into ``QAttention``: fewer, larger kernels on CPU.
    """
    common.require("onnx")
    if mode not in MODES:
        raise ToolchainError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if calibrate_method not in CALIBRATE_METHODS:
        raise ToolchainError(f"calibration method must be one of {CALIBRATE_METHODS}")
    if fuse and mode != "dynamic-int8":
        raise ToolchainError(f"fuse is offered for dynamic-int8, not {mode}")
    if not 0.0 <= threshold <= 1.0:
        raise ToolchainError(f"threshold is a fraction in [0, 1], got {threshold}")
    texts, held = _split(require_texts(calibration, "calibration"), held_out)
    source = load_bundle(bundle, kind="token-classifier")
    manifest = source.manifest
    if manifest.model_format != "onnx" or manifest.quantization != "none":
        raise ToolchainError(
            f"{bundle} is a {manifest.quantization} {manifest.model_format} bundle; quantize "
            "starts from an fp32 ONNX bundle (the one `edge-lingua export classifier` writes)"
        )
    onnx_names = common.onnx_files(source.path, manifest.model_file)
    external = len(onnx_names) > 1
    # (the progress bar's looks, and names of scratch files removed at the end)
    with (common.step_bar(f"quantize {mode}", 4) as bar,  # pragma: no mutate
          common.staged_output(out) as stage):
        bar.set_postfix_str("preparing the model")  # pragma: no mutate
        work = stage / "_work"  # pragma: no mutate
        work.mkdir()
        prepared = work / "prepared.onnx"  # pragma: no mutate
        _prepare(source.model_path, prepared, external)
        fused = _fuse(prepared, external) if fuse else {}
        fp32_nodes = _matching_nodes(prepared, keep_fp32)
        histogram = calibrate_method != "minmax"  # needs windows of one shape
        feeds = (model_feeds(source, texts, manifest.max_seq_len if histogram else None)
                 if mode in CALIBRATED else [])
        bar.update()
        bar.set_postfix_str(f"quantizing ({MODES[mode]})")  # pragma: no mutate (display)
        model_file = "model.onnx"
        try:
            with _quiet_logging():
                _run_tool(mode, prepared, stage / model_file, feeds, per_channel=per_channel,
                          calibrate_method=calibrate_method, block_size=block_size,
                          external_data=external, keep_fp32=fp32_nodes)
        except Exception as exc:
            raise ToolchainError(f"onnxruntime could not quantize ({mode}): {exc}") from None
        shutil.rmtree(work)
        bar.update()
        others = [n for n in manifest.files if n not in onnx_names and n != REPORT_NAME]
        for name in others:
            shutil.copyfile(source.path / name, stage / name)
        settings: dict[str, Any] = {
            "per_channel": per_channel,
            "keep_fp32": list(keep_fp32),
            "fused": fused,
            "fp32_nodes": fp32_nodes,
            "calibrate_method": calibrate_method if feeds else None,
            "block_size": block_size if mode == "int4-weight" else None,
            "calibration_texts": len(texts),
            "calibration_windows": len(feeds),
            "held_out_texts": len(held),
            "held_out_from_calibration": held_out is None,
            "onnxruntime": ort.__version__,
        }
        fields: dict[str, Any] = {
            "kind": manifest.kind, "model_file": model_file, "model_format": "onnx",
            "tokenizer_file": manifest.tokenizer_file, "max_seq_len": manifest.max_seq_len,
            "keep_label": manifest.keep_label, "special_tokens": manifest.special_tokens,
            "model_inputs": manifest.model_inputs, "quantization": mode,
            **manifest.input_fields(),
            "source_model": manifest.source_model, "license": manifest.license,
            "extra": {**manifest.extra, "quantization": settings},
        }
        model_files = common.onnx_files(stage, model_file)
        write_manifest(stage, files=[*model_files, *others], **fields)
        bar.set_postfix_str("measuring fidelity")  # pragma: no mutate (display)
        report = measure(source.path, stage, mode, {"calibration": texts, "held_out": held},
                         threshold=threshold, rates=rates, forced=force, settings=settings)
        bar.update()
        if report_to is not None:
            report_to.write(report.summary() + "\n")
        if not report.passed and not force:
            raise FidelityError(
                f"{mode} keep/drop agreement {report.min_agreement:.2%} is under the threshold "
                f"{threshold:.1%}; no bundle written (force writes it anyway)"
            )
        report.write(stage / REPORT_NAME)
        result = write_manifest(stage, files=[*model_files, *others, REPORT_NAME], **fields)
        bar.update()
    return QuantizeResult(manifest=result, report=report)


def _fuse(model: Path, external: bool) -> dict[str, int]:
    """Fuse a BERT-like encoder in place with onnxruntime's transformer optimizer.

    Returns how many of each fused operator it made; an encoder it cannot fuse is refused,
    since ``fuse`` was asked for.
    """
    from onnxruntime.transformers.optimizer import optimize_model

    try:
        with _quiet_logging():
            # num_heads=0 / hidden_size=0: read from the graph's reshapes
            optimized = optimize_model(str(model), model_type="bert", num_heads=0,
                                       hidden_size=0, opt_level=0)
            optimized.save_model_to_file(str(model), use_external_data_format=external)
    except Exception as exc:
        raise ToolchainError(f"onnxruntime could not fuse the encoder: {exc}") from None
    counts = {name: n for name, n in optimized.get_fused_operator_statistics().items() if n}
    if not counts.get("Attention"):
        raise ToolchainError("--fuse found no attention block to fuse in this model")
    return counts


@contextlib.contextmanager
def _quiet_logging() -> Iterator[None]:
    """onnxruntime's quantizers log every node at INFO; keep their warnings only."""
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    loggers = [logging.getLogger(), logging.getLogger(MatMulNBitsQuantizer.__module__)]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _prepare(model: Path, prepared: Path, external: bool) -> None:
    """onnxruntime's recommended pre-processing: shape inference and graph optimisation."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        with _quiet_logging():
            quant_pre_process(model, prepared, auto_merge=True, save_as_external_data=external,
                              all_tensors_to_one_file=True)
    except Exception as exc:
        raise ToolchainError(f"onnxruntime could not pre-process the model: {exc}") from None
