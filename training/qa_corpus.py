"""Question + context texts with gold evidence: XQuAD, QMSum, GSM8K demos, QuALITY.

Every item is a context a compressor sees, the question asked about it ("" when none) and the
character spans of its gold evidence (XQuAD answer spans, QMSum relevant turns). XQuAD is
split by article (../shared/data/README.md): the first 36 articles train, the last 12 are for
evaluation only; QMSum trains on ``train/`` and reports on ``val/``.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from training.corpus import DATA, gsm8k, quality_chunks

XQUAD_LANGUAGES = ("en", "de", "es", "zh", "ru", "ar")
XQUAD_TRAIN_ARTICLES = 36
_MARKER = re.compile(r"\s*\{[a-z_]+\}")
_SPACE_BEFORE_PUNCT = re.compile(r" ([,.?!])")


@dataclass(frozen=True)
class QAItem:
    """A context, the question about it and where its gold evidence lies."""

    uid: str
    question: str
    text: str
    evidence: list[tuple[int, int]] = field(default_factory=list)  # character spans in text

    def to_json(self) -> dict[str, object]:
        return {"uid": self.uid, "question": self.question, "text": self.text,
                "evidence": [list(s) for s in self.evidence]}


@dataclass(frozen=True)
class XQuADQuestion:
    """One extractive question about one paragraph."""

    uid: str
    question: str
    answers: list[str]
    paragraph: str
    answer_spans: list[tuple[int, int]]


def xquad_articles(language: str, split: str) -> list[list[XQuADQuestion]]:
    """The questions of every article in a split ('train' or 'eval'), one list per paragraph."""
    data = json.loads((DATA / "xquad" / f"xquad.{language}.json").read_text(encoding="utf-8"))
    articles = data["data"]
    chosen = (articles[:XQUAD_TRAIN_ARTICLES] if split == "train"
              else articles[XQUAD_TRAIN_ARTICLES:])
    out = []
    for article in chosen:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            questions = []
            for qa in paragraph["qas"]:
                spans = [(a["answer_start"], a["answer_start"] + len(a["text"]))
                         for a in qa["answers"]]
                questions.append(XQuADQuestion(f"xquad-{language}-{qa['id']}", qa["question"],
                                               [a["text"] for a in qa["answers"]], context,
                                               spans))
            out.append(questions)
    return out


def xquad_items(language: str, seed: int, distractors: int = 2, hidden_every: int = 2
                ) -> list[QAItem]:
    """Training items of one language: each question with its paragraph, every
    ``hidden_every``-th question also with its paragraph hidden among ``distractors``
    paragraphs of other train articles, and every paragraph once without a question."""
    rng = random.Random(f"{seed}-{language}")
    paragraphs = xquad_articles(language, "train")
    texts = [p[0].paragraph for p in paragraphs if p]
    items = [QAItem(f"xquad-{language}-p{i}", "", t) for i, t in enumerate(texts)]
    for p_index, questions in enumerate(paragraphs):
        for k, q in enumerate(questions):
            items.append(QAItem(q.uid, q.question, q.paragraph, q.answer_spans))
            if k % hidden_every:
                continue
            others = [t for i, t in enumerate(texts) if i != p_index]
            items.append(among_distractors(QAItem(q.uid, q.question, q.paragraph,
                                                  q.answer_spans), others, distractors, rng))
    return items


def among_distractors(item: QAItem, pool: list[str], distractors: int, rng: random.Random
                      ) -> QAItem:
    """``item`` (uid + ``-multi``) with its text placed at a random position among
    ``distractors`` texts drawn from ``pool``, blank-line separated; evidence spans follow."""
    others = rng.sample(pool, distractors)
    position = rng.randrange(distractors + 1)
    parts = [*others[:position], item.text, *others[position:]]
    shift = sum(len(p) + 2 for p in parts[:position])
    return QAItem(f"{item.uid}-multi", item.question, "\n\n".join(parts),
                  [(s + shift, e + shift) for s, e in item.evidence])


def clean_turn(content: str) -> str:
    """A QMSum turn without its {disfmarker}-style annotations."""
    return _SPACE_BEFORE_PUNCT.sub(r"\1", _MARKER.sub("", content)).strip()


@dataclass(frozen=True)
class Meeting:
    """A QMSum transcript as ``Speaker: words`` lines, and its specific queries."""

    uid: str
    turns: list[str]
    queries: list[tuple[str, list[tuple[int, int]]]]  # query, inclusive turn ranges


def qmsum_meetings(split: str) -> list[Meeting]:
    """Every meeting of a QMSum split ('train' or 'val'), in file-name order."""
    meetings = []
    for path in sorted((DATA / "qmsum" / split).glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        turns = [f"{t['speaker']}: {clean_turn(t['content'])}" for t in data["meeting_transcripts"]]
        queries = [(q["query"], [(int(a), int(b)) for a, b in q["relevant_text_span"]])
                   for q in data["specific_query_list"]]
        meetings.append(Meeting(path.stem, turns, queries))
    return meetings


def turn_window(meeting: Meeting, start: int, max_words: int) -> tuple[int, int]:
    """Turns from ``start`` on, as many as fit in ``max_words`` (at least one)."""
    end, words = start, 0
    while end < len(meeting.turns) and (end == start or words + len(meeting.turns[end].split())
                                        <= max_words):
        words += len(meeting.turns[end].split())
        end += 1
    return start, end


def window_item(meeting: Meeting, uid: str, query: str, ranges: list[tuple[int, int]],
                lo: int, hi: int) -> QAItem:
    """Turns ``lo:hi`` as one text, the turns inside ``ranges`` as evidence."""
    text, evidence = "", []
    for t in range(lo, hi):
        start = len(text) + (1 if text else 0)
        text = f"{text}\n{meeting.turns[t]}" if text else meeting.turns[t]
        if any(a <= t <= b for a, b in ranges):
            evidence.append((start, len(text)))
    return QAItem(uid, query, text, evidence)


def qmsum_items(seed: int, max_words: int = 240) -> list[QAItem]:
    """Train meetings: each specific query over a window that starts inside a relevant span
    and over one window outside every span; each such window also once without the query."""
    rng = random.Random(seed)
    items = []
    for meeting in qmsum_meetings("train"):
        for k, (query, ranges) in enumerate(meeting.queries):
            if not ranges:
                continue
            a, b = rng.choice(ranges)
            lo = max(0, rng.randint(a - 3, min(b, a + 3)))
            lo, hi = turn_window(meeting, lo, max_words)
            uid = f"qmsum-{meeting.uid}-{k}"
            items.append(window_item(meeting, uid, query, ranges, lo, hi))
            outside = [t for t in range(len(meeting.turns))
                       if not any(x - 5 <= t <= y for x, y in ranges)]
            if outside:
                lo, hi = turn_window(meeting, rng.choice(outside), max_words)
                items.append(window_item(meeting, f"{uid}-far", query, ranges, lo, hi))
            if k % 3 == 0:
                items.append(QAItem(f"{uid}-plain", "", items[-1].text))
    return items


def gsm8k_items(seed: int, demos: int = 2, questioned: int = 1500,
                plain: int = 3000) -> list[QAItem]:
    """GSM8K train: problems with their solutions (no question), and the last problem's
    question asked against ``demos`` worked problems before it."""
    problems = gsm8k("train")
    rng = random.Random(seed)
    order = rng.sample(range(len(problems)), len(problems))
    items = [QAItem(f"{problems[i].uid}-cot", "", problems[i].cot) for i in order[:plain]]
    rest = order[plain:]
    for k in range(questioned):
        group = [problems[i] for i in rest[k * (demos + 1) : (k + 1) * (demos + 1)]]
        if len(group) < demos + 1:
            break
        text = "\n\n".join(p.cot for p in group[:demos])
        items.append(QAItem(f"{group[-1].uid}-demos", group[-1].question, text))
    return items


def quality_items() -> list[QAItem]:
    """QuALITY story passages, without a question."""
    return [QAItem(uid, "", text) for uid, text in quality_chunks()]


def all_items(seed: int, hidden_every: int = 2) -> Iterator[QAItem]:
    """The whole question-aware training mix (see docs/MODEL_CARD.md)."""
    for language in XQUAD_LANGUAGES:
        yield from xquad_items(language, seed, hidden_every=hidden_every)
    yield from qmsum_items(seed)
    yield from gsm8k_items(seed)
    yield from quality_items()


def eval_items(languages: tuple[str, ...] = XQUAD_LANGUAGES) -> Iterator[QAItem]:
    """XQuAD *evaluation* questions with their paragraphs (for reports, never for training)."""
    for language in languages:
        for questions in xquad_articles(language, "eval"):
            for q in questions:
                yield QAItem(q.uid, q.question, q.paragraph, q.answer_spans)


def write_items(out: Path, seed: int, hidden_every: int = 2, split: str = "train") -> int:
    """All training items (or, with ``split="eval"``, :func:`eval_items`) as JSONL; returns
    how many."""
    n = 0
    items = all_items(seed, hidden_every) if split == "train" else eval_items()
    with out.open("w", encoding="utf-8") as handle:
        for item in items:
            handle.write(json.dumps(item.to_json(), ensure_ascii=False) + "\n")
            n += 1
    return n


if __name__ == "__main__":

    import argparse

    parser = argparse.ArgumentParser(description="question-aware items as JSONL")
    parser.add_argument("out", type=Path)
    parser.add_argument("seed", type=int, nargs="?", default=0)
    parser.add_argument("--hidden-every", type=int, default=2)
    parser.add_argument("--split", choices=["train", "eval"], default="train")
    args = parser.parse_args()
    print(write_items(args.out, args.seed, args.hidden_every, args.split))
