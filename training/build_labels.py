"""Distil keep/drop targets from the Gemma 3 270M teacher into a JSONL file.

Each line: ``uid``, ``text``, the student's words (``word_spans``), its tokens (``token_ids``,
``token_word``), the teacher's ``information`` per word and the ``targets`` (see
``training.teacher``). Texts are GSM8K *train* questions (shuffled with ``--seed``) with a
QuALITY story chunk after every ``--quality-every`` of them. Lines are appended and flushed
one by one, and uids already in the file are skipped, so a stopped run resumes where it was.

    python -m training.build_labels --out artifacts/labels.jsonl --minutes 20
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from edge_lingua.compressor import load_tokenizer
from training.corpus import gsm8k, quality_chunks
from training.teacher import MINILM_TOKENIZER, label_record, open_teacher, score_text


def texts(seed: int, quality_every: int) -> list[tuple[str, str]]:
    """(uid, text) in labelling order: shuffled GSM8K train questions, QuALITY interleaved."""
    questions = [(e.uid, e.question) for e in gsm8k("train")]
    random.Random(seed).shuffle(questions)
    stories = quality_chunks()
    random.Random(seed + 1).shuffle(stories)
    order: list[tuple[str, str]] = []
    for i, item in enumerate(questions):
        if quality_every and i % quality_every == 0 and stories:
            order.append(stories.pop())
        order.append(item)
    return order


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("artifacts/labels.jsonl"))
    parser.add_argument("--tokenizer", type=Path, default=MINILM_TOKENIZER)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quality-every", type=int, default=25)
    parser.add_argument("--limit", type=int, default=0, help="stop after N texts (0: all)")
    parser.add_argument("--minutes", type=float, default=0.0, help="stop after M minutes")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    tokenizer = load_tokenizer(args.tokenizer)
    scorer = open_teacher(threads=args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    done: set[str] = set()
    if args.out.is_file():
        with args.out.open(encoding="utf-8") as handle:
            done = {json.loads(line)["uid"] for line in handle if line.strip()}
    started = time.monotonic()
    written = 0
    with args.out.open("a", encoding="utf-8") as handle:
        for uid, text in texts(args.seed, args.quality_every):
            if uid in done:
                continue
            elapsed = time.monotonic() - started
            if (args.limit and len(done) + written >= args.limit) or (
                args.minutes and elapsed > args.minutes * 60
            ):
                break
            scored = score_text(scorer, tokenizer, text)
            record = label_record(uid, scored)
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            written += 1
            if written % 10 == 0:
                print(f"{len(done) + written} texts, {elapsed / 60:.1f} min", file=sys.stderr,
                      flush=True)
    print(f"done: {len(done) + written} texts in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
