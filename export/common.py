"""What every exporter shares: the output folder, the source checkpoint, model cards."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edge_lingua.errors import (
    CheckpointError,
    OutputExistsError,
    ToolchainError,
    ToolchainNotInstalledError,
    UnsupportedArchitectureError,
)

# Files copied verbatim from a source checkpoint so the bundle keeps its card and licence.
DOC_PATTERNS = ("README*", "LICENSE*", "LICENCE*", "NOTICE*", "COPYING*")
_LICENSE_LINE = re.compile(r"^license:\s*(\S+)\s*$", re.MULTILINE)


def require(*modules: str) -> None:
    """Import the toolchain's heavy dependencies or say which extra installs them."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ToolchainNotInstalledError(
                f"{name} is needed for export and quantization: pip install 'edge-lingua[export]' "
                f"({exc})"
            ) from None


@contextmanager
def staged_output(out: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder that becomes ``out`` only if the block succeeds.

    Refuses an ``out`` that exists: bundles are never overwritten silently.
    """
    target = Path(out)
    if target.exists():
        raise OutputExistsError(f"{target} exists already; choose a new output folder or remove it")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        if target.exists():
            raise OutputExistsError(f"{target} appeared while being written; not replacing it")
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def resolve_source(src: str | Path) -> Path:
    """A local checkpoint folder: ``src`` itself, or a hub id fetched when online."""
    path = Path(src).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise CheckpointError(f"{path} is not a Hugging Face checkpoint: it has no config.json")
        return path
    if path.exists():
        raise CheckpointError(f"{path} is a file; give the checkpoint's folder")
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        raise CheckpointError(f"{src} is not a local folder, and HF_HUB_OFFLINE forbids the hub")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(str(src)))
    except Exception as exc:
        raise CheckpointError(
            f"{src} is neither a local folder nor a reachable hub model: {exc}"
        ) from None


def load_config(src: Path, supported: dict[str, str], what: str) -> Any:
    """The checkpoint's config; refuses architectures not named in ``supported``.

    ``supported`` maps architecture class names to a short description for error messages.
    """
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(src, local_files_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read the config of {src}: {exc}") from None
    architectures = list(getattr(config, "architectures", None) or [])
    if not any(arch in supported for arch in architectures):
        raise UnsupportedArchitectureError(
            f"{src} is a {', '.join(architectures) or config.model_type} checkpoint; "
            f"'{what}' supports {', '.join(sorted(supported))}"
        )
    return config


def load_model(loader: Any, src: Path, **kwargs: Any) -> Any:
    """``loader.from_pretrained(src)`` in eval mode, with a clear error for a broken checkpoint."""
    try:
        model = loader.from_pretrained(src, local_files_only=True, **kwargs)
    except Exception as exc:
        raise CheckpointError(f"cannot load the weights of {src}: {exc}") from None
    return model.eval()


def load_fast_tokenizer(src: Path) -> Any:
    """The checkpoint's fast (Rust) tokenizer; sentencepiece models are converted."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(src, use_fast=True, local_files_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"cannot load the tokenizer of {src}: {exc} (a sentencepiece-only checkpoint needs "
            "`pip install sentencepiece protobuf` to be converted to tokenizer.json)"
        ) from None
    if not getattr(tokenizer, "is_fast", False):
        raise CheckpointError(f"{src} has no fast tokenizer, so no tokenizer.json can be written")
    return tokenizer


def save_tokenizer(tokenizer: Any, out: Path, name: str = "tokenizer.json") -> str:
    """Write the fast tokenizer's own tokenizer.json into the bundle."""
    tokenizer.backend_tokenizer.save(str(out / name))
    return name


def copy_docs(src: Path, out: Path) -> list[str]:
    """Copy the model card and licence files of ``src``; returns their names."""
    names: list[str] = []
    for pattern in DOC_PATTERNS:
        for path in sorted(src.glob(pattern)):
            if path.is_file() and path.name not in names:
                shutil.copyfile(path, out / path.name)
                names.append(path.name)
    return names


def license_of(src: Path) -> str:
    """The licence id from the model card's front matter, else 'unknown'."""
    card = src / "README.md"
    if card.is_file():
        text = card.read_text(encoding="utf-8", errors="replace")
        if text.startswith("---"):
            front = text.split("---", 2)[1] if text.count("---") >= 2 else ""
            match = _LICENSE_LINE.search(front)
            if match:
                return match.group(1)
    return "unknown"


def source_name(src: str | Path) -> str:
    """How the manifest names the source: the hub id, or the local folder's name."""
    path = Path(src).expanduser()
    return path.resolve().name if path.is_dir() else str(src)


def step_bar(desc: str, total: int) -> Any:
    """A tqdm bar counting the steps of a long operation (on stderr)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", leave=False)


def onnx_io_names(model_path: Path) -> tuple[list[str], list[str]]:
    """Input and output names of an ONNX graph (external data is not loaded)."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    initializers = {init.name for init in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in initializers]
    return inputs, [o.name for o in model.graph.output]


def onnx_files(folder: Path, model_file: str) -> list[str]:
    """The ONNX model and any external-data files written beside it."""
    names = [model_file]
    names += sorted(
        p.name for p in folder.iterdir()
        if p.name != model_file and p.name.startswith(model_file) and p.is_file()
    )
    return names


def export_onnx(model: Any, out: Path, task: str, opset: int | None) -> str:
    """Run optimum's exporter for ``task`` into a scratch folder; keep only the ONNX files."""
    from optimum.exporters.onnx import onnx_export_from_model

    scratch = out / "_optimum"
    try:
        onnx_export_from_model(model, scratch, task=task, opset=opset, do_validation=False)
    except Exception as exc:
        raise ToolchainError(f"optimum could not export the model to ONNX: {exc}") from None
    for name in onnx_files(scratch, "model.onnx"):
        shutil.move(scratch / name, out / name)
    shutil.rmtree(scratch)
    return "model.onnx"
