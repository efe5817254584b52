"""Install a quantized bundle as one of the package's models (``default``, ``small``).

Copies every file of the bundle into ``edge_lingua/models/<name>`` (which must not exist),
replaces README.md with the model card, and rewrites the manifest (checksums recomputed by
``edge_lingua.bundle.write_manifest``) with the licence spelled out: the model is a Gemma
Model Derivative with an Apache-2.0 backbone.

    python -m training.ship artifacts/bundle-int8 edge_lingua/models/default \
        --card docs/MODEL_CARD.md
    python -m training.ship artifacts/int8-s025 edge_lingua/models/small \
        --card docs/MODEL_CARD_SMALL.md --source "$SMALL_SOURCE"   # training/README.md
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from edge_lingua.bundle import load_bundle, write_manifest

LICENSE = (
    "Gemma Terms of Use (ai.google.dev/gemma/terms): a Model Derivative of Gemma 3 270M, "
    "whose outputs were distilled into it; backbone all-MiniLM-L6-v2 under Apache-2.0. "
    "See LICENSE."
)
SOURCE = "sentence-transformers/all-MiniLM-L6-v2 fine-tuned on Gemma 3 270M self-information"


def ship(bundle: Path, out: Path, card: Path, source_model: str = SOURCE,
         license: str = LICENSE) -> None:
    source = load_bundle(bundle, kind="token-classifier")
    out.mkdir(parents=True, exist_ok=False)
    for name in source.manifest.files:
        shutil.copyfile(source.file(name), out / name)
    shutil.copyfile(card, out / "README.md")
    fields = source.manifest.to_json()
    for key in ("format_version", "files"):
        fields.pop(key)
    fields.pop("question_aware", None)  # implied by input_format
    fields.update(license=license, source_model=source_model)
    names = list(source.manifest.files)
    if "README.md" not in names:
        names.append("README.md")
    write_manifest(out, files=names, **fields)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="install a bundle as a package model")
    parser.add_argument("bundle", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--card", type=Path, required=True)
    parser.add_argument("--source", default=SOURCE, help="the manifest's source_model")
    parser.add_argument("--license", default=LICENSE, help="the manifest's license")
    args = parser.parse_args(argv)
    ship(args.bundle, args.out, args.card, args.source, args.license)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
