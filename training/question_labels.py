"""Question-aware keep targets: from the Gemma teacher (LongLLMLingua's contrastive
perplexity), or from the shipped default model plus gold evidence (``support``).

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

The ``support`` mix (the one shipped; docs/MODEL_CARD.md) takes the shipped default's own keep
probability ``p`` (question-agnostic; itself distilled from Gemma self-information) and the gold
evidence: 1.0 on answer / relevant-turn words, a sentence level (``--sentence``, default
``SENTENCE_SUPPORT``) on the other words of the sentences that hold them, 0 elsewhere. With a
question a word's target is ``(1 - w) * p + w * evidence`` (``--weight``; the shipped model used
``w = 0.9`` and sentence level 0.8), so what answers the question ranks above everything else
and the default's order decides within each group; without a question it is ``p``, so the model
keeps the default's behaviour when no question is given. The default's probabilities come from its
fp32 weights on the GPU:

    python -m training.question_labels support items.jsonl rows.jsonl \
        --tokenizer edge_lingua/models/default/tokenizer.json                  # CPU
    python -m training.question_labels support-finish rows.jsonl labels.jsonl \
        --default default_fp16                                                   # GPU
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from edge_lingua.compressor import load_tokenizer, pool_word_probs
from edge_lingua.segmentation import Segmented, segment, unknown_token_id

QUESTION_TEMPLATE = "Question: {question}\nContext:\n"
SENTENCE_SUPPORT = 0.6
WINDOW_TOKENS = 510  # a 512-token window less [CLS] and [SEP]
_SENTENCE_END = re.compile(r"[.!?。！？؟][\"')\]»”’]*$")
_CJK_END = re.compile(r"[。！？]$")


def evidence_words(seg: Segmented, spans: list[list[int]]) -> np.ndarray:
    """1.0 for every word that overlaps a gold evidence span, else 0.0."""
    marks = np.zeros(seg.n_words, dtype=np.float64)
    for start, end in spans:
        marks[(seg.word_spans[:, 0] < end) & (seg.word_spans[:, 1] > start)] = 1.0
    return marks


def sentence_ids(seg: Segmented, text: str) -> np.ndarray:
    """Sentence index of every word: a sentence ends after a word ending in . ! ? (or their
    CJK and Arabic forms) followed by white space, after a CJK full stop, and at a line break."""
    ids = np.zeros(seg.n_words, dtype=np.int64)
    current = 0
    for i in range(seg.n_words):
        ids[i] = current
        start, end = (int(x) for x in seg.word_spans[i])
        following = text[end : int(seg.word_spans[i + 1][0])] if i + 1 < seg.n_words else ""
        word = text[start:end]
        if ("\n" in following or _CJK_END.search(word)
                or (_SENTENCE_END.search(word) and following.strip() == "" and following)):
            current += 1
    return ids


def support_levels(seg: Segmented, text: str, spans: list[list[int]]) -> np.ndarray:
    """1.0 on gold evidence words, :data:`SENTENCE_SUPPORT` on the rest of their sentences."""
    evidence = evidence_words(seg, spans)
    if not evidence.any():
        return evidence
    sentences = sentence_ids(seg, text)
    in_support = np.isin(sentences, sentences[evidence > 0])
    return np.maximum(evidence, SENTENCE_SUPPORT * in_support)


def support_targets(default_probs: np.ndarray, levels: np.ndarray, asked: bool,
                    weight: float = 0.5) -> np.ndarray:
    """Keep targets of the ``support`` mix (module docstring): with a question
    ``(1 - weight) * p + weight * evidence``, without one ``p``."""
    probs = np.clip(default_probs, 0.0, 1.0)
    return (1.0 - weight) * probs + weight * levels if asked else probs


def support(items: Path, out: Path, tokenizer_path: Path) -> int:
    """Rows of the ``support`` mix without their targets yet: question ids, the context's first
    window of tokens (cut at a word end), the evidence levels of its words."""
    tokenizer = load_tokenizer(tokenizer_path)
    unk = unknown_token_id(tokenizer)
    n = 0
    with items.open(encoding="utf-8") as src, out.open("w", encoding="utf-8") as dst:
        for line in src:
            row = json.loads(line)
            seg = segment(tokenizer, row["text"], unk_id=unk)
            if seg.n_words == 0:
                continue
            levels = support_levels(seg, row["text"], row["evidence"])
            n_tokens = seg.token_ids.size
            if n_tokens > WINDOW_TOKENS:  # the tokens of whole words that fit one window
                n_tokens = int(np.searchsorted(seg.token_word, seg.token_word[WINDOW_TOKENS]))
            words = int(seg.token_word[n_tokens - 1]) + 1
            dst.write(json.dumps({
                "uid": row["uid"],
                "asked": bool(row["question"]),
                "question_ids": tokenizer.encode(row["question"], add_special_tokens=False).ids,
                "token_ids": seg.token_ids[:n_tokens].tolist(),
                "token_word": seg.token_word[:n_tokens].tolist(),
                "token_readable": seg.token_readable[:n_tokens].astype(int).tolist(),
                "levels": [round(float(x), 2) for x in levels[:words]],
                "evidence": (levels[:words] >= 1.0).astype(int).tolist(),
            }) + "\n")
            n += 1
    return n


def support_finish(rows: Path, out: Path, default: Path, weight: float = 0.5,
                   sentence: float = SENTENCE_SUPPORT, batch: int = 64) -> int:
    """Targets of the ``support`` rows from the default's weights (``training.checkpoint``
    shards of ``training.distill.teacher_weights``), run without the question, batched;
    ``sentence`` replaces the rows' level for the rest of an evidence sentence."""
    import torch

    from training.train import CLS, PAD, SEP, build_model

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = build_model(default, device).eval()
    table = [json.loads(line) for line in rows.open(encoding="utf-8")]
    with out.open("w", encoding="utf-8") as dst:
        for start in range(0, len(table), batch):
            group = table[start : start + batch]
            width = max(len(r["token_ids"]) for r in group) + 2
            ids = torch.full((len(group), width), PAD, dtype=torch.long)
            mask = torch.zeros((len(group), width), dtype=torch.long)
            for i, r in enumerate(group):
                n = len(r["token_ids"])
                ids[i, : n + 2] = torch.tensor([CLS, *r["token_ids"], SEP])
                mask[i, : n + 2] = 1
            with torch.no_grad():
                logits = model(input_ids=ids.to(device), attention_mask=mask.to(device),
                               token_type_ids=torch.zeros_like(ids).to(device)).logits
            keep = torch.softmax(logits.float(), dim=-1)[..., 1].cpu().numpy()
            for i, r in enumerate(group):
                n = len(r["token_ids"])
                levels = np.asarray(r["levels"], dtype=np.float64)
                levels[(levels > 0) & (levels < 1)] = sentence
                probs, _ = pool_word_probs(np.asarray(r["token_word"]),
                                           np.asarray(r["token_readable"], dtype=bool),
                                           keep[i, 1 : n + 1], levels.size)
                targets = support_targets(probs, levels, r["asked"], weight)  # unreadable: 1
                dst.write(json.dumps({
                    "uid": r["uid"], "question_ids": r["question_ids"],
                    "token_ids": r["token_ids"], "token_word": r["token_word"],
                    "evidence": r["evidence"],
                    "targets": [round(float(x), 4) for x in targets],
                }) + "\n")
    return len(table)


def word_targets(information: np.ndarray, contrast: np.ndarray | None, evidence: np.ndarray,
                 gold: float) -> np.ndarray:
    """Keep targets in [0, 1] from the teacher's view and the gold evidence (module docstring)."""
    from training.teacher import percentile_ranks  # loads the MiniLM tokenizer package

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
    from training.teacher import information_from_tokens

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
    s = sub.add_parser("support")
    s.add_argument("items", type=Path)
    s.add_argument("out", type=Path)
    s.add_argument("--tokenizer", type=Path, required=True, help="the student's tokenizer.json")
    sf = sub.add_parser("support-finish")
    sf.add_argument("rows", type=Path)
    sf.add_argument("out", type=Path)
    sf.add_argument("--default", type=Path, required=True,
                    help="fp16 shards + config.json of the default's weights")
    sf.add_argument("--weight", type=float, default=0.5,
                    help="weight of the evidence beside the default's probability")
    sf.add_argument("--sentence", type=float, default=SENTENCE_SUPPORT,
                    help="evidence level of the other words of an evidence sentence")
    args = parser.parse_args(argv)
    if args.step == "prepare":
        print(prepare(args.items, args.out))
    elif args.step == "support":
        print(support(args.items, args.out, args.tokenizer))
    elif args.step == "support-finish":
        print(support_finish(args.rows, args.out, args.default, args.weight, args.sentence))
    else:
        print(finish(args.tokens, args.logprobs, args.out, args.tokenizer, args.gold))
    return 0


if __name__ == "__main__":
    sys.exit(main())
