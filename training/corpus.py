"""Real text for labelling and evaluation: GSM8K and the QuALITY stories (read-only, shared)."""

from __future__ import annotations

import html
import json
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path

# ../shared/data beside the checkout, as on every machine of this project and in CI
_BESIDE_CHECKOUT = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DATA = Path(os.environ.get("EDGE_LINGUA_DATA", _BESIDE_CHECKOUT))
_CALCULATOR = re.compile(r"<<[^>]*>>")
_TAG = re.compile(r"<[^>]+>")
_BLANK_LINES = re.compile(r"\n\s*\n")
_SPACES = re.compile(r"[ \t\r\f\v]+")


@dataclass(frozen=True)
class Example:
    """One GSM8K problem: the prompt to compress and its worked solution."""

    uid: str
    question: str
    solution: str

    @property
    def cot(self) -> str:
        """Question and worked solution as one chain-of-thought prompt."""
        return f"Question: {self.question}\nAnswer: {self.solution}"


def clean_solution(answer: str) -> str:
    """A GSM8K answer without its ``<<calculator>>`` annotations."""
    return _CALCULATOR.sub("", answer).strip()


def gsm8k(split: str) -> list[Example]:
    """Every problem of a GSM8K split, in file order."""
    path = DATA / "gsm8k" / f"{split}.jsonl"
    with path.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return [
        Example(f"gsm8k-{split}-{i}", row["question"].strip(), clean_solution(row["answer"]))
        for i, row in enumerate(rows)
    ]


def sample(examples: list[Example], n: int, seed: int) -> list[Example]:
    """``n`` examples drawn without replacement with a fixed seed."""
    return random.Random(seed).sample(examples, min(n, len(examples)))


def story_paragraphs(article: str) -> list[str]:
    """A QuALITY article's paragraphs as plain text: HTML stripped, Gutenberg boilerplate out."""
    text = html.unescape(_TAG.sub("\n\n", article))
    paragraphs = [_SPACES.sub(" ", " ".join(p.split("\n"))).strip()
                  for p in _BLANK_LINES.split(text)]
    return [p for p in paragraphs if p and "gutenberg" not in p.lower() and "DOCTYPE" not in p]


def quality_chunks(max_words: int = 220, min_words: int = 40) -> list[tuple[str, str]]:
    """The QuALITY stories cut into runs of whole paragraphs of at most ``max_words`` words.

    Returns (uid, text) pairs. The HTML is stripped; the Gutenberg header and licence
    boilerplate paragraphs are skipped.
    """
    path = DATA / "quality" / "quality_example.jsonl"
    chunks: list[tuple[str, str]] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            row = json.loads(line)
            raw = "".join(row["article"]) if isinstance(row["article"], list) else row["article"]
            paragraphs = [p for p in story_paragraphs(raw) if len(p.split()) >= 3]
            current: list[str] = []
            for paragraph in paragraphs:
                words = sum(len(p.split()) for p in current)
                if current and words + len(paragraph.split()) > max_words:
                    if words >= min_words:
                        chunks.append((f"quality-{row['article_id']}-{len(chunks)}",
                                       "\n".join(current)))
                    current = []
                current.append(paragraph)
            if sum(len(p.split()) for p in current) >= min_words:
                chunks.append((f"quality-{row['article_id']}-{len(chunks)}", "\n".join(current)))
    return chunks


def write_fidelity_texts(out: Path, n: int = 100) -> None:
    """The last ``n`` GSM8K test problems with their solutions, as quantization held-out text."""
    with out.open("w", encoding="utf-8") as handle:
        for example in gsm8k("test")[-n:]:
            text = f"{example.question}\n{example.solution}"
            handle.write(json.dumps({"uid": example.uid, "text": text}) + "\n")


if __name__ == "__main__":
    import sys

    write_fidelity_texts(Path(sys.argv[1]))
