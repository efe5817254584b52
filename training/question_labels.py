"""Question-aware keep targets from the Gemma teacher (LongLLMLingua's contrastive perplexity).

For every word ``x`` of a context the teacher gives two numbers, pooled over the word's
characters as in ``training.teacher``:

* self-information ``-log p(x | prefix)``: what dropping the word loses in general;
* contrastive information ``log p(x | question, prefix) - log p(x | prefix)``: how much more
  predictable the question makes it, i.e. how much it is *about* the question.

A word's target mixes the percentile ranks of the two (``0.5 * si + 0.5 * ci``; self-information
alone without a question) with the gold evidence of the item (XQuAD answer spans, QMSum
relevant turns) at weight ``gold``: ``(1 - gold) * teacher + gold * evidence``. No word class
is forced to the top: numbers keep their rank on their merits. Three steps:

    python -m training.question_labels prepare items.jsonl teacher_tokens.jsonl  # llama.cpp ids
    python -m training.teacher_gpu GGUF teacher_tokens.jsonl logprobs.jsonl      # on the GPU
    python -m training.question_labels finish teacher_tokens.jsonl logprobs.jsonl \
        labels.jsonl --gold 0.5
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from edge_lingua.compressor import load_tokenizer
from edge_lingua.segmentation import Segmented, segment
from training.teacher import information_from_tokens, percentile_ranks

QUESTION_TEMPLATE = "Question: {question}\nContext:\n"


def evidence_words(seg: Segmented, spans: list[list[int]]) -> np.ndarray:
    """1.0 for every word that overlaps a gold evidence span, else 0.0."""
    marks = np.zeros(seg.n_words, dtype=np.float64)
    for start, end in spans:
        marks[(seg.word_spans[:, 0] < end) & (seg.word_spans[:, 1] > start)] = 1.0
    return marks


def word_targets(information: np.ndarray, contrast: np.ndarray | None, evidence: np.ndarray,
                 gold: float) -> np.ndarray:
    """Keep targets in [0, 1] from the teacher's view and the gold evidence (module docstring)."""
    teacher = percentile_ranks(information)
    if contrast is not None:
        teacher = 0.5 * teacher + 0.5 * percentile_ranks(contrast)
    if gold and evidence.any():
        return (1.0 - gold) * teacher + gold * evidence
    return teacher


def prepare(items: Path, out: Path) -> int:
    """Teacher rows: every context's Gemma ids (and, with a question, its question prefix)."""
    import llama_cpp

    from edge_lingua.perplexity.llama_scorer import char_offsets
    from training.teacher import gemma_path

    llm = llama_cpp.Llama(model_path=str(gemma_path()), vocab_only=True, verbose=False)
    n = 0
    with items.open(encoding="utf-8") as src, out.open("w", encoding="utf-8") as dst:
        for line in src:
            item = json.loads(line)
            data = item["text"].encode("utf-8")
            ids = llm.tokenize(data, add_bos=False, special=False)
            offsets = char_offsets(item["text"], data, [llm.detokenize([t]) for t in ids])
            prefix = []
            if item["question"]:
                prompt = QUESTION_TEMPLATE.format(question=item["question"])
                prefix = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=False)
            dst.write(json.dumps({**item, "ids": ids, "offsets": offsets.tolist(),
                                  "prefix": prefix, "bos": llm.token_bos()},
                                 ensure_ascii=False) + "\n")
            n += 1
    return n


def finish(tokens: Path, logprobs: Path, out: Path, tokenizer_path: Path, gold: float) -> int:
    """Label JSONL (the format ``training.train`` reads) with the question ids of each item."""
    tokenizer = load_tokenizer(tokenizer_path)
    plain: dict[str, np.ndarray] = {}
    given: dict[str, np.ndarray] = {}
    with logprobs.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            table = given if row.get("conditioned") else plain
            table[row["uid"]] = np.asarray(row["logprobs"], dtype=np.float64)
    n = 0
    with tokens.open(encoding="utf-8") as src, out.open("w", encoding="utf-8") as dst:
        for line in src:
            row = json.loads(line)
            seg = segment(tokenizer, row["text"])
            if seg.n_words == 0:
                continue
            offsets = np.asarray(row["offsets"])
            base = plain[row["uid"]]
            information = information_from_tokens(seg, offsets, -base)
            contrast = None
            if row["question"]:
                contrast = information_from_tokens(seg, offsets, given[row["uid"]] - base)
            evidence = evidence_words(seg, row["evidence"])
            targets = word_targets(information, contrast, evidence, gold)
            question_ids = tokenizer.encode(row["question"], add_special_tokens=False).ids
            dst.write(json.dumps({
                "uid": row["uid"],
                "question_ids": question_ids,
                "token_ids": seg.token_ids.tolist(),
                "token_word": seg.token_word.tolist(),
                "evidence": evidence.astype(int).tolist(),
                "targets": [round(float(x), 4) for x in targets],
            }) + "\n")
            n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("items", type=Path)
    p.add_argument("out", type=Path)
    f = sub.add_parser("finish")
    f.add_argument("tokens", type=Path)
    f.add_argument("logprobs", type=Path)
    f.add_argument("out", type=Path)
    f.add_argument("--tokenizer", type=Path, required=True, help="the student's tokenizer.json")
    f.add_argument("--gold", type=float, default=0.5, help="weight of the gold evidence")
    args = parser.parse_args(argv)
    if args.step == "prepare":
        print(prepare(args.items, args.out))
    else:
        print(finish(args.tokens, args.logprobs, args.out, args.tokenizer, args.gold))
    return 0


if __name__ == "__main__":
    sys.exit(main())
