"""Teacher labels in two halves around a GPU run (the CPU teacher does ~5 texts a minute here).

``prepare``: llama.cpp tokenizes every labelling text (same texts and order as
``training.build_labels``) and writes ids and character offsets. ``finish``: reads the
log-probabilities ``training.teacher_gpu`` computed on the GPU and writes the same label
JSONL as ``training.build_labels`` (information per word, targets).

    python -m training.gpu_labels prepare artifacts/teacher_tokens.jsonl
    # on the GPU: python -m training.teacher_gpu GGUF teacher_tokens.jsonl teacher_logprobs.jsonl
    python -m training.gpu_labels finish artifacts/teacher_tokens.jsonl \
        artifacts/teacher_logprobs.jsonl artifacts/labels_gpu.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from edge_lingua.compressor import load_tokenizer
from edge_lingua.perplexity.llama_scorer import char_offsets
from edge_lingua.segmentation import segment
from training.build_labels import texts
from training.corpus import gsm8k
from training.teacher import (
    MINILM_TOKENIZER,
    Scored,
    gemma_path,
    information_from_tokens,
    label_record,
    word_targets,
)


def labelling_texts(seed: int, quality_every: int) -> list[tuple[str, str]]:
    """``build_labels``' texts plus every GSM8K train problem with its worked solution.

    The chain-of-thought texts teach what a reader needs from a solution (numbers, operations)
    for few-shot prompts; the question-only texts match the prompts users compress.
    """
    cot = [(f"{e.uid}-cot", f"{e.question}\n{e.solution}") for e in gsm8k("train")]
    return texts(seed, quality_every) + cot


def prepare(out: Path, seed: int, quality_every: int) -> None:
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(gemma_path()), vocab_only=True, verbose=False)
    with out.open("w", encoding="utf-8") as handle:
        for uid, text in labelling_texts(seed, quality_every):
            data = text.encode("utf-8")
            ids = llm.tokenize(data, add_bos=False, special=False)
            offsets = char_offsets(text, data, [llm.detokenize([t]) for t in ids])
            handle.write(json.dumps({"uid": uid, "text": text, "ids": ids,
                                     "offsets": offsets.tolist(), "bos": llm.token_bos()}) + "\n")


def finish(tokens: Path, logprobs: Path, out: Path) -> None:
    tokenizer = load_tokenizer(MINILM_TOKENIZER)
    scores = {}
    with logprobs.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            scores[row["uid"]] = np.asarray(row["logprobs"], dtype=np.float64)
    with tokens.open(encoding="utf-8") as src, out.open("w", encoding="utf-8") as dst:
        for line in src:
            row = json.loads(line)
            seg = segment(tokenizer, row["text"])
            surprisal = -scores[row["uid"]]
            information = information_from_tokens(seg, np.asarray(row["offsets"]), surprisal)
            scored = Scored(seg=seg, information=information,
                            targets=word_targets(seg, information))
            dst.write(json.dumps(label_record(row["uid"], scored), ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("out", type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quality-every", type=int, default=25)
    f = sub.add_parser("finish")
    f.add_argument("tokens", type=Path)
    f.add_argument("logprobs", type=Path)
    f.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    if args.step == "prepare":
        prepare(args.out, args.seed, args.quality_every)
    else:
        finish(args.tokens, args.logprobs, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
