"""The quantization modes edge-lingua offers and what each is for."""

from __future__ import annotations

MODES = {
    "dynamic-int8": "int8 weights, activations quantized at run time (CPUs)",
    "static-qdq-int8": "QDQ uint8 activations / int8 weights, calibrated (QNN, NNAPI, OpenVINO)",
    "qdq-u16": "QDQ uint16 activations / uint8 weights, calibrated (Qualcomm Hexagon HTP)",
    "int4-weight": "block-wise int4 MatMul weights (MatMulNBits), fp32 activations",
}
CALIBRATED = ("static-qdq-int8", "qdq-u16")
# onnxruntime's entropy calibrator is left out: it fails on the constant tensors of BERT graphs
# ("Too many bins for data range"), measured with onnxruntime 1.32.
CALIBRATE_METHODS = ("minmax", "percentile")
DEFAULT_BLOCK_SIZE = 32
