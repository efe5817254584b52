"""The README's integration snippets run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def _snippets() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Where you build", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_integration_snippets_run(capsys) -> None:
    pytest.importorskip("langchain_classic")
    pytest.importorskip("llama_index.core")
    snippets = _snippets()
    assert len(snippets) == 2
    namespace: dict = {}
    for code in snippets:  # the second uses the first's texts
        exec(compile(code, str(README), "exec"), namespace)
    lines = capsys.readouterr().out.splitlines()
    # both adapters hand the query to the shipped question-aware default as the question: each
    # printed text is exactly its compression with the question (how much of the answer that
    # keeps is the model's business, measured in tests/test_default_model.py)
    from edge_lingua import Compressor

    compressor = Compressor.load()
    query = "When did Apollo 11 land?"
    asked = {compressor.compress(t, question=query, rate=0.5).compressed_prompt
             for t in namespace["texts"]}
    plain = {compressor.compress(t, rate=0.5).compressed_prompt for t in namespace["texts"]}
    assert asked != plain
    assert len(lines) == 4
    assert {line.split(" ", 1)[1] for line in lines} == asked
