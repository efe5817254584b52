"""The multilingual student: Gemma 3's vocabulary and token embeddings under the default's encoder.

MiniLM's uncased WordPiece vocabulary reads most Chinese, Russian and Arabic text letter by
letter (docs/MODEL_CARD.md). Gemma 3 270M's SentencePiece vocabulary covers them, and its
token embeddings say what each piece means. The student keeps the default's six layers and
head and swaps the vocabulary:

* ``tokenizer``: Gemma's pieces and merge order (from the GGUF's vocabulary; a piece's rank is
  its merge priority) as a byte-fallback BPE tokenizer, pruned to the pieces the training text
  uses plus every piece those are merged from, so the pruned tokenizer cuts the training text
  exactly as the whole one does. The special tokens sit at MiniLM's ids (``<pad>`` 0,
  ``<unk>`` 100, ``<bos>`` as [CLS] 101, ``<eos>`` as [SEP] 102), so the training code and the
  pair layout stay the same.
* ``base``: the starting checkpoint. A piece that is a MiniLM token (``▁world`` and
  ``world``, ``ing`` and ``##ing``) starts from MiniLM's embedding; every other piece from its
  Gemma embedding mapped into MiniLM's space by a ridge regression fitted on those pairs.
* ``word-targets`` and ``labels``: the support mix's word targets come from the default's
  keep probabilities on MiniLM rows (``question_labels support-finish``, on the GPU); words
  are the runtime's units whatever the tokenizer, so the targets move to rows tokenized with
  the new vocabulary by item and word.

    python -m training.multilingual tokenizer artifacts/ml_tok artifacts/qa_more.jsonl \
        artifacts/cloze.jsonl
    python -m training.multilingual base artifacts/ml_tok .gpu13/default_fp16 artifacts/ml_base
    python -m training.multilingual word-targets labels_more.jsonl targets_more.jsonl  # GPU
    python -m training.multilingual labels rows_g_more.jsonl targets_more.jsonl labels_g_more.jsonl
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import gguf
    from tokenizers import Tokenizer

SPECIAL_IDS = {"<pad>": 0, "<unk>": 100, "<bos>": 101, "<eos>": 102}
_NORMAL, _USER, _BYTE = 1, 4, 6  # SentencePiece piece types in the GGUF (3: control)
Rank = tuple[int, int, int]


@dataclass(frozen=True)
class GemmaVocabulary:
    """Gemma's pieces (id order is merge priority), their types and the merge ranks."""

    pieces: list[str]
    types: list[int]

    @classmethod
    def load(cls, gguf_path: Path) -> GemmaVocabulary:
        import gguf

        return cls.read(gguf.GGUFReader(str(gguf_path)))

    @classmethod
    def read(cls, reader: gguf.GGUFReader) -> GemmaVocabulary:
        return cls(list(reader.fields["tokenizer.ggml.tokens"].contents()),
                   [int(t) for t in reader.fields["tokenizer.ggml.token_type"].contents()])

    def ids(self) -> dict[str, int]:
        return {p: i for i, p in enumerate(self.pieces)}

    def merges(self) -> dict[tuple[str, str], Rank]:
        """Every pair of pieces that makes a piece, ranked by that piece's id (then by the
        pair's ids: one piece can be made from several pairs)."""
        ids = self.ids()
        ranks: dict[tuple[str, str], Rank] = {}
        for i, (piece, kind) in enumerate(zip(self.pieces, self.types, strict=True)):
            if kind not in (_NORMAL, _USER):
                continue
            for k in range(1, len(piece)):
                left, right = piece[:k], piece[k:]
                if left in ids and right in ids:
                    ranks[left, right] = (i, ids[left], ids[right])
        return ranks


def bpe_symbols(piece: str, ranks: dict[tuple[str, str], Rank]) -> tuple[list[str], set[str]]:
    """BPE on ``piece`` alone: the symbols it ends as and every symbol merged on the way."""
    symbols, made = list(piece), set()
    never = (2**62, 0, 0)
    while len(symbols) > 1:
        best = min(range(len(symbols) - 1),
                   key=lambda j: ranks.get((symbols[j], symbols[j + 1]), never))
        if (symbols[best], symbols[best + 1]) not in ranks:
            break
        symbols[best : best + 2] = [symbols[best] + symbols[best + 1]]
        made.add(symbols[best])
    return symbols, made


def build_tokenizer(vocab: dict[str, int], ranks: dict[tuple[str, str], Rank]) -> Tokenizer:
    """A byte-fallback BPE tokenizer that splits before every ``▁`` (a space)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from tokenizers.processors import TemplateProcessing

    merges = sorted((pair for pair in ranks if all(p in vocab for p in (*pair, "".join(pair)))),
                    key=ranks.__getitem__)
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, byte_fallback=True,
                                     unk_token="<unk>", fuse_unk=True))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never")
    tokenizer.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                           decoders.Fuse()])
    if all(s in vocab for s in SPECIAL_IDS):
        tokenizer.post_processor = TemplateProcessing(
            single="<bos> $A <eos>", pair="<bos> $A <eos> $B <eos>",
            special_tokens=[("<bos>", vocab["<bos>"]), ("<eos>", vocab["<eos>"])])
    return tokenizer


def pruned_vocabulary(gemma: GemmaVocabulary, ranks: dict[tuple[str, str], Rank],
                      texts: Iterable[str], min_count: int = 2) -> tuple[dict[str, int], list[int]]:
    """The pieces ``texts`` use at least ``min_count`` times (whole-vocabulary tokenization),
    every piece they are merged from and the byte pieces, renumbered with
    :data:`SPECIAL_IDS`; also each new id's Gemma id."""
    ids = gemma.ids()
    full = build_tokenizer(ids, ranks)
    counts: Counter[int] = Counter()
    for encoding in full.encode_batch(list(texts), add_special_tokens=False):
        counts.update(encoding.ids)
    ordinary = {i for i, c in counts.items()
                if c >= min_count and gemma.types[i] in (_NORMAL, _USER)}
    keep = set(ordinary)
    for i in ordinary:
        _, made = bpe_symbols(gemma.pieces[i], ranks)
        keep |= {ids[s] for s in made} | {ids[c] for c in gemma.pieces[i] if c in ids}
    byte_pieces = [i for i, kind in enumerate(gemma.types) if kind == _BYTE]
    vocab = dict(SPECIAL_IDS)
    gemma_of = {new: ids[piece] for piece, new in SPECIAL_IDS.items()}
    free = (n for n in range(len(gemma.pieces)) if n not in SPECIAL_IDS.values())
    for old in [*byte_pieces, *sorted(keep)]:
        new = next(free)
        vocab[gemma.pieces[old]] = new
        gemma_of[new] = old
    return vocab, [gemma_of[n] for n in range(len(vocab))]


def write_tokenizer(out: Path, gguf_path: Path, texts: Iterable[str], min_count: int = 2) -> int:
    """The pruned tokenizer as a Hugging Face tokenizer folder, with ``gemma_ids.json``."""
    from transformers import PreTrainedTokenizerFast

    gemma = GemmaVocabulary.load(gguf_path)
    ranks = gemma.merges()
    vocab, gemma_ids = pruned_vocabulary(gemma, ranks, texts, min_count)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(vocab, ranks), bos_token="<bos>", eos_token="<eos>",
        cls_token="<bos>", sep_token="<eos>", pad_token="<pad>", unk_token="<unk>",
        model_max_length=512)
    fast.save_pretrained(str(out))
    (out / "gemma_ids.json").write_text(json.dumps(gemma_ids), encoding="utf-8")
    return len(vocab)


def minilm_pairs(minilm_vocab: dict[str, int], gemma_ids: dict[str, int]
                 ) -> tuple[dict[int, int], dict[int, int]]:
    """Gemma id -> MiniLM id: the pairs the map is fitted on (``▁world`` and ``world``,
    ``ing`` and ``##ing``) and the pieces that start from MiniLM's embedding (those, and
    ``▁World`` and ``world`` for ``world``)."""
    fitted: dict[int, int] = {}
    copied: dict[int, int] = {}
    for token, minilm in minilm_vocab.items():
        if token.startswith("[") or not token.strip():
            continue
        if token.startswith("##"):
            names = [token[2:]]
        else:
            names = ["▁" + token, "▁" + token.capitalize(), token]
        if names[0] in gemma_ids:
            fitted[gemma_ids[names[0]]] = minilm
        for name in names:
            if name in gemma_ids:
                copied.setdefault(gemma_ids[name], minilm)
    return fitted, copied


def initial_embeddings(gemma_embeddings: np.ndarray, minilm_embeddings: np.ndarray,
                       pairs: tuple[dict[int, int], dict[int, int]], new_to_gemma: Sequence[int],
                       ridge: float = 1.0) -> tuple[np.ndarray, float]:
    """Word embeddings of the new vocabulary (module docstring; ``pairs`` from
    :func:`minilm_pairs`) and the held-out R² of the Gemma-to-MiniLM map (fitted on 90% of
    the pairs for that figure, then on all)."""
    fitted, copied = pairs
    g_ids = np.fromiter(fitted, dtype=np.int64)
    m_ids = np.fromiter(fitted.values(), dtype=np.int64)
    source, target = gemma_embeddings[g_ids], minilm_embeddings[m_ids]

    def fit(rows: np.ndarray) -> np.ndarray:
        x = source[rows]
        return np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ target[rows])

    order = np.random.default_rng(0).permutation(len(g_ids))
    train, test = order[: len(order) * 9 // 10], order[len(order) * 9 // 10 :]
    error = source[test] @ fit(train) - target[test]
    spread = target[test] - target[test].mean(0)
    r2 = float(1 - (error**2).sum() / (spread**2).sum())
    projection = fit(np.arange(len(g_ids)))
    out = np.empty((len(new_to_gemma), minilm_embeddings.shape[1]), np.float32)
    for new, old in enumerate(new_to_gemma):
        if new in SPECIAL_IDS.values():
            out[new] = minilm_embeddings[new]  # [PAD] [UNK] [CLS] [SEP] share the ids
        elif old in copied:
            out[new] = minilm_embeddings[copied[old]]
        else:
            out[new] = gemma_embeddings[old] @ projection
    return out, r2


def write_base(tokenizer_dir: Path, default: Path, out: Path, gguf_path: Path,
               minilm_tokenizer: Path) -> float:
    """The starting checkpoint (fp16 shards + config.json): the default's weights with the new
    word embeddings. Returns the map's held-out R²."""
    import gguf
    from gguf.quants import dequantize

    from training.checkpoint import load_shards, save_shards

    reader = gguf.GGUFReader(str(gguf_path))
    vocabulary = GemmaVocabulary.read(reader)
    tensor = next(t for t in reader.tensors if t.name == "token_embd.weight")
    gemma = dequantize(tensor.data, tensor.tensor_type).reshape(len(vocabulary.pieces), -1)
    new_to_gemma = json.loads((tokenizer_dir / "gemma_ids.json").read_text(encoding="utf-8"))
    weights = load_shards(default)
    key = "bert.embeddings.word_embeddings.weight"
    minilm_vocab = json.loads(minilm_tokenizer.read_text(encoding="utf-8"))["model"]["vocab"]
    embeddings, r2 = initial_embeddings(
        gemma.astype(np.float32), weights[key].astype(np.float32),
        minilm_pairs(minilm_vocab, vocabulary.ids()), new_to_gemma)
    weights[key] = embeddings.astype(np.float16)
    save_shards(weights, out)
    config = json.loads((default / "config.json").read_text(encoding="utf-8"))
    config["vocab_size"] = len(new_to_gemma)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return r2


def write_word_targets(labels: Path, out: Path) -> int:
    """Each item's word targets in thousandths, from ``question_labels support-finish``."""
    n = 0
    with labels.open(encoding="utf-8") as src, out.open("w", encoding="utf-8") as dst:
        for line in src:
            row = json.loads(line)
            dst.write(json.dumps({"uid": row["uid"],
                                  "t": [round(1000 * x) for x in row["targets"]]}) + "\n")
            n += 1
    return n


def transfer_labels(rows: Path, targets: Path, out: Path) -> int:
    """Training labels for ``rows`` (``question_labels support`` with the new tokenizer): each
    item's word targets, both cut to the words that both windows hold."""
    by_uid = {}
    with targets.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            by_uid[row["uid"]] = row["t"]
    n = 0
    with rows.open(encoding="utf-8") as src, out.open("w", encoding="utf-8") as dst:
        for line in src:
            row = json.loads(line)
            word_targets = by_uid.get(row["uid"])
            if word_targets is None:
                continue
            words = min(len(word_targets), len(row["levels"]))
            tokens = sum(1 for w in row["token_word"] if w < words)
            dst.write(json.dumps({
                "uid": row["uid"], "question_ids": row["question_ids"],
                "token_ids": row["token_ids"][:tokens], "token_word": row["token_word"][:tokens],
                "evidence": row["evidence"][:words],
                "targets": [x / 1000 for x in word_targets[:words]],
            }) + "\n")
            n += 1
    return n


def item_texts(paths: Iterable[Path]) -> list[str]:
    """The distinct texts and questions of each item file (``training.qa_corpus``,
    ``training.cloze``), one file after the other: a paragraph in two files counts twice."""
    texts: list[str] = []
    for path in paths:
        seen: dict[str, None] = {}
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                for text in (row["text"], row["question"]):
                    if text:
                        seen.setdefault(text, None)
        texts.extend(seen)
    return texts


def main(argv: list[str] | None = None) -> int:
    from training.teacher import gemma_path

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    t = sub.add_parser("tokenizer")
    t.add_argument("out", type=Path)
    t.add_argument("items", type=Path, nargs="+")
    t.add_argument("--min-count", type=int, default=2)
    b = sub.add_parser("base")
    b.add_argument("tokenizer", type=Path)
    b.add_argument("default", type=Path, help="the default's fp16 shards + config.json")
    b.add_argument("out", type=Path)
    b.add_argument("--minilm-tokenizer", type=Path,
                   default=Path("edge_lingua/models/default/tokenizer.json"))
    w = sub.add_parser("word-targets")
    w.add_argument("labels", type=Path)
    w.add_argument("out", type=Path)
    lab = sub.add_parser("labels")
    lab.add_argument("rows", type=Path)
    lab.add_argument("targets", type=Path)
    lab.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    if args.step == "tokenizer":
        print(write_tokenizer(args.out, gemma_path(), item_texts(args.items), args.min_count))
    elif args.step == "base":
        r2 = write_base(args.tokenizer, args.default, args.out, gemma_path(),
                        args.minilm_tokenizer)
        print(f"held-out R2 {r2:.3f}")
    elif args.step == "word-targets":
        print(write_word_targets(args.labels, args.out))
    else:
        print(transfer_labels(args.rows, args.targets, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
