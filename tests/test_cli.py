"""The edge-lingua command line, run as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

TEXT = "Janet's ducks lay 16 eggs per day. She eats three for breakfast.\nShe sells 9 eggs.\n"


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "edge_lingua.cli", *args], input=stdin,
                          capture_output=True, timeout=120)


def test_compress_file_to_stdout(tiny_bert_bundle: Path, tmp_path: Path) -> None:
    path = tmp_path / "prompt.txt"
    path.write_text(TEXT)
    proc = run("compress", str(path), "--bundle", str(tiny_bert_bundle), "--rate", "0.33")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode().strip()
    assert out and len(out) < len(TEXT)
    assert "CPUExecutionProvider" in proc.stderr.decode()


def test_compress_stdin_json(tiny_bert_bundle: Path) -> None:
    proc = run("compress", "--bundle", str(tiny_bert_bundle), "--target-token", "8", "--json",
               "--force-token", "?", stdin=TEXT.encode())
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["compressed_tokens"] <= 8 and data["origin_tokens"] > 8
    assert set(data) >= {"compressed_prompt", "kept_mask", "ratio", "rate", "elapsed_s", "provider"}


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--rate", "0.5"], b"\xff\xfe invalid", "not valid UTF-8"),
        (["--rate", "0.5"], b"   \n ", "empty"),
        (["--rate", "1.5"], TEXT.encode(), "rate must be in (0, 1]"),
        (["--target-token", "0"], TEXT.encode(), "target_token must be > 0"),
    ],
)
def test_bad_input_gives_one_line_error(tiny_bert_bundle: Path, args: list[str], stdin: bytes,
                                        message: str) -> None:
    proc = run("compress", "--bundle", str(tiny_bert_bundle), *args, stdin=stdin)
    err = proc.stderr.decode()
    assert proc.returncode == 2
    assert message in err and "Traceback" not in err


def test_non_bundle_path_gives_one_line_error(tmp_path: Path) -> None:
    proc = run("compress", "--bundle", str(tmp_path), stdin=TEXT.encode())
    assert proc.returncode == 2 and "not a bundle" in proc.stderr.decode()
    assert "Traceback" not in proc.stderr.decode()


def test_inspect_reports_checksums(tiny_bert_bundle: Path, tmp_path: Path) -> None:
    proc = run("inspect", str(tiny_bert_bundle))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["valid"] and report["manifest"]["kind"] == "token-classifier"
    assert all(f["sha256"] == "ok" and f["bytes"] > 0 for f in report["files"].values())

    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_bert_bundle, broken)
    with (broken / "tokenizer.json").open("a") as handle:
        handle.write(" ")
    proc = run("inspect", str(broken))
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["files"]["tokenizer.json"]["sha256"] == "mismatch"


@pytest.mark.parametrize(
    "changes", [{"keep_label": "abc"}, {"special_tokens": [1]}, {"model_inputs": 5},
                {"keep_label": 5}, {"max_seq_len": 10**12}, {"max_seq_len": 256}],
)
def test_inspect_gives_one_line_and_exit_2_for_a_malformed_manifest(
    tiny_bert_bundle: Path, tmp_path: Path, changes: dict[str, object]
) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_bert_bundle, broken)
    data = json.loads((broken / "manifest.json").read_text())
    (broken / "manifest.json").write_text(json.dumps({**data, **changes}))
    proc = run("inspect", str(broken))
    err = proc.stderr.decode()
    assert proc.returncode == 2 and proc.stdout == b""
    assert err.count("\n") == 1 and err.startswith("error: ") and next(iter(changes)) in err


def test_inspect_gives_one_line_and_exit_2_for_a_model_unlike_its_manifest(
    tiny_bert_bundle: Path, tmp_path: Path
) -> None:
    import shutil

    from tests.toolchain_models import three_label_model

    broken = tmp_path / "three"
    shutil.copytree(tiny_bert_bundle, broken)
    three_label_model(broken, 3)
    proc = run("inspect", str(broken))
    err = proc.stderr.decode()
    assert proc.returncode == 2 and err.count("\n") == 1 and "3 logits per token" in err


def test_providers_lists_cpu() -> None:
    proc = run("providers")
    assert proc.returncode == 0 and b"CPUExecutionProvider" in proc.stdout
