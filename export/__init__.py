"""Build-time export of Hugging Face checkpoints to edge-lingua bundles."""
