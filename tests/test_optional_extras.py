"""A missing optional package gives an ImportError that names the extra to install."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from edge_lingua.optional import requires_extra


def _block(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in names:
            monkeypatch.delitem(sys.modules, name)
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)  # import raises ModuleNotFoundError


@pytest.mark.parametrize(("module", "blocked", "extra"), [
    ("edge_lingua.integrations.langchain", "langchain_core", "langchain"),
    ("edge_lingua.integrations.llama_index", "llama_index", "llama-index"),
])
def test_adapters_name_their_extra(monkeypatch, module, blocked, extra) -> None:
    monkeypatch.delitem(sys.modules, module, raising=False)
    _block(monkeypatch, blocked)
    with pytest.raises(ImportError, match=rf"pip install 'edge-lingua\[{extra}\]'") as info:
        importlib.import_module(module)
    assert info.value.name.startswith(blocked)


def test_ray_run_names_the_ray_extra(monkeypatch, tmp_path: Path) -> None:
    from edge_lingua.corpus import compress_corpus

    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "a b c"}\n')
    _block(monkeypatch, "ray")
    with pytest.raises(ImportError, match=r"edge-lingua\[ray\]"):
        compress_corpus(src, tmp_path / "out.jsonl", use_ray=True, progress=False)
    assert not (tmp_path / "out.jsonl").exists()


def test_parquet_names_the_corpus_extra(monkeypatch, tmp_path: Path, capsys) -> None:
    from edge_lingua.cli import main

    src = tmp_path / "in.parquet"
    src.write_bytes(b"PAR1")
    _block(monkeypatch, "pyarrow")
    # the command line prints the message (no traceback) and exits 2
    assert main(["compress-corpus", str(src), str(tmp_path / "out.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "pyarrow.parquet is not installed" in err and "edge-lingua[corpus]" in err


def test_playground_names_its_extra(monkeypatch) -> None:
    from edge_lingua.playground import playground_routes

    _block(monkeypatch, "starlette")
    with pytest.raises(ImportError, match=r"edge-lingua\[playground\]"):
        playground_routes(object(), None)


def test_other_errors_pass_through() -> None:
    with pytest.raises(ValueError, match="unrelated"), requires_extra("x"):
        raise ValueError("unrelated")
