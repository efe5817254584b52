"""Golden vectors: what the Python runtime computes for a bundle, for ports to check against.

``write_golden_vectors`` runs :class:`edge_lingua.compressor.Compressor` on a set of texts and
writes ``golden_vectors.json``: per context the token ids, their offsets (Unicode code points, as
Python indexes strings), word ids, units (words, atoms, CJK phrases, symbols) with their spans,
kinds and protection, encoder windows, the model's logits, keep probabilities, and the compressed
output at several settings, all with ``structure="text"`` (the structure modes are Python-only).
The Java library in ``android_bridge/`` and the Node check replay them.

Logits are float32 values written as the shortest decimal of their exact double value, so
``(float) Double.parseDouble(s)`` in Java and ``Math.fround(x)`` in JavaScript recover every bit.
"""

from __future__ import annotations

import html
import json
import platform
import random
import re
import time
import unicodedata
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge_lingua.errors import ToolchainError

GOLDEN_NAME = "golden_vectors.json"
GOLDEN_FORMAT = "edge-lingua-golden/2"
# The structure mode the ports implement: plain text (atoms, whitespace fidelity, force phrases)
STRUCTURE = "text"
# Settings every text is compressed with, besides one ``{"rate": r}`` per rate.
EXTRA_OPTIONS: tuple[dict[str, Any], ...] = (
    {"rate": 1.0},
    {"target_token": 24},
    {
        "rate": 0.33,
        "force_tokens": [".", ",", "?", "!"],
        "force_reserve_digit": True,
        "drop_consecutive": True,
    },
    {"rate": 0.33, "force_tokens": ["The answer is", "Question:", "\n"]},
    {"rate": 0.33, "protect": ["all"]},
    {"rate": 0.5, "protect": ["none"]},
    {"rate": 0.5, "chunk_end_tokens": ["."]},
)
# Hand-written texts for the corners of tokenization: accents, CJK, emoji (outside the BMP),
# control and format characters, right-to-left scripts, literal special tokens, long words.
EDGE_TEXTS: tuple[str, ...] = (
    "Café déjà vu: a naïve façade in São Paulo, Zürich and Ångström's İstanbul — ŞEHİR!",
    "北京是中国的首都。東京タワーは333メートルです。"
    "한국어 텍스트도 있습니다. 𠀀𠀁 rare ideographs.",
    "Great job 👍🏽! The 🚀 launched at 9:30 🙂; family 👨‍👩‍👧 and flag 🇫🇷 emoji, 🥲 too.",
    "tab\there\x00null\x07bell\u200bzero-width\ufeffBOM\r\nCRLF\x0bvt\u00a0nbsp\u2028line "
    "\x85next\ufffdreplacement\ue000private end.",
    "مرحبا بالعالم! השפה העברית נכתבת מימין לשמאל. Mixed 123 עם מספרים, \u202bembedded\u202c.",
    "Please fill [MASK] and keep [CLS] or [SEP] literal; [UNK]s and [mask] too.",
    "x" * 120 + " supercalifragilisticexpialidocious ☃ ⅷ ½ ² ℌ ﬁ Ⅻ ΟΔΥΣΣΕΥΣ straße ı",
    "It costs $1,234.56 (about 20%) — on 2024-05-01, i.e. 3/4 of 1e6... ok?!? Yes!!! \"Quoted\" "
    "'single' `back` ~tilde~ ^caret^ <angle> {brace} [bracket] |pipe| \\slash/ _under_ "
    "+plus= #hash@",
    "Decomposed e\u0301 and a\u0308 and n\u0303; precomposed é ä ñ; Hangul 한국어 and ㄱㄴ jamo.",
    "Step 1. Step 2.\n\n\nStep 3 . . . ; ; , , Done.\n",
)
# Texts for the faithful-compression rules: atoms, indentation and blank lines, line endings,
# multi-word force phrases, Chinese and Japanese phrases.
FIDELITY_TEXTS: tuple[str, ...] = (
    "Deploy v2.14.0-rc1 of edge-lingua (Apache-2.0) from "
    "https://github.com/example/edge-lingua/releases/tag/v2.14.0. Send logs to "
    "ops-team@example.com or @oncall_bob; see /var/log/edge/app.log, ./conf/app.yaml and "
    "C:\\Users\\dev\\AppData\\edge.ini. Request 550e8400-e29b-41d4-a716-446655440000 from "
    "192.168.14.201:8443 failed at 2024-05-01T10:30:00Z (commit 3f9c2ab71d, 0x7FFF); "
    "retry_count, maxRetries, RetryPolicy, MAX_RETRIES, INC-20931 and #postmortem. "
    "www.example.org.",
    "Revenue rose 12.5% to $1,042.75 million (−3.5% in Q3, €80,000 in fees, +4 seats); 1e-6 of "
    "1,000,000 users saw latency above 250 ms on 12/31/2023 at 9:30am and 14:05:59. The "
    "line_items table, os.path.join() calls, std::vector, fe80::1ff:fe23:4567:890a and ::1 "
    "stay whole; l'été, don't and naïve are one word each.",
    "def total(items):\n    \"\"\"Sum the line items of an order.\"\"\"\n    result = 0\n\n\n"
    "    for item in items:\n        # price times quantity, in cents\n"
    "        result += item.price * item.quantity\n\n    return result\n\n\n",
    "Question: What is 17 times 3?\nLet us think step by step: 17 times 3 is 51.\n\n"
    "The answer is 51.\n\nQuestion: How many legs do 4 spiders have?\nEach spider has 8 legs, "
    "so 4 spiders have 32 legs.\n\n\nThe answer is 32.\n",
    "  - first item\r\n\t- second item with trailing spaces   \r\n\r\n\r\n"
    "        deeply indented line of running text\r\n\r\nlast line without a newline",
    "湖北省位于中国中部，省会是武汉市。长江和汉江在武汉交汇，这座城市也是重要的交通枢纽。"
    "2019年，武汉的人口约为1100万，面积8569平方公里。",
    "東京タワーは1958年に完成した電波塔です。高さは333メートルで、今でも多くの観光客が"
    "訪れます。スカイツリーができた後も、夜景の名所として人気があります。",
)


# Pieces the generated segmentation cases are made of: atoms of every category and their near
# misses, words with apostrophes and marks, emoji sequences, CJK, and every kind of white space.
SEGMENTATION_PIECES: tuple[str, ...] = (
    "https://example.com/a/b?x=1&y=(2).", "see www.foo.org).", "bob.smith@corp.example.com,",
    "/usr/local/bin/python3", "C:\\Users\\me\\file.txt", "\\\\server\\share\\x", "./src/main.py",
    "\\u000fA", "a\\nb", "\\\\n", "\\x41BC", "\\U0001F600ok", "\\u00e9t\\u00e9",
    "~/notes.md", "550e8400-e29b-41d4-a716-446655440000", "deadbeef42", "0x1F", "192.168.14.201",
    "10.0.0.1:8080", "::1", "fe80::1ff:fe23:4567:890a", "2024-05-01T10:30:00Z", "12/31/2023",
    "9:30am", "v1.2.3", "Apache-2.0", "3.10.4-rc1", "-3.5%", "$80,000", "1,042.75", "1e-6", "−4",
    "€12.50", "@alice_b.", "#release-notes", "line_items", "camelCaseName", "PascalCase",
    "os.path.join()", "INC-20931", "MAX_SIZE", "__init__", "std::vector", "don't", "l'été", "naïve",
    "e\u0301", "👍🏽", "👨\u200d👩\u200d👧", "🇫🇷", "北京是中国的首都",
    "東京タワーは333メートルです", "한국어",
    "𠀀𠀁", "ab𝐀123", "𝐀12", "١٢٣", "½", "x²", "Ⅻ", "(", ")", "[a]", '"q"', "'s'", "...", "?!", ",",
    "—", "«»", "ok", "The", "answer", "is", "Question:", "foo.bar", "a-b", "x_1", "_x", "α-β",
    "ΟΔΥΣΣΕΥΣ", "straße", "ﬁ", "ﾃｽﾄ", "々", "ー", "\u0301", "a\u200db", "<b>", "a&b", "#&x", "@@a",
    "\x00", "\u200b", "\ufeff", "48/2", "and/or", "x/y.tar.gz", "line1\\nline2", "caf\\u00e9",
    "a\\\\b", "\\", "1100万8569", "U.S.", "e.g.,", "U.S.A", "a.m.",
    "July 20, 1969", "20 July 1969", "Jul. 4 1776", "May", "Mayday 5, 2020",
)
SEGMENTATION_GAPS: tuple[str, ...] = (
    " ", " ", "", "\n", "  ", "\n\n", "    ", "\t", ". ", "\r\n", "\u00a0", "\u3000", "\x1c",
    "\u2028", "\x0b", "\n\n\n",
)


def _old_character(rng: random.Random) -> str:
    """A random character that Unicode 3.2 already had, in the same category as today (so that
    runtimes on older Unicode tables agree on it)."""
    while True:
        code = rng.choice([rng.randint(0x20, 0x7E), rng.randint(0xA0, 0x3000),
                           rng.randint(0x3000, 0xFFFD), rng.randint(0x10000, 0x2FFFF)])
        char = chr(code)
        category = unicodedata.category(char)
        if category not in ("Cn", "Cs") and unicodedata.ucd_3_2_0.category(char) == category:
            return char


def segmentation_cases(tokenizer: Any, n: int = 300, seed: int = 0) -> list[dict[str, Any]]:
    """Generated texts with their units, tokens' units, force-phrase masks and the text rebuilt
    from random keep masks: the segmentation rules checked far beyond the hand-written texts."""
    from edge_lingua.segmentation import join_units, segment
    from edge_lingua.selection import forced_words

    rng = random.Random(seed)
    cases = []
    for _ in range(n):
        parts = [rng.choice(["", "", "    ", "\t"])]
        for _ in range(rng.randint(1, 14)):
            if rng.random() < 0.25:
                parts.append("".join(_old_character(rng) for _ in range(rng.randint(1, 6))))
            else:
                parts.append(rng.choice(SEGMENTATION_PIECES))
            parts.append(rng.choice(SEGMENTATION_GAPS))
        text = "".join(parts)
        seg = segment(tokenizer, text)
        words = seg.words()
        first = rng.randrange(len(words)) if words else 0
        force = ["The answer is", " ".join(words[first : first + rng.randint(1, 3)])]
        masks = []
        for _ in range(3):
            share = rng.random()
            masks.append([rng.random() < share for _ in words])
        cases.append({
            "text": text,
            "word_spans": seg.word_spans.tolist(),
            "word_kinds": list(seg.units.kinds),
            "word_protected": seg.units.protected.tolist(),
            "token_word": seg.token_word.tolist(),
            "force_tokens": force,
            "forced": forced_words(words, force, False).tolist(),
            "keep_masks": masks,
            "joined": [join_units(text, seg.word_spans, np.asarray(m, dtype=bool)) for m in masks],
        })
    return cases


def _context_vectors(scores: Any, text: str) -> dict[str, Any]:
    """Token- and unit-level arrays of one context."""
    from edge_lingua.segmentation import split_units

    units = split_units(text)
    return {
        "words": list(scores.words),
        "word_kinds": list(units.kinds),
        "word_protected": units.protected.tolist(),
        "word_spans": scores.word_spans.tolist(),
        "token_word": scores.token_word.tolist(),
        "windows": [list(w) for w in scores.windows],
        "logits": _logits(scores.logits),
        "token_probs": [float(v) for v in scores.token_probs],
        "word_probs": [float(v) for v in scores.word_probs],
    }


def _logits(logits: np.ndarray) -> list[list[float]]:
    return [[float(v) for v in row] for row in logits.astype(np.float32)]


def _tokens(tokenizer: Any, text: str) -> dict[str, Any]:
    encoding = tokenizer.encode(text, add_special_tokens=False)
    return {
        "token_ids": list(encoding.ids),
        "offsets": [list(o) for o in encoding.offsets],
        "word_ids": [-1 if w is None else int(w) for w in encoding.word_ids],
    }


def write_golden_vectors(
    bundle_dir: Path,
    out_dir: Path,
    texts: Sequence[str | Sequence[str]],
    rates: Sequence[float] = (0.5, 0.33),
    extra_options: Sequence[Mapping[str, Any]] = EXTRA_OPTIONS,
) -> Path:
    """Run the Python runtime on ``texts`` and write ``out_dir/golden_vectors.json``.

    Each text is one prompt: a string, or a list of contexts compressed together. Windows run
    one at a time (batch size 1, as on a phone), so every window's logits are independent of the
    others. Every compression uses ``structure="text"``. Returns the written file.
    """
    import onnxruntime
    import tokenizers

    from edge_lingua.compressor import Compressor, load_tokenizer

    if not texts:
        raise ToolchainError("golden vectors need at least one text")
    compressor = Compressor.load(bundle_dir, providers=["cpu"], batch_size=1)
    manifest = compressor.bundle.manifest
    tokenizer = load_tokenizer(compressor.bundle.tokenizer_path)
    options = [{"rate": float(r)} for r in rates] + [dict(o) for o in extra_options]
    cases = []
    for index, prompt in enumerate(texts):
        contexts = [prompt] if isinstance(prompt, str) else list(prompt)
        started = time.perf_counter()
        context_data = []
        for context in contexts:
            scores = compressor.score(context)
            context_data.append({
                "text": context, **_tokens(tokenizer, context), **_context_vectors(scores, context)
            })
        score_s = time.perf_counter() - started
        results = []
        for opts in options:
            with warnings.catch_warnings():  # low coverage is recorded in the result
                warnings.simplefilter("ignore")
                result = compressor.compress(contexts, structure=STRUCTURE, **opts)
            extra = {}
            if "chunk_end_tokens" in opts:  # other windows, so other logits: record them too
                rescored = [compressor.score(c, opts["chunk_end_tokens"]) for c in contexts]
                extra["rescored"] = [
                    {"windows": [list(w) for w in s.windows], "logits": _logits(s.logits)}
                    for s in rescored
                ]
            results.append(
                {
                    **extra,
                    "options": opts,
                    "compressed_prompt": result.compressed_prompt,
                    "compressed_contexts": result.compressed_contexts,
                    "kept_mask": result.kept_mask,
                    "origin_tokens": result.origin_tokens,
                    "compressed_tokens": result.compressed_tokens,
                    "coverage": result.coverage,
                    "warnings": result.warnings,
                }
            )
        cases.append(
            {
                "name": f"case{index:02d}",
                "contexts": context_data,
                "results": results,
                "python_score_ms": round(score_s * 1000, 3),
            }
        )
    model_path = compressor.bundle.model_path
    data = {
        "format": GOLDEN_FORMAT,
        "bundle": {
            "model_file": manifest.model_file,
            "model_format": manifest.model_format,
            "model_sha256": manifest.files[manifest.model_file],
            "model_bytes": model_path.stat().st_size,
            "tokenizer_file": manifest.tokenizer_file,
            "max_seq_len": manifest.max_seq_len,
            "keep_label": manifest.keep_label,
            "special_tokens": manifest.special_tokens,
            "model_inputs": manifest.model_inputs,
            "quantization": manifest.quantization,
            "source_model": manifest.source_model,
        },
        "generated_by": {
            "provider": compressor.provider,
            "onnxruntime": onnxruntime.__version__,
            "tokenizers": tokenizers.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
        },
        "structure": STRUCTURE,
        "cases": cases,
        "segmentation_cases": segmentation_cases(tokenizer),
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / GOLDEN_NAME
    target.write_text(json.dumps(data, ensure_ascii=True, indent=None) + "\n", encoding="utf-8")
    return target


def _strip_html(lines: Sequence[str]) -> str:
    """Paragraph text of a QuALITY article (HTML lines)."""
    raw = "".join(lines)
    body = raw.split("<body", 1)[-1]
    body = re.sub(r"(?is)<(script|style).*?</\1>", " ", body)
    body = re.sub(r"(?i)</p>|<br\s*/?>", "\n", body)
    text = html.unescape(re.sub(r"<[^>]+>", " ", body))
    paragraphs = [" ".join(p.split()) for p in text.split("\n")]
    return "\n".join(p for p in paragraphs if p)


def golden_texts(data_dir: Path, n_gsm8k: int = 3, quality_chars: int = 4000) -> list[Any]:
    """Real texts (GSM8K test problems, a QuALITY passage) plus :data:`EDGE_TEXTS` and
    :data:`FIDELITY_TEXTS`.

    Also one prompt of two contexts (a GSM8K question and its worked answer) to cover joint
    ranking over contexts.
    """
    gsm8k = Path(data_dir) / "gsm8k" / "test.jsonl"
    quality = Path(data_dir) / "quality" / "quality_example.jsonl"
    for path in (gsm8k, quality):
        if not path.is_file():
            raise ToolchainError(
                f"golden texts need {path}; pass the folder holding gsm8k/ and quality/"
            )
    with gsm8k.open(encoding="utf-8") as handle:
        problems = [json.loads(next(handle)) for _ in range(n_gsm8k)]
    with quality.open(encoding="utf-8") as handle:
        article = json.loads(handle.readline())["article"]
    passage = _strip_html(article)[:quality_chars]
    texts: list[Any] = [f"{p['question']}\n{p['answer']}" for p in problems]
    texts.append(passage)
    texts.append([problems[0]["question"], problems[0]["answer"]])
    texts.extend(EDGE_TEXTS)
    texts.extend(FIDELITY_TEXTS)
    return texts
