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
    # the shipped default is question-aware: the answer to the query survives both adapters
    assert len(lines) == 4 and sum("July 20, 1969" in line for line in lines) == 2
