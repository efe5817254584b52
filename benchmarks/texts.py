"""Real text for the benchmarks, read in place from ../shared/data (never copied).

* GSM8K **test** problems: the quality and fidelity prompts. The default model is trained on
  GSM8K *train* questions (``training/build_labels.py``), so test problems are unseen text.
* The QuALITY story with its multiple-choice questions (the file holds one story, five
  questions; chunks of it are in the default model's training mix, see docs/BENCHMARKS.md).
* Speed prompts of an exact cl100k_base length: the QuALITY story followed by GSM8K test
  problems, cut at a token boundary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

from training import corpus
from training.corpus import Example, gsm8k, sample


@dataclass(frozen=True)
class Question:
    """One QuALITY multiple-choice question; ``gold`` indexes ``options``."""

    text: str
    options: tuple[str, ...]
    gold: int


@dataclass(frozen=True)
class Story:
    uid: str
    title: str
    text: str
    questions: tuple[Question, ...]


def gsm8k_prompts(split: str, n: int, seed: int) -> list[Example]:
    """``n`` GSM8K problems of ``split`` drawn with a fixed seed."""
    return sample(gsm8k(split), n, seed)


@cache
def quality_stories() -> tuple[Story, ...]:
    """Every distinct QuALITY story of the shared file with its questions."""
    stories: dict[str, Story] = {}
    path = corpus.DATA / "quality" / "quality_example.jsonl"
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            row = json.loads(line)
            article = row["article"]
            article = "".join(article) if isinstance(article, list) else article
            questions = []
            k = 1
            while f"question{k}" in row:
                options = tuple(row[f"question{k}option{j}"] for j in range(1, 5))
                questions.append(Question(row[f"question{k}"], options,
                                          int(row[f"question{k}_gold_label"]) - 1))
                k += 1
            uid = str(row["article_id"])
            text = "\n".join(corpus.story_paragraphs(article))
            stories.setdefault(uid, Story(uid, row["title"], text, tuple(questions)))
    return tuple(stories.values())


def speed_prompt(n_tokens: int, encoding) -> str:
    """A prompt of exactly ``n_tokens`` cl100k_base tokens of real English text."""
    parts = [s.text for s in quality_stories()]
    ids: list[int] = encoding.encode("\n\n".join(parts))
    extra = iter(gsm8k("test"))
    while len(ids) < n_tokens:
        parts.append(next(extra).question)
        ids = encoding.encode("\n\n".join(parts))
    return encoding.decode(ids[:n_tokens])
