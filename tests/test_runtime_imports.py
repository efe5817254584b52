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
