"""The runtime never imports the heavy toolchain."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "transformers", "optimum")


def test_runtime_and_cli_import_no_heavy_packages() -> None:
    code = (
        "import sys, edge_lingua, edge_lingua.compressor, edge_lingua.cli\n"
        "edge_lingua.cli.build_parser()\n"
        f"print([m for m in sys.modules if m.split('.')[0] in {HEAVY!r}])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert proc.stdout.strip() == "[]", proc.stdout


def test_runtime_source_never_imports_the_repo_only_folders() -> None:
    """No module of the installed package imports ``benchmarks/`` or ``training/`` (repo-only),
    not even lazily inside a function."""
    import ast
    from pathlib import Path

    import edge_lingua

    offenders = []
    for path in Path(edge_lingua.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}: {n}" for n in names
                          if n.split(".")[0] in ("benchmarks", "training")]
    assert not offenders


def test_bench_all_outside_a_checkout_says_where_to_run_it(tmp_path, monkeypatch,
                                                           capsys) -> None:
    from edge_lingua.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["bench", "all"]) == 2
    assert "source checkout" in capsys.readouterr().err
