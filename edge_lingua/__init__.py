"""edge-lingua: on-device prompt compression on onnxruntime."""

from edge_lingua.bundle import Bundle, Manifest, load_bundle

__all__ = ["Bundle", "Manifest", "load_bundle"]
__version__ = "0.1.0"
