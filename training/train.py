"""Fine-tune MiniLM with a keep/drop head on the teacher's soft word targets.

Every token of a word learns that word's target ``t`` with a soft cross-entropy
``-(t log p_keep + (1 - t) log p_drop)``; [CLS]/[SEP]/padding are masked. A held-out share
of the texts measures word F1 against the teacher at rate 0.5 (words picked by probability
within a token budget, as the runtime does); every ``--lr`` given is tried and the best one
by that F1 (or by ``--select``) is saved as fp16 shards (``training.checkpoint``) plus its
config.json.

Labels with ``question_ids`` (``training.question_labels``) train the question-aware pair
input ``[CLS] question [SEP] window [SEP]`` (token types 0 then 1; the question cut to
``--max-question-tokens``, the window to what is left of 512); the loss counts the window's
tokens only, and validation also reports the share of gold evidence words kept at rate 0.33.

    python -m training.train --labels artifacts/labels.jsonl --base artifacts/minilm_fp16 \
        --out artifacts/trained --lr 5e-5 1e-4 --epochs 6 --seed 0
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import BertConfig, BertForTokenClassification

from edge_lingua.selection import select
from training.checkpoint import load_shards, save_shards

CLS, SEP, PAD = 101, 102, 0
MAX_LEN = 512
LABELS = {0: "drop", 1: "keep"}


@dataclass(frozen=True)
class Item:
    """One labelled text as the encoder sees it."""

    ids: np.ndarray  # [n] with [CLS] ... [SEP] (or [CLS] question [SEP] ... [SEP])
    token_types: np.ndarray  # [n] 0 up to the question's [SEP], 1 after
    start: int  # index of the window's first token in ``ids``
    token_targets: np.ndarray  # [n] keep target per token (0 on special tokens)
    token_mask: np.ndarray  # [n] 1 where the loss counts
    token_word: np.ndarray  # [n - 2] word index of each inner token
    word_targets: np.ndarray  # [n_words]
    evidence: np.ndarray  # [n_words] 1 on gold evidence words (all 0 when none)


def pair_prefix(question_ids: list[int], max_question_tokens: int) -> np.ndarray:
    """``[CLS] question [SEP]`` with the question cut to ``max_question_tokens`` (the runtime's
    ``edge_lingua.question`` builds the same)."""
    return np.asarray([CLS, *question_ids[:max_question_tokens], SEP], dtype=np.int64)


def load_items(path: Path, max_question_tokens: int = 64) -> list[Item]:
    """Labelled texts, cut to what fits in ``MAX_LEN`` tokens beside the question."""
    items = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            question = row.get("question_ids") or []
            head = pair_prefix(question, max_question_tokens) if question else np.r_[CLS]
            ids = np.asarray(row["token_ids"][: MAX_LEN - head.size - 1], dtype=np.int64)
            if ids.size == 0:
                continue
            word = np.asarray(row["token_word"][: ids.size], dtype=np.int64)
            n_words = int(word.max()) + 1
            targets = np.asarray(row["targets"], dtype=np.float32)[:n_words]
            evidence = np.asarray(row.get("evidence") or np.zeros(n_words), np.float32)[:n_words]
            zeros = np.zeros(head.size)
            types = np.zeros(head.size + ids.size + 1, dtype=np.int64)
            if question:
                types[head.size :] = 1
            items.append(Item(
                ids=np.r_[head, ids, SEP],
                token_types=types,
                start=int(head.size),
                token_targets=np.r_[zeros, targets[word], 0.0].astype(np.float32),
                token_mask=np.r_[zeros, np.ones(ids.size), 0.0].astype(np.float32),
                token_word=word,
                word_targets=targets,
                evidence=evidence,
            ))
    return items


def collate(batch: list[Item], device: torch.device) -> dict[str, torch.Tensor]:
    width = max(item.ids.size for item in batch)
    out = {
        "input_ids": np.full((len(batch), width), PAD, np.int64),
        "attention_mask": np.zeros((len(batch), width), np.int64),
        "token_type_ids": np.zeros((len(batch), width), np.int64),
        "targets": np.zeros((len(batch), width), np.float32),
        "mask": np.zeros((len(batch), width), np.float32),
    }
    for row, item in enumerate(batch):
        n = item.ids.size
        out["input_ids"][row, :n] = item.ids
        out["attention_mask"][row, :n] = 1
        out["token_type_ids"][row, :n] = item.token_types
        out["targets"][row, :n] = item.token_targets
        out["mask"][row, :n] = item.token_mask
    return {k: torch.from_numpy(v).to(device) for k, v in out.items()}


def soft_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    logp = torch.log_softmax(logits.float(), dim=-1)
    per_token = -(targets * logp[..., 1] + (1 - targets) * logp[..., 0])
    return (per_token * mask).sum() / mask.sum()


def _word_probs(item: Item, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n_words = item.word_targets.size
    costs = np.bincount(item.token_word, minlength=n_words).astype(np.float64)
    sums = np.bincount(item.token_word, weights=probs, minlength=n_words)
    return np.divide(sums, costs, out=np.zeros(n_words), where=costs > 0), costs


def _kept_and_evidence(items: list[Item], token_probs: list[np.ndarray], rate: float
                       ) -> list[tuple[np.ndarray, np.ndarray]]:
    """(words kept at ``rate``, gold evidence words) of every item that has evidence; words are
    picked by probability within a token budget, as the runtime does."""
    out = []
    for item, probs in zip(items, token_probs, strict=True):
        if not item.evidence.any():
            continue
        word_probs, costs = _word_probs(item, probs)
        none = np.zeros(costs.size, dtype=bool)
        out.append((select(word_probs, costs, none, rate * costs.sum()), item.evidence > 0))
    return out


def evidence_kept(items: list[Item], token_probs: list[np.ndarray], rate: float) -> float:
    """Share of gold evidence words kept at ``rate`` (over the items that have evidence)."""
    pairs = _kept_and_evidence(items, token_probs, rate)
    kept = sum(int((ours & gold).sum()) for ours, gold in pairs)
    return kept / max(sum(int(gold.sum()) for _, gold in pairs), 1)


def answers_kept(items: list[Item], token_probs: list[np.ndarray], rate: float) -> float:
    """Share of the items with evidence whose evidence words are all kept at ``rate``."""
    pairs = _kept_and_evidence(items, token_probs, rate)
    return sum(bool(ours[gold].all()) for ours, gold in pairs) / max(len(pairs), 1)


def word_f1(items: list[Item], token_probs: list[np.ndarray], rate: float) -> float:
    """Micro F1 of the words kept from model probabilities vs from teacher targets."""
    tp = fp = fn = 0
    for item, probs in zip(items, token_probs, strict=True):
        word_probs, costs = _word_probs(item, probs)
        none = np.zeros(costs.size, dtype=bool)
        budget = rate * costs.sum()
        ours = select(word_probs, costs, none, budget)
        teacher = select(item.word_targets.astype(np.float64), costs, none, budget)
        tp += int((ours & teacher).sum())
        fp += int((ours & ~teacher).sum())
        fn += int((~ours & teacher).sum())
    return 2 * tp / max(2 * tp + fp + fn, 1)


@torch.no_grad()
def evaluate(model: torch.nn.Module, items: list[Item], device: torch.device) -> dict[str, float]:
    model.eval()
    probs, losses = [], []
    for start in range(0, len(items), 64):
        batch = items[start : start + 64]
        feed = collate(batch, device)
        logits = model(input_ids=feed["input_ids"], attention_mask=feed["attention_mask"],
                       token_type_ids=feed["token_type_ids"]).logits
        losses.append(float(soft_loss(logits, feed["targets"], feed["mask"])) * len(batch))
        keep = torch.softmax(logits.float(), dim=-1)[..., 1].cpu().numpy()
        probs += [keep[row, item.start : item.ids.size - 1] for row, item in enumerate(batch)]
    model.train()
    return {"loss": sum(losses) / len(items), "f1_0.5": word_f1(items, probs, 0.5),
            "f1_0.33": word_f1(items, probs, 0.33),
            "evidence_kept_0.33": evidence_kept(items, probs, 0.33),
            "answers_kept_0.33": answers_kept(items, probs, 0.33)}


def build_model(base: Path, device: torch.device) -> BertForTokenClassification:
    config = BertConfig.from_pretrained(base, num_labels=2, id2label=LABELS,
                                        label2id={v: k for k, v in LABELS.items()})
    config.architectures = ["BertForTokenClassification"]
    model = BertForTokenClassification(config)
    weights = {k: torch.from_numpy(v.astype(np.float32) if v.dtype == np.float16 else v)
               for k, v in load_shards(base).items()}
    # a trained token classifier (``bert.*`` and ``classifier.*``, e.g. the shipped default's
    # weights from ``training.distill.teacher_weights``) starts whole; a backbone gets a new head
    whole = "classifier.weight" in weights
    target = model if whole else model.bert
    missing, unexpected = target.load_state_dict(weights, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    unexpected = [k for k in unexpected if not k.endswith("position_ids")
                  and not k.startswith("pooler.")]  # the token head needs no pooler
    if missing or unexpected:
        raise RuntimeError(f"backbone weights do not fit: missing {missing}, extra {unexpected}")
    return model.to(device)


def train_one(args: argparse.Namespace, lr: float, train: list[Item], val: list[Item],
              device: torch.device, report: list[Item] | None = None
              ) -> tuple[BertForTokenClassification, dict[str, float]]:
    """One learning rate; the best epoch by ``args.select`` on ``val``. ``report`` (held-out
    labels) is only measured, as ``report_*`` metrics."""
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    model = build_model(args.base, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    steps = args.epochs * math.ceil(len(train) / args.batch)
    warmup = max(1, int(0.06 * steps))
    def factor(step: int) -> float:  # linear warm-up, then linear decay to 0
        return min((step + 1) / warmup, max(0.0, (steps - step) / max(steps - warmup, 1)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    best: dict[str, float] = {args.select: -1.0}
    best_state = None
    for epoch in range(args.epochs):
        order = train[:]
        rng.shuffle(order)
        for start in range(0, len(order), args.batch):
            feed = collate(order[start : start + args.batch], device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = model(input_ids=feed["input_ids"],
                               attention_mask=feed["attention_mask"],
                               token_type_ids=feed["token_type_ids"]).logits
            loss = soft_loss(logits, feed["targets"], feed["mask"])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
        metrics = evaluate(model, val, device) | {"epoch": epoch + 1, "lr": lr}
        if report:
            metrics |= {f"report_{k}": v for k, v in evaluate(model, report, device).items()}
        print(json.dumps(metrics), flush=True)
        if metrics[args.select] > best[args.select]:
            best = metrics
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    assert best_state is not None
    model.load_state_dict(best_state)
    return model, best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fine-tune MiniLM as a keep/drop classifier")
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--base", type=Path, required=True, help="fp16 shards + config.json")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--lr", type=float, nargs="+", default=[5e-5])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--val-share", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-question-tokens", type=int, default=64)
    parser.add_argument("--select", default="f1_0.5",
                        choices=["f1_0.5", "f1_0.33", "evidence_kept_0.33", "answers_kept_0.33"],
                        help="validation metric that picks the epoch and learning rate")
    parser.add_argument("--report", type=Path,
                        help="held-out labels measured every epoch, never used to choose")
    parser.add_argument("--extra", type=Path,
                        help="more labels to train on, never validated on (training.cloze)")
    args = parser.parse_args(argv)

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    items = load_items(args.labels, args.max_question_tokens)
    question_aware = any(item.start > 1 for item in items)
    random.Random(args.seed).shuffle(items)
    n_val = max(1, int(len(items) * args.val_share))
    val, train = items[:n_val], items[n_val:]
    if args.extra:  # after the split: validation stays the same items with or without them
        train += load_items(args.extra, args.max_question_tokens)
    report = load_items(args.report, args.max_question_tokens) if args.report else None
    print(f"{len(train)} train / {len(val)} validation texts on {device}", flush=True)
    started = time.time()
    results = []
    for lr in args.lr:
        model, metrics = train_one(args, lr, train, val, device, report)
        results.append((metrics[args.select], lr, metrics, model))
    _, lr, metrics, model = max(results, key=lambda r: r[0])
    save_shards({k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}, args.out)
    if question_aware:  # read by `edge-lingua export classifier` into the bundle manifest
        model.config.edge_lingua_max_question_tokens = args.max_question_tokens
    model.config.save_pretrained(args.out)
    summary = {"chosen": metrics, "tried": [r[2] for r in results], "train_texts": len(train),
               "val_texts": len(val), "seconds": round(time.time() - started, 1),
               "device": str(device)}
    (args.out / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
