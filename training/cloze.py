"""Cloze questions: self-made question/evidence pairs from the training paragraphs.

XQuAD's training articles give about 900 distinct questions (the same ones in six languages),
and the question-aware student learns them by heart (docs/MODEL_CARD.md). A cloze item asks
about a sentence of a training paragraph: a span of it (a number, a name, or a few words) is
the answer, and the question is the sentence's words around that span with the span replaced
by a question word, some words dropped, sometimes the question word moved to the front. The
span is the gold evidence; ``question_labels support`` gives its sentence the sentence level as
for real questions. Self-made questions of this kind (span-selection pretraining, Glass et al.
2020; Splinter, Ram et al. 2021) teach a reader to find the sentence a question is about
without new labelled data. Only training paragraphs are used: XQuAD's first 36 articles in the
six languages and the QuALITY passages.

    python -m training.cloze artifacts/cloze.jsonl --per-sentence 1
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path

from training.corpus import quality_chunks
from training.qa_corpus import XQUAD_LANGUAGES, QAItem, among_distractors, xquad_articles

QUESTION_WORDS = {"en": ("what", "which", "who", "when", "how many"),
                  "de": ("was", "welche", "wer", "wann", "wie viele"),
                  "es": ("qué", "cuál", "quién", "cuándo", "cuántos"),
                  "zh": ("什么", "哪个", "谁", "何时", "多少"),
                  "ru": ("что", "какой", "кто", "когда", "сколько"),
                  "ar": ("ما", "أي", "من", "متى", "كم")}
# --typed: the question word fits the answer: a year asks "when", another number "how many",
# a capitalised name who / what / which / where, other words what / which
TYPED_WORDS = {
    "en": {"year": ("when", "in what year"), "number": ("how many", "how much"),
           "name": ("who", "what", "which", "where"), "words": ("what", "which")},
    "de": {"year": ("wann", "in welchem Jahr"), "number": ("wie viele", "wie viel"),
           "name": ("wer", "was", "welche", "wo"), "words": ("was", "welche")},
    "es": {"year": ("cuándo", "en qué año"), "number": ("cuántos", "cuánto"),
           "name": ("quién", "qué", "cuál", "dónde"), "words": ("qué", "cuál")},
    "zh": {"year": ("何时", "哪一年"), "number": ("多少", "几"),
           "name": ("谁", "什么", "哪个", "哪里"), "words": ("什么", "哪个")},
    "ru": {"year": ("когда", "в каком году"), "number": ("сколько",),
           "name": ("кто", "что", "какой", "где"), "words": ("что", "какой")},
    "ar": {"year": ("متى", "في أي عام"), "number": ("كم",),
           "name": ("من", "ما", "أي", "أين"), "words": ("ما", "أي")},
}
QUESTION_MARK = {"zh": "？", "ar": "؟"}
_SENTENCE = {"zh": re.compile(r"[^。！？]+[。！？]?"),
             "other": re.compile(r"\S.*?(?:[.!?؟](?=\s|$)|$)", re.S)}
_WORD = re.compile(r"\S+")
_NUMBER = re.compile(r"\d[\d,.]*\d|\d")
_YEAR = re.compile(r"1[0-9]{3}|20[0-9]{2}")
_TRIM = ".,;:!?\"'()[]«»“”’؟،"


def sentences(text: str, language: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of a paragraph."""
    pattern = _SENTENCE["zh" if language == "zh" else "other"]
    return [(m.start(), m.end()) for m in pattern.finditer(text) if m.group().strip()]


def answer_span(text: str, start: int, end: int, language: str, rng: random.Random,
                phrases: float = 0.0) -> tuple[int, int] | None:
    """A span of the sentence ``text[start:end]`` to ask about: a number, a run of capitalised
    words, a few characters (Chinese), or one to three words, chosen at random among them;
    with probability ``phrases`` (not Chinese) three to six words instead."""
    sentence = text[start:end]
    if language == "zh":
        if len(sentence) < 8:
            return None
        numbers = list(_NUMBER.finditer(sentence))
        if numbers and rng.random() < 0.5:
            m = rng.choice(numbers)
            return start + m.start(), start + m.end()
        width = rng.randint(2, 4)
        at = rng.randrange(1, len(sentence) - width - 1)
        return start + at, start + at + width
    words = [(m.start(), m.end()) for m in _WORD.finditer(sentence)]
    if len(words) < 6:
        return None
    candidates = [(start + m.start(), start + m.end()) for m in _NUMBER.finditer(sentence)]
    capitalised: list[tuple[int, int]] = []
    for i, (s, e) in enumerate(words[1:], 1):
        word = sentence[s:e].strip(_TRIM)
        if word[:1].isupper() and language != "de":
            if capitalised and capitalised[-1][1] == i:
                capitalised[-1] = (capitalised[-1][0], i + 1)
            else:
                capitalised.append((i, i + 1))
    for a, b in capitalised:
        candidates.append((start + words[a][0], start + words[b - 1][1]))
    if phrases and len(words) >= 8 and rng.random() < phrases:
        width = rng.randint(3, 6)
        a = rng.randrange(1, len(words) - width)
        candidates = [(start + words[a][0], start + words[a + width - 1][1])]
    elif not candidates or rng.random() < 0.3:
        width = rng.randint(1, 3)
        a = rng.randrange(1, len(words) - width)
        candidates = [(start + words[a][0], start + words[a + width - 1][1])]
    s, e = rng.choice(candidates)
    while e > s and text[e - 1] in _TRIM:  # trailing punctuation is not part of the answer
        e -= 1
    return (s, e) if e > s else None


def answer_kind(answer: str, language: str) -> str:
    """What a cloze answer is, for its question word: year, number, name or words."""
    if _YEAR.fullmatch(answer):
        return "year"
    if _NUMBER.search(answer):
        return "number"
    if language not in ("de", "zh") and answer[:1].isupper():
        return "name"
    return "words"


def cloze_question(text: str, sentence: tuple[int, int], span: tuple[int, int], language: str,
                   rng: random.Random, keep: float = 0.8, reach: int = 10,
                   typed: bool = False) -> str:
    """The sentence around ``span`` (``reach`` words each side) with the span replaced by a
    question word (``typed``: one that fits the answer, :data:`TYPED_WORDS`), each other word
    kept with probability ``keep``, and half the time the question word first."""
    words_for = (TYPED_WORDS[language][answer_kind(text[span[0]:span[1]], language)] if typed
                 else QUESTION_WORDS[language])
    wh = rng.choice(words_for)
    mark = QUESTION_MARK.get(language, "?")
    before, after = text[sentence[0] : span[0]], text[span[1] : sentence[1]]
    if language == "zh":
        left = [c for c in before[-2 * reach :] if rng.random() < keep or c.isdigit()]
        right = [c for c in after[: 2 * reach].rstrip("。！？") if rng.random() < keep]
        head, tail = "".join(left), "".join(right)
        return (wh + head + tail if rng.random() < 0.5 else head + wh + tail) + mark
    left = [w for w in before.split()[-reach:] if rng.random() < keep]
    right = [w.strip(_TRIM) for w in after.split()[:reach] if rng.random() < keep]
    right = [w for w in right if w]
    if rng.random() < 0.5:
        words = [wh, *left, *right]
        words[0] = words[0][:1].upper() + words[0][1:]
    else:
        words = [*left, wh, *right]
    return " ".join(words).rstrip(_TRIM) + mark


def paragraphs() -> Iterator[tuple[str, str, str]]:
    """(uid, language, text) of every training paragraph a cloze item may come from."""
    for language in XQUAD_LANGUAGES:
        for p, questions in enumerate(xquad_articles(language, "train")):
            if questions:
                yield f"cloze-{language}-p{p}", language, questions[0].paragraph
    for uid, text in quality_chunks():
        yield f"cloze-{uid}", "en", text


def cloze_items(seed: int, per_sentence: int = 1, distractors: int = 2, typed: bool = False,
                phrases: float = 0.0) -> list[QAItem]:
    """Cloze items (module docstring): ``per_sentence`` per sentence of every training
    paragraph, each also with its paragraph among ``distractors`` others of the same
    language; ``typed`` and ``phrases`` as in :func:`cloze_question` and :func:`answer_span`."""
    rng = random.Random(seed)
    texts = list(paragraphs())
    by_language: dict[str, list[str]] = {}
    for _, language, text in texts:
        by_language.setdefault(language, []).append(text)
    items: list[QAItem] = []
    for uid, language, text in texts:
        for k, sentence in enumerate(sentences(text, language)):
            for copy in range(per_sentence):
                span = answer_span(text, *sentence, language, rng, phrases)
                if span is None:
                    continue
                question = cloze_question(text, sentence, span, language, rng, typed=typed)
                item = QAItem(f"{uid}-s{k}-{copy}", question, text, [span])
                items.append(item)
                if len(items) == 1:  # as in the run that trained the shipped model
                    continue
                pool = [t for t in by_language[language] if t != text]
                items.append(among_distractors(item, pool, distractors, rng))
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-sentence", type=int, default=1)
    parser.add_argument("--typed", action="store_true",
                        help="question words that fit the answer (year, number, name, words)")
    parser.add_argument("--phrases", type=float, default=0.0,
                        help="share of answers that are three to six words")
    args = parser.parse_args(argv)
    items = cloze_items(args.seed, args.per_sentence, typed=args.typed, phrases=args.phrases)
    with args.out.open("w", encoding="utf-8") as handle:
        for item in items:
            handle.write(json.dumps(item.to_json(), ensure_ascii=False) + "\n")
    print(len(items))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
