"""edge-lingua benchmarks: speed, memory, fidelity and quality, side by side with llmlingua.

Run everything with ``python -m benchmarks.run_all --out artifacts/bench`` (see docs/BENCHMARKS.md);
each section is also a module of its own (``python -m benchmarks.speed --help`` ...).
"""
