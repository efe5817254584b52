"""Move MiniLM weights to and from the GPU machine, and build the exportable checkpoint.

The GPU machine takes at most 64 MiB of files and gives back files of at most 16 MiB, so
weights travel as fp16 safetensors shards; a tensor larger than a shard is cut along its
first axis into ``name@@<part>`` pieces and glued back on load.

    python -m training.checkpoint shrink SRC_FOLDER OUT_FOLDER     # fp32 checkpoint -> fp16 shards
    python -m training.checkpoint assemble SHARDS OUT_CHECKPOINT   # trained shards -> HF folder
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

SHARD_BYTES = 15 * 1024 * 1024
_PART = "@@"
# files of the MiniLM folder the tokenizer and config need
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "vocab.txt")


def save_shards(tensors: dict[str, np.ndarray], out: Path, prefix: str = "weights") -> list[Path]:
    """Write ``tensors`` as fp16 shards of at most :data:`SHARD_BYTES` each."""
    out.mkdir(parents=True, exist_ok=True)
    pieces: list[tuple[str, np.ndarray]] = []
    for name, value in tensors.items():
        array = np.ascontiguousarray(value.astype(np.float16) if value.dtype.kind == "f" else value)
        if array.nbytes <= SHARD_BYTES or array.ndim == 0:
            pieces.append((name, array))
            continue
        rows = max(1, SHARD_BYTES // (array.nbytes // array.shape[0]))
        for part, start in enumerate(range(0, array.shape[0], rows)):
            pieces.append((f"{name}{_PART}{part}", np.ascontiguousarray(array[start:start + rows])))
    shards: list[dict[str, np.ndarray]] = [{}]
    size = 0
    for name, array in pieces:
        if shards[-1] and size + array.nbytes > SHARD_BYTES:
            shards.append({})
            size = 0
        shards[-1][name] = array
        size += array.nbytes
    paths = []
    for index, shard in enumerate(shards):
        path = out / f"{prefix}-{index:02d}.safetensors"
        save_file(shard, str(path))
        paths.append(path)
    return paths


def load_shards(folder: Path, prefix: str = "weights") -> dict[str, np.ndarray]:
    """Read the shards back, gluing cut tensors together (values stay fp16)."""
    parts: dict[str, dict[int, np.ndarray]] = {}
    tensors: dict[str, np.ndarray] = {}
    for path in sorted(folder.glob(f"{prefix}-*.safetensors")):
        for name, array in load_file(str(path)).items():
            if _PART in name:
                base, part = name.rsplit(_PART, 1)
                parts.setdefault(base, {})[int(part)] = array
            else:
                tensors[name] = array
    for base, chunks in parts.items():
        tensors[base] = np.concatenate([chunks[i] for i in sorted(chunks)])
    if not tensors:
        raise FileNotFoundError(f"no {prefix}-*.safetensors shards in {folder}")
    return tensors


def shrink(src: Path, out: Path) -> None:
    """fp16 shards of a checkpoint, plus its config and tokenizer files."""
    save_shards(load_file(str(src / "model.safetensors")), out)
    for name in ("config.json", *TOKENIZER_FILES):
        shutil.copyfile(src / name, out / name)


def assemble(shards: Path, base: Path, out: Path, card: Path, licence: Path) -> None:
    """A Hugging Face checkpoint folder (fp32 weights) from trained shards.

    ``config.json`` comes with the shards (written by ``training.train``); tokenizer files
    from ``base``; ``card`` becomes README.md (its front matter names the licence) and
    ``licence`` LICENSE, which ``edge-lingua export classifier`` copies into the bundle.
    """
    out.mkdir(parents=True, exist_ok=False)
    tensors = {k: v.astype(np.float32) if v.dtype == np.float16 else v
               for k, v in load_shards(shards).items()}
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((shards / "config.json").read_text(encoding="utf-8"))
    config["torch_dtype"] = "float32"
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    for name in TOKENIZER_FILES:  # vocab.txt only where the tokenizer has one (WordPiece)
        if name == "tokenizer.json" or (base / name).exists():
            shutil.copyfile(base / name, out / name)
    shutil.copyfile(card, out / "README.md")
    shutil.copyfile(licence, out / "LICENSE")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="MiniLM weights in fp16 shards")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("shrink")
    p.add_argument("src", type=Path)
    p.add_argument("out", type=Path)
    p = sub.add_parser("assemble")
    p.add_argument("shards", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--base", type=Path, required=True)
    p.add_argument("--card", type=Path, required=True)
    p.add_argument("--licence", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "shrink":
        shrink(args.src, args.out)
    else:
        assemble(args.shards, args.base, args.out, args.card, args.licence)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
