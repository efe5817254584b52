"""Facts of the shipped bundles that the model cards quote: sizes, shapes and parameter counts.

    python -m benchmarks.bundles --out docs/results/bundles.json

Sizes are of the files the manifest lists (the model alone, and the whole bundle with its
manifest); parameters are the elements of the graph's weight initializers, quantization scales
and zero points left out, so an INT8 graph counts the same weights as its fp32 source.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx

from benchmarks.common import REPO, machine, write_json
from edge_lingua.bundle import read_manifest
from edge_lingua.compressor import SHIPPED_MODELS

QUANTIZATION_PARAMETERS = ("_scale", "_zero_point")


def bundle_facts(bundle: Path) -> dict[str, object]:
    manifest = read_manifest(bundle)
    sizes = {name: (bundle / name).stat().st_size for name in manifest.files}
    model = onnx.load(str(bundle / manifest.model_file), load_external_data=False)
    weights = [t for t in model.graph.initializer
               if not t.name.endswith(QUANTIZATION_PARAMETERS)]
    parameters = int(sum(np.prod(t.dims, dtype=np.int64) for t in weights))
    embeddings = int(sum(np.prod(t.dims, dtype=np.int64) for t in weights
                         if "embeddings" in t.name and len(t.dims) == 2))
    vocabulary, hidden = next(t.dims for t in weights if "word_embeddings" in t.name)
    fidelity = json.loads((bundle / "fidelity.json").read_text(encoding="utf-8"))
    attention = [n for n in model.graph.node if n.op_type in ("Attention", "QAttention")]
    heads = {a.i for n in attention for a in n.attribute if a.name == "num_heads"}
    return {
        "layers": len(attention),
        "heads": heads.pop() if len(heads) == 1 else None,
        "hidden": int(hidden),
        "labels": manifest.num_labels,
        "keep_label": manifest.keep_label,
        "model_mb": sizes[manifest.model_file] / 1e6,
        "bundle_mb": (sum(sizes.values()) + (bundle / "manifest.json").stat().st_size) / 1e6,
        "parameters_millions": parameters / 1e6,
        "embedding_parameters_millions": embeddings / 1e6,
        "vocabulary": int(vocabulary),
        "fidelity_min_agreement": fidelity["min_agreement"],
        "quantization": manifest.quantization,
        "max_seq_len": manifest.max_seq_len,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    facts = {name: bundle_facts(REPO / "edge_lingua" / "models" / name) for name in SHIPPED_MODELS}
    write_json(args.out, {"section": "bundles", "machine": machine(), "bundles": facts})
    print(json.dumps(facts, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
