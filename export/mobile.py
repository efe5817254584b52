"""Convert an ONNX bundle to onnxruntime's ORT format for mobile and reduced builds."""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

from edge_lingua.bundle import Manifest, load_bundle, write_manifest
from edge_lingua.errors import ToolchainError
from edge_lingua_export import common

TARGETS = ("arm", "amd64")


def _fix_shapes(model_path: Path, fixed: dict[str, int]) -> None:
    """Replace symbolic dimensions (e.g. batch_size, sequence_length) with fixed sizes."""
    import onnx
    from onnxruntime.tools.onnx_model_utils import fix_output_shapes, make_dim_param_fixed

    model = onnx.load(str(model_path))
    params = {
        dim.dim_param
        for value in model.graph.input
        for dim in value.type.tensor_type.shape.dim
        if dim.dim_param
    }
    unknown = sorted(set(fixed) - params)
    if unknown:
        raise ToolchainError(
            f"the model has no symbolic dimension(s) {unknown}; it has {sorted(params)}"
        )
    for name, value in fixed.items():
        make_dim_param_fixed(model.graph, name, value)
    fix_output_shapes(model)
    onnx.save(model, str(model_path))


def export_mobile(
    bundle: str | Path, out: str | Path, *, fixed_shapes: dict[str, int] | None = None,
    target: str = "arm", type_reduction: bool = False,
) -> Manifest:
    """Write an ORT-format copy of an ONNX bundle and the operator config of a reduced build.

    ``fixed_shapes`` maps symbolic input dimensions to sizes, for NNAPI/QNN/CoreML which need
    static shapes, e.g. ``{"batch_size": 1, "sequence_length": 128}``.
    """
    common.require("onnx")
    from onnxruntime.tools.convert_onnx_models_to_ort import (
        OptimizationStyle,
        convert_onnx_models_to_ort,
    )

    if target not in TARGETS:
        raise ToolchainError(f"target must be one of {TARGETS}, got {target!r}")
    source = load_bundle(bundle)
    manifest = source.manifest
    if manifest.model_format != "onnx":
        raise ToolchainError(f"{bundle} holds a {manifest.model_format} model; ORT needs ONNX")
    with common.step_bar("export mobile", 3) as bar, common.staged_output(out) as stage:
        work = stage / "_onnx"
        work.mkdir()
        for name in common.onnx_files(source.path, manifest.model_file):
            shutil.copyfile(source.path / name, work / name)
        model_onnx = work / manifest.model_file
        if fixed_shapes:
            bar.set_postfix_str("fixing shapes")
            _fix_shapes(model_onnx, fixed_shapes)
        bar.update()
        bar.set_postfix_str("converting to ORT format")
        log = io.StringIO()
        try:
            with contextlib.redirect_stdout(log):
                convert_onnx_models_to_ort(
                    model_onnx, output_dir=stage, optimization_styles=[OptimizationStyle.Fixed],
                    target_platform=target, enable_type_reduction=type_reduction,
                )
        except Exception as exc:
            raise ToolchainError(f"ORT format conversion failed: {exc}\n{log.getvalue()}") from None
        shutil.rmtree(work)
        model_file = Path(manifest.model_file).with_suffix(".ort").name
        configs = sorted(stage.glob("*.config"))
        if not (stage / model_file).is_file() or len(configs) != 1:
            raise ToolchainError(f"ORT conversion wrote no {model_file} or no operator config")
        config_name = configs[0].name.split(".", 1)[1]  # model.required_operators.config
        configs[0].rename(stage / config_name)
        bar.update()
        bar.set_postfix_str("writing bundle")
        onnx_names = common.onnx_files(source.path, manifest.model_file)
        others = [n for n in manifest.files if n not in onnx_names]
        for name in others:
            shutil.copyfile(source.path / name, stage / name)
        result = write_manifest(
            stage,
            kind=manifest.kind,
            model_file=model_file,
            model_format="ort",
            tokenizer_file=manifest.tokenizer_file,
            files=[model_file, config_name, *others],
            max_seq_len=(fixed_shapes or {}).get("sequence_length", manifest.max_seq_len),
            keep_label=manifest.keep_label,
            special_tokens=manifest.special_tokens,
            model_inputs=manifest.model_inputs,
            quantization=manifest.quantization,
            **manifest.input_fields(),
            source_model=manifest.source_model,
            license=manifest.license,
            extra={
                **manifest.extra,
                "ort_target_platform": target,
                "fixed_shapes": dict(fixed_shapes or {}),
                "operators_config": config_name,
            },
        )
        bar.update()
    return result
