"""edge-lingua: on-device prompt compression on onnxruntime."""

from edge_lingua.bundle import Bundle, Manifest, load_bundle
from edge_lingua.compressor import Compressor, ContextScores, load_compressor
from edge_lingua.result import CompressionResult

__all__ = ["Bundle", "CompressionResult", "Compressor", "ContextScores", "Manifest", "load_bundle",
           "load_compressor"]
__version__ = "0.1.0"
