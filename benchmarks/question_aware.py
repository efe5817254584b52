"""Question-aware compression: the ``question`` section of ``benchmarks.quality``.

Run on held-out data only: XQuAD *evaluation* articles (the last 12 of each language file) and
QMSum ``val/`` (../shared/data/README.md); GSM8K *test*.

* answer retention: share of questions whose gold answer text survives whole (whitespace
  normalised) in the compressed paragraph, at rates 0.5 / 0.33 / 0.2, per language, for the
  question-aware classifier, the same classifier without the question, the previous default,
  Gemma 3 270M ``longllmlingua`` and random words; with the mean compression time of each;
* multi-document: 20 English paragraphs (the gold one and 19 of other evaluation articles),
  the gold one at position 1 / 5 / 10 / 15 / 20, compressed 4x (``target_token`` = a quarter
  of the tokens, context-level filter on): share of answers retained at each position;
* meetings: per QMSum val specific query, the transcript from 20 turns before its first
  relevant turn to 20 after its last (``Speaker: words`` lines), compressed at 0.33 and 0.2
  with and without the query: share of words kept inside the relevant turns against the share
  kept outside, and the share of speaker labels kept;
* number soup: GSM8K test chain-of-thought prompts at rate 0.2: digits and operators as a share
  of kept words, against their share of the input.
"""

from __future__ import annotations

import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from training.corpus import Example
from training.qa_corpus import (
    XQUAD_LANGUAGES,
    Meeting,
    XQuADQuestion,
    qmsum_meetings,
    xquad_articles,
)

RATES = (0.5, 0.33, 0.2)
POSITIONS = (1, 5, 10, 15, 20)
MEETING_RATES = (0.33, 0.2)
SOUP_RATE = 0.2
_SPACE = re.compile(r"\s+")
_SOUP = re.compile(r"^(?:[\d.,:/]+|[-+*/=×÷%$<>()])$")

# (context, question, rate) -> compressed context
Compress = Callable[[str, str, float], str]


def answer_retained(answers: list[str], compressed: str) -> bool:
    """Whether any gold answer text appears whole in ``compressed`` (whitespace normalised)."""
    text = _SPACE.sub(" ", compressed)
    return any(_SPACE.sub(" ", a.strip()) in text for a in answers)


def make_methods(question_aware: Any, previous: Any, perplexity: Any, seed: int
                 ) -> dict[str, Compress]:
    """The compared compressors. ``question_aware`` and ``previous`` are
    :class:`~edge_lingua.compressor.Compressor`; ``perplexity`` a ``PerplexityCompressor``."""
    from benchmarks.quality import random_dropper

    drop = random_dropper(question_aware._tokenizer, seed)

    def random_words(text: str, question: str, rate: float) -> str:
        return drop(text, rate)

    return {
        "question-aware": lambda c, q, r: question_aware.compress(
            c, question=q, rate=r).compressed_prompt,
        "same model, no question": lambda c, q, r: question_aware.compress(
            c, rate=r).compressed_prompt,
        "previous default": lambda c, q, r: previous.compress(c, rate=r).compressed_prompt,
        "gemma longllmlingua": lambda c, q, r: perplexity.compress(
            c, method="longllmlingua", question=q, rate=r, condition_compare=True,
            concate_question=False).compressed_prompt,
        "random": random_words,
    }


def eval_questions(language: str, limit: int | None, seed: int) -> list[XQuADQuestion]:
    """Questions of the evaluation articles, a seeded sample of ``limit`` if given."""
    questions = [q for paragraph in xquad_articles(language, "eval") for q in paragraph]
    if limit is not None and limit < len(questions):
        questions = random.Random(f"{seed}-{language}").sample(questions, limit)
    return questions


def answer_retention(methods: dict[str, Compress], languages: tuple[str, ...],
                     rates: tuple[float, ...], limit: int | None, slow_limit: int,
                     slow: tuple[str, ...] = ("gemma longllmlingua",), seed: int = 0
                     ) -> dict[str, Any]:
    """Per language, method and rate: share of answers retained, share of the paragraphs'
    cl100k tokens kept (models count a rate in their own tokens, which differ) and mean
    milliseconds. Methods in ``slow`` run on the first ``slow_limit`` questions of each
    language only."""
    from benchmarks.common import cl100k

    encoding = cl100k()
    out: dict[str, Any] = {}
    for language in languages:
        questions = eval_questions(language, limit, seed)
        paragraph_tokens = [len(encoding.encode(q.paragraph)) for q in questions]
        per_method: dict[str, Any] = {}
        for name, compress in methods.items():
            subset = questions[:slow_limit] if name in slow else questions
            if not subset:
                continue
            print(f"question: {language} {name} ({len(subset)} questions)", file=sys.stderr,
                  flush=True)
            for rate in rates:
                kept, seconds, kept_tokens = 0, [], 0
                for q in subset:
                    t0 = time.perf_counter()
                    short = compress(q.paragraph, q.question, rate)
                    seconds.append(time.perf_counter() - t0)
                    kept += answer_retained(q.answers, short)
                    kept_tokens += len(encoding.encode(short))
                total_tokens = sum(paragraph_tokens[: len(subset)])  # subset: a prefix
                per_method.setdefault(name, {})[str(rate)] = {
                    "retained": kept / len(subset), "questions": len(subset),
                    "kept_cl100k_share": kept_tokens / max(total_tokens, 1),
                    "ms_mean": 1000 * statistics.fmean(seconds)}
        out[language] = per_method
    return out


def multi_document(compressors: dict[str, Any], n_questions: int, seed: int,
                   positions: tuple[int, ...] = POSITIONS, paragraphs: int = 20
                   ) -> dict[str, Any]:
    """Answer retained with the gold paragraph among ``paragraphs - 1`` others of other
    evaluation articles, compressed 4x; ``compressors`` maps names to (compressor, uses the
    question)."""
    rng = random.Random(seed)
    article_ids = _article_ids()
    questions = eval_questions("en", n_questions, seed)
    results: dict[str, Any] = {}
    for name, (compressor, use_question) in compressors.items():
        print(f"question: multi-document {name}", file=sys.stderr, flush=True)
        kept = dict.fromkeys(positions, 0)
        achieved = []
        for q in questions:
            gold_article = article_ids[q.paragraph]
            others = [t for t, a in article_ids.items() if a != gold_article]
            chosen = rng.sample(others, paragraphs - 1)
            for position in positions:
                contexts = [*chosen[: position - 1], q.paragraph, *chosen[position - 1:]]
                origin = sum(compressor._count(c) for c in contexts)
                result = compressor.compress(
                    contexts, question=q.question if use_question else None,
                    target_token=origin // 4, use_context_level_filter=True)
                kept[position] += answer_retained(q.answers, result.compressed_prompt)
                achieved.append(result.rate)
        results[name] = {"retained": {str(p): kept[p] / len(questions) for p in positions},
                         "achieved_rate_mean": statistics.fmean(achieved)}
    return {"questions": len(questions), "paragraphs": paragraphs, "methods": results}


def _article_ids() -> dict[str, int]:
    """Evaluation paragraph text -> index of its article (English file)."""
    import json

    from training.corpus import DATA
    from training.qa_corpus import XQUAD_TRAIN_ARTICLES

    data = json.loads((DATA / "xquad" / "xquad.en.json").read_text(encoding="utf-8"))
    return {p["context"]: i for i, a in enumerate(data["data"][XQUAD_TRAIN_ARTICLES:])
            for p in a["paragraphs"]}


def meeting_windows(meetings: list[Meeting], limit: int, seed: int, margin: int = 20
                    ) -> list[tuple[str, list[str], list[bool]]]:
    """(query, turns, turn is relevant) for a seeded sample of val specific queries."""
    windows = []
    for meeting in meetings:
        for query, ranges in meeting.queries:
            if not ranges:
                continue
            lo = max(0, min(a for a, _ in ranges) - margin)
            hi = min(len(meeting.turns), max(b for _, b in ranges) + 1 + margin)
            turns = meeting.turns[lo:hi]
            relevant = [any(a <= t <= b for a, b in ranges) for t in range(lo, hi)]
            windows.append((query, turns, relevant))
    return random.Random(seed).sample(windows, min(limit, len(windows)))


def meetings_section(compressors: dict[str, tuple[Any, bool]], limit: int, seed: int,
                     rates: tuple[float, ...] = MEETING_RATES) -> dict[str, Any]:
    """Share of words kept in relevant turns vs elsewhere, and of speaker labels kept."""
    from edge_lingua.segmentation import segment

    windows = meeting_windows(qmsum_meetings("val"), limit, seed)
    results: dict[str, Any] = {}
    for name, (compressor, use_question) in compressors.items():
        print(f"question: meetings {name}", file=sys.stderr, flush=True)
        for rate in rates:
            inside = [0, 0]
            outside = [0, 0]
            speakers = [0, 0]
            for query, turns, relevant in windows:
                text = "\n".join(turns)
                result = compressor.compress(text, question=query if use_question else None,
                                             rate=rate)
                seg = segment(compressor._tokenizer, text)
                keep = np.asarray(result.kept_mask[0], dtype=bool)
                starts = np.cumsum([0] + [len(t) + 1 for t in turns])
                turn_of_word = np.searchsorted(starts, seg.word_spans[:, 0], side="right") - 1
                in_relevant = np.asarray(relevant)[turn_of_word]
                label_end = np.asarray([s + t.index(":") for s, t in zip(starts, turns,
                                                                         strict=False)])
                is_label = seg.word_spans[:, 1] <= label_end[turn_of_word]
                inside[0] += int(keep[in_relevant].sum())
                inside[1] += int(in_relevant.sum())
                outside[0] += int(keep[~in_relevant].sum())
                outside[1] += int((~in_relevant).sum())
                speakers[0] += int(keep[is_label].sum())
                speakers[1] += int(is_label.sum())
            share_in = inside[0] / max(inside[1], 1)
            share_out = outside[0] / max(outside[1], 1)
            results.setdefault(name, {})[str(rate)] = {
                "kept_relevant": share_in, "kept_elsewhere": share_out,
                "ratio": share_in / share_out if share_out else None,
                "speaker_labels_kept": speakers[0] / max(speakers[1], 1)}
    return {"queries": len(windows), "rates": list(rates), "methods": results}


def number_soup(compressors: dict[str, Any], problems: list[Example], rate: float = SOUP_RATE
                ) -> dict[str, Any]:
    """Digits and operators as a share of kept words vs of all words, on GSM8K CoT prompts."""
    results: dict[str, Any] = {}
    for name, compressor in compressors.items():
        kept_soup = kept = total_soup = total = 0
        for p in problems:
            result = compressor.compress(p.cot, rate=rate)
            words = result.words[0]
            keep = result.kept_mask[0]
            soup = [bool(_SOUP.match(w)) for w in words]
            kept_soup += sum(s for s, k in zip(soup, keep, strict=True) if k)
            kept += sum(keep)
            total_soup += sum(soup)
            total += len(words)
        results[name] = {"soup_share_kept": kept_soup / max(kept, 1),
                         "soup_share_input": total_soup / max(total, 1)}
    return {"problems": len(problems), "rate": rate, "methods": results}


def run_section(new_bundle: Path, previous_bundle: Path, perplexity: Any, *,
                languages: tuple[str, ...] = XQUAD_LANGUAGES, limit: int | None = None,
                slow_limit: int = 40, multi_questions: int = 40, meetings: int = 60,
                problems: list[Example] | None = None, seed: int = 0,
                threads: int | None = None) -> dict[str, Any]:
    """The whole section as one JSON-able dict."""
    from edge_lingua.compressor import Compressor

    new = Compressor.load(new_bundle, providers=["cpu"], threads=threads)
    previous = Compressor.load(previous_bundle, providers=["cpu"], threads=threads)
    methods = make_methods(new, previous, perplexity, seed)
    pairs = {"question-aware": (new, True), "same model, no question": (new, False),
             "previous default": (previous, False)}
    out: dict[str, Any] = {
        "new_bundle": str(new_bundle), "previous_bundle": str(previous_bundle),
        "answer_retention": answer_retention(methods, languages, RATES, limit, slow_limit,
                                             seed=seed),
    }
    if multi_questions:
        out["multi_document"] = multi_document(pairs, multi_questions, seed)
    if meetings:
        out["meetings"] = meetings_section(pairs, meetings, seed)
    if problems:
        out["number_soup"] = number_soup({"new": new, "previous default": previous}, problems)
    return out


def markdown(section: dict[str, Any]) -> str:
    """The section's tables as markdown (docs/BENCHMARKS.md)."""
    lines: list[str] = []
    retention = section["answer_retention"]
    languages = list(retention)
    methods = list(dict.fromkeys(m for lang in languages for m in retention[lang]))
    lines += ["| method | rate | " + " | ".join(languages) + " | ms / paragraph |",
              "|---|---|" + "---|" * (len(languages) + 1)]
    for method in methods:
        for rate in (str(r) for r in RATES):
            runs = [retention[lang][method][rate] for lang in languages
                    if method in retention[lang]]
            cells = [f"{retention[lang][method][rate]['retained']:.2f}"
                     if method in retention[lang] else "-" for lang in languages]
            ms = statistics.fmean(r["ms_mean"] for r in runs)
            lines.append(f"| {method} | {rate} | " + " | ".join(cells) + f" | {ms:.0f} |")
    if "multi_document" not in section:
        return "\n".join(lines) + "\n"
    multi = section["multi_document"]
    lines += ["", "| method | " + " | ".join(f"gold at {p}" for p in POSITIONS)
              + " | achieved rate |", "|---|" + "---|" * (len(POSITIONS) + 1)]
    for method, m in multi["methods"].items():
        cells = [f"{m['retained'][str(p)]:.2f}" for p in POSITIONS]
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {m['achieved_rate_mean']:.3f} |")
    meetings = section["meetings"]
    lines += ["", "| method | rate | kept in relevant turns | kept elsewhere | ratio | "
              "speaker labels kept |", "|---|---|---|---|---|---|"]
    for method, per_rate in meetings["methods"].items():
        for rate, m in per_rate.items():
            ratio = "-" if m["ratio"] is None else f"{m['ratio']:.2f}"
            lines.append(f"| {method} | {rate} | {m['kept_relevant']:.3f} | "
                         f"{m['kept_elsewhere']:.3f} | {ratio} | "
                         f"{m['speaker_labels_kept']:.3f} |")
    if "number_soup" in section:
        soup = section["number_soup"]
        lines += ["", "| model | digits+operators in input | in kept words (rate 0.2) |",
                  "|---|---|---|"]
        for method, m in soup["methods"].items():
            lines.append(f"| {method} | {m['soup_share_input']:.3f} | "
                         f"{m['soup_share_kept']:.3f} |")
    if "gsm8k_reader" in section:
        reader = section["gsm8k_reader"]
        lines += ["", "| model | rate | achieved | reader benefit kept | numbers kept |",
                  "|---|---|---|---|---|"]
        for method, per_rate in reader["methods"].items():
            for rate, m in per_rate.items():
                lines.append(f"| {method} | {rate} | {m['achieved_rate']:.3f} | "
                             f"{m['retention']:.3f} | {m['numbers_kept']:.3f} |")
    return "\n".join(lines) + "\n"
