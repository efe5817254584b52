"""Build-time quantization of edge-lingua bundles."""
