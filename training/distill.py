"""A smaller student (3 or 4 encoder layers) distilled from the shipped default bundle.

The teacher is the shipped INT8 bundle itself (unfused; for the fused default, its graph rebuilt
by ``training.rebuild_fp32``), turned back into an fp32 PyTorch model by
dequantizing its ONNX initializers (``int8 x per-channel scale``; the MatMuls the quantizer
kept fp32 are read as they are). The student starts from a subset of the teacher's layers and
shares its (frozen) embeddings; it learns the teacher's keep probability on every token of
packed TRAIN-split text (GSM8K train, XQuAD train articles in six languages, QMSum train
meetings) with the soft cross-entropy of ``training.train``.

    python -m training.distill prepare artifacts/distill_windows.npz            # here, CPU
    python -m training.distill train artifacts/distill_windows.npz \\
        --bundle edge_lingua/models/default --config $M/config.json \\
        --layers 0 2 4 5 --out artifacts/student4                                # GPU machine
    python -m training.distill assemble artifacts/student4 artifacts/student4-ckpt \\
        --bundle edge_lingua/models/default --base $M --card CARD --licence LICENCE

``assemble`` gives a Hugging Face checkpoint that ``edge-lingua export classifier`` and
``edge-lingua quantize`` turn into a bundle (training/README.md).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

CLS, SEP, PAD = 101, 102, 0
MAX_LEN = 512
_WEIGHT_NODE = re.compile(r"^/(bert/encoder/layer\.\d+/.+|classifier)/MatMul(_quant)?$")
def teacher_weights(onnx_path: Path) -> dict[str, np.ndarray]:
    """The fp32 ``BertForTokenClassification`` state dict of an unfused (dynamic INT8 or fp32)
    export.

    Linear weights are read from each MatMul's second input (quantized ones dequantized per
    output channel) and transposed to PyTorch's ``[out, in]``; biases and LayerNorms keep the
    initializer names the exporter gave them.
    """
    import onnx

    from training.rebuild_fp32 import dequantized_initializers

    model = onnx.load(str(onnx_path))
    if any(node.op_type == "QAttention" for node in model.graph.node):
        raise ValueError(f"{onnx_path} is fused (QAttention): rebuild its unfused fp32 graph "
                         "first with training.rebuild_fp32 (training/README.md, step 3b)")
    values = dequantized_initializers(model)  # names before quantization, fp32
    state = {name: value.astype(np.float32) for name, value in values.items()
             if name.startswith(("bert.", "classifier."))}
    for node in model.graph.node:
        match = _WEIGHT_NODE.match(node.name)
        if not match or node.op_type not in ("MatMul", "MatMulInteger"):
            continue
        weight = node.input[1].removesuffix("_quantized")
        if weight not in values:  # attention's activation x activation MatMuls
            continue
        prefix = match.group(1).replace("/", ".")
        state[f"{prefix}.weight"] = np.ascontiguousarray(values[weight].T.astype(np.float32))
    return state


def build_teacher(
    bundle: Path,
    config: Path,
    read_weights: Callable[[Path], dict[str, np.ndarray]] = teacher_weights,
):
    """An unfused bundle (the default's rebuilt fp32 graph, or an unfused INT8 bundle) as an
    fp32 ``BertForTokenClassification`` (eval mode). ``read_weights(model_path)`` gives the
    state dict as numpy arrays."""
    import torch
    from transformers import BertConfig, BertForTokenClassification

    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    labels = {int(k): v for k, v in manifest["extra"]["id2label"].items()}
    cfg = BertConfig.from_json_file(str(config))
    cfg.num_labels = len(labels)
    cfg.id2label, cfg.label2id = labels, {v: k for k, v in labels.items()}
    cfg.architectures = ["BertForTokenClassification"]
    model = BertForTokenClassification(cfg)
    weights = {k: torch.from_numpy(v) for k, v in
               read_weights(bundle / manifest["model_file"]).items()}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise RuntimeError(f"the bundle's weights do not fit: missing {missing}, "
                           f"extra {unexpected}")
    return model.eval()


def student_from(teacher, layers: list[int]):
    """A copy of ``teacher`` that keeps only the encoder layers ``layers`` (in that order)."""
    import copy

    import torch

    student = copy.deepcopy(teacher)
    student.bert.encoder.layer = torch.nn.ModuleList(
        copy.deepcopy(teacher.bert.encoder.layer[i]) for i in layers)
    student.config.num_hidden_layers = len(layers)
    for index, layer in enumerate(student.bert.encoder.layer):  # keep cache indices consistent
        layer.attention.self.layer_idx = index
    return student


# ---------------------------------------------------------------- training text (CPU, here)

def _train_texts(seed: int) -> dict[str, list[str]]:
    from training.corpus import gsm8k
    from training.qa_corpus import XQUAD_LANGUAGES, qmsum_meetings, xquad_articles

    rng = random.Random(seed)
    sources = {
        "gsm8k": [e.cot for e in gsm8k("train")],
        "xquad": [p[0].paragraph for lang in XQUAD_LANGUAGES
                  for p in xquad_articles(lang, "train") if p],
        "qmsum": ["\n".join(m.turns) for m in qmsum_meetings("train")],
    }
    for texts in sources.values():
        rng.shuffle(texts)
    return sources


def pack_windows(token_lists: list[list[int]], limit: int, rng: random.Random) -> list[list[int]]:
    """Consecutive texts' tokens cut into windows of random length (64..510 inner tokens)."""
    stream = [t for tokens in token_lists for t in tokens]
    windows, start = [], 0
    while start < len(stream) and len(windows) < limit:
        size = rng.randint(64, MAX_LEN - 2)
        windows.append([CLS, *stream[start:start + size], SEP])
        start += size
    return windows


def prepare(out: Path, tokenizer: Path, per_source: int, seed: int) -> dict[str, int]:
    """Write packed windows of TRAIN-split text as ``ids`` (uint16) and ``lengths``."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer))
    rng = random.Random(seed)
    windows, counts = [], {}
    for name, texts in _train_texts(seed).items():
        tokens = [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
        chosen = pack_windows(tokens, per_source, rng)
        counts[name] = len(chosen)
        windows += chosen
    rng.shuffle(windows)
    lengths = np.asarray([len(w) for w in windows], dtype=np.int32)
    ids = np.zeros((len(windows), MAX_LEN), dtype=np.uint16)
    for row, window in enumerate(windows):
        ids[row, : len(window)] = window
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, ids=ids, lengths=lengths)
    return counts


# ---------------------------------------------------------------- training (GPU machine)

def _batches(ids: np.ndarray, lengths: np.ndarray, order: np.ndarray, size: int, device):
    import torch

    for start in range(0, len(order), size):
        rows = order[start:start + size]
        width = int(lengths[rows].max())
        batch = torch.from_numpy(ids[rows, :width].astype(np.int64)).to(device)
        mask = (torch.arange(width, device=device)[None, :]
                < torch.from_numpy(lengths[rows]).to(device)[:, None]).long()
        inner = mask.clone()
        inner[:, 0] = 0
        inner[torch.arange(len(rows), device=device),
              torch.from_numpy(lengths[rows] - 1).to(device)] = 0  # [CLS] and [SEP] out of the loss
        yield batch, mask, inner.float()


def _keep(model, batch, mask):
    import torch

    logits = model(input_ids=batch, attention_mask=mask,
                   token_type_ids=torch.zeros_like(batch)).logits
    return logits, torch.softmax(logits.float(), dim=-1)[..., 1]


def evaluate(student, teacher, ids, lengths, device) -> dict[str, float]:
    """Held-out windows: soft loss, and F1 of the tokens kept at rates 0.5 and 0.33 (each
    window's top share by keep probability, student vs teacher)."""
    import torch

    from training.train import soft_loss

    student.eval()
    loss = tokens = 0.0
    hits = {0.5: [0, 0], 0.33: [0, 0]}
    with torch.no_grad():
        for batch, mask, inner in _batches(ids, lengths, np.arange(len(ids)), 128, device):
            _, target = _keep(teacher, batch, mask)
            logits, probs = _keep(student, batch, mask)
            loss += float(soft_loss(logits, target, inner)) * float(inner.sum())
            tokens += float(inner.sum())
            for row in range(batch.shape[0]):
                n = int(inner[row].sum())
                s, t = probs[row, 1:n + 1], target[row, 1:n + 1]
                for rate in hits:
                    k = max(1, round(rate * n))
                    ours = set(torch.topk(s, k).indices.tolist())
                    theirs = set(torch.topk(t, k).indices.tolist())
                    hits[rate][0] += len(ours & theirs)
                    hits[rate][1] += k
    student.train()
    return {"loss": loss / max(tokens, 1), **{f"token_f1_{r}": h[0] / max(h[1], 1)
                                              for r, h in hits.items()}}


def train(windows: Path, bundle: Path, config: Path, layers: list[int], out: Path, *,
          epochs: int, batch: int, lr: float, val_windows: int, seed: int) -> dict:
    """Distil a ``len(layers)``-layer student; keep the epoch with the best held-out F1 at 0.5.

    Only the encoder layers and the head train (the embeddings stay the teacher's), so the
    shards that come back hold just those (``training.checkpoint.save_shards``, fp16).
    """
    import torch

    from training.checkpoint import save_shards
    from training.train import soft_loss

    torch.manual_seed(seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = np.load(windows)
    ids, lengths = data["ids"], data["lengths"]
    val = slice(0, val_windows)
    train_rows = np.arange(val_windows, len(ids))
    teacher = build_teacher(bundle, config).to(device)
    student = student_from(teacher, layers).to(device).train()
    for p in student.bert.embeddings.parameters():
        p.requires_grad_(False)
    params = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    steps = epochs * math.ceil(len(train_rows) / batch)
    warmup = max(1, int(0.06 * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(steps - warmup, 1))))
    rng = np.random.default_rng(seed)
    started = time.time()
    history = [{"epoch": 0, **evaluate(student, teacher, ids[val], lengths[val], device)}]
    print(json.dumps(history[-1]), flush=True)
    best, best_state = history[-1], None
    for epoch in range(epochs):
        for tokens, mask, inner in _batches(ids, lengths, rng.permutation(train_rows), batch,
                                            device):
            with torch.no_grad():
                _, target = _keep(teacher, tokens, mask)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits, _ = _keep(student, tokens, mask)
            loss = soft_loss(logits, target, inner)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
        history.append({"epoch": epoch + 1,
                        **evaluate(student, teacher, ids[val], lengths[val], device)})
        print(json.dumps(history[-1]), flush=True)
        if history[-1]["token_f1_0.5"] > best["token_f1_0.5"] or best_state is None:
            best = history[-1]
            best_state = {k: v.detach().cpu().numpy() for k, v in student.state_dict().items()
                          if not k.startswith("bert.embeddings.")}
    assert best_state is not None
    save_shards(best_state, out)
    student.config.save_pretrained(out)
    summary = {"layers": layers, "best": best, "history": history, "epochs": epochs,
               "batch": batch, "lr": lr, "train_windows": len(train_rows),
               "val_windows": val_windows, "seconds": round(time.time() - started, 1),
               "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu"}
    (out / "distill_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


# ---------------------------------------------------------------- checkpoint (CPU, here)

def assemble(shards: Path, out: Path, bundle: Path, base: Path, card: Path,
             licence: Path) -> None:
    """The student's HF checkpoint: its trained shards plus the teacher's embeddings."""
    import tempfile

    from training.checkpoint import assemble as assemble_checkpoint
    from training.checkpoint import load_shards, save_shards

    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    teacher = teacher_weights(bundle / manifest["model_file"])
    tensors = {k: v for k, v in teacher.items() if k.startswith("bert.embeddings.")}
    tensors |= load_shards(shards)
    with tempfile.TemporaryDirectory() as tmp:
        save_shards(tensors, Path(tmp))
        (Path(tmp) / "config.json").write_bytes((shards / "config.json").read_bytes())
        assemble_checkpoint(Path(tmp), base, out, card, licence)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="packed TRAIN-split windows (npz)")
    p.add_argument("out", type=Path)
    p.add_argument("--tokenizer", type=Path,
                   default=Path("edge_lingua/models/default/tokenizer.json"))
    p.add_argument("--per-source", type=int, default=6000)
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("train", help="distil a student (GPU)")
    p.add_argument("windows", type=Path)
    p.add_argument("--bundle", type=Path, default=Path("edge_lingua/models/default"))
    p.add_argument("--config", type=Path, required=True, help="the MiniLM config.json")
    p.add_argument("--layers", type=int, nargs="+", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--val-windows", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("assemble", help="trained shards -> HF checkpoint folder")
    p.add_argument("shards", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--bundle", type=Path, default=Path("edge_lingua/models/default"))
    p.add_argument("--base", type=Path, required=True)
    p.add_argument("--card", type=Path, required=True)
    p.add_argument("--licence", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "prepare":
        print(json.dumps(prepare(args.out, args.tokenizer, args.per_source, args.seed)))
    elif args.command == "train":
        summary = train(args.windows, args.bundle, args.config, args.layers, args.out,
                        epochs=args.epochs, batch=args.batch, lr=args.lr,
                        val_windows=args.val_windows, seed=args.seed)
        print(json.dumps(summary["best"]))
    else:
        assemble(args.shards, args.out, args.bundle, args.base, args.card, args.licence)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
