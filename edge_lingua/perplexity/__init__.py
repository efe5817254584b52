"""Perplexity-based compression: a small causal LM keeps the tokens it finds surprising.

Methods: ``perplexity`` (LLMLingua), ``longllmlingua`` (question-aware) and
``self-information`` (Selective-Context), on an ONNX causal-LM bundle (onnxruntime) or a
GGUF model (llama-cpp-python).
"""

from edge_lingua.perplexity.compressor import PerplexityCompressor
from edge_lingua.perplexity.options import METHODS

__all__ = ["METHODS", "PerplexityCompressor"]
