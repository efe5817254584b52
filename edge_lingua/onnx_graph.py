"""What an ONNX file declares about itself, read without the ``onnx`` package.

The runtime depends on onnxruntime, tokenizers and numpy only, and onnxruntime does not expose
a graph's initializers. Checking a bundle's manifest against its model needs two facts from the
file: the shape of every initializer (the position-embedding table bounds ``max_seq_len``) and
the declared shape of every graph output (the logits' last axis is the number of labels). Both
are read here from the protobuf wire format of ``ModelProto``, skipping tensor data (a walk
over field headers, not a parse of the weights).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_lingua.errors import ManifestError

# Field numbers of onnx.proto3 (ModelProto.graph, GraphProto.initializer/output, ...).
_MODEL_GRAPH = 7
_GRAPH_INITIALIZER = 5
_GRAPH_OUTPUT = 12
_TENSOR_DIMS = 1
_TENSOR_NAME = 8
_VALUE_INFO_NAME = 1
_VALUE_INFO_TYPE = 2
_TYPE_TENSOR = 1
_TENSOR_TYPE_SHAPE = 2
_SHAPE_DIM = 1
_DIM_VALUE = 1
_DIM_PARAM = 2
# Initializer names of learned absolute position embeddings (BERT/RoBERTa/DistilBERT, GPT-2).
_POSITION_TABLE = re.compile(r"(position_embeddings?|wpe)(\.weight)?(_quantized)?$")

Dim = int | str | None  # a fixed size, a symbolic name, or unknown


@dataclass(frozen=True)
class GraphFacts:
    """Initializer shapes and output shapes declared by an ONNX model file."""

    initializers: dict[str, tuple[int, ...]]
    outputs: dict[str, tuple[Dim, ...]]

    @property
    def position_limit(self) -> int | None:
        """Rows of the learned position-embedding table (positions the model can encode)."""
        rows = [shape[0] for name, shape in self.initializers.items()
                if _POSITION_TABLE.search(name) and len(shape) == 2]
        return min(rows) if rows else None


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: memoryview) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of every field of one message; value is an int for
    varints and a memoryview for length-delimited fields; fixed-width fields are skipped."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, wire, value
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise ValueError("field runs past the end of its message")
            yield number, wire, buf[pos : pos + size]
            pos += size
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if pos > len(buf):
            raise ValueError("field runs past the end of its message")


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _tensor_shape(buf: memoryview) -> tuple[str, tuple[int, ...]]:
    name, dims = "", []
    for number, wire, value in _fields(buf):
        if number == _TENSOR_NAME and wire == 2:
            name = bytes(value).decode("utf-8", "replace")
        elif number == _TENSOR_DIMS and wire == 0:
            dims.append(_signed(value))
        elif number == _TENSOR_DIMS and wire == 2:  # packed
            pos = 0
            while pos < len(value):
                dim, pos = _varint(value, pos)
                dims.append(_signed(dim))
    return name, tuple(dims)


def _sub(buf: memoryview, wanted: int) -> memoryview | None:
    for number, wire, value in _fields(buf):
        if number == wanted and wire == 2:
            return value
    return None


def _output_shape(buf: memoryview) -> tuple[str, tuple[Dim, ...]]:
    name, dims = "", []
    for number, wire, value in _fields(buf):
        if number == _VALUE_INFO_NAME and wire == 2:
            name = bytes(value).decode("utf-8", "replace")
        elif number == _VALUE_INFO_TYPE and wire == 2:
            tensor = _sub(value, _TYPE_TENSOR)
            shape = None if tensor is None else _sub(tensor, _TENSOR_TYPE_SHAPE)
            for dim_no, dim_wire, dim in _fields(shape) if shape is not None else ():
                if dim_no != _SHAPE_DIM or dim_wire != 2:
                    continue
                size: Dim = None
                for kind, kind_wire, v in _fields(dim):
                    if kind == _DIM_VALUE and kind_wire == 0:
                        size = _signed(v)
                    elif kind == _DIM_PARAM and kind_wire == 2:
                        size = bytes(v).decode("utf-8", "replace")
                dims.append(size)
    return name, tuple(dims)


def read_graph_facts(path: Path) -> GraphFacts:
    """Initializer and output shapes of the ONNX model at ``path``; ManifestError if the file
    is not an ONNX model."""
    try:
        return _parse(memoryview(path.read_bytes()))
    except (ValueError, OSError) as exc:
        raise ManifestError(
            f"model_file {path.name!r} is not a readable ONNX model: {exc}", field="model_file"
        ) from None


def _parse(model: memoryview) -> GraphFacts:
    graph = _sub(model, _MODEL_GRAPH)
    if graph is None:
        raise ValueError("it has no graph")
    initializers: dict[str, tuple[int, ...]] = {}
    outputs: dict[str, tuple[Dim, ...]] = {}
    for number, wire, value in _fields(graph):
        if number == _GRAPH_INITIALIZER and wire == 2:
            name, dims = _tensor_shape(value)
            initializers[name] = dims
        elif number == _GRAPH_OUTPUT and wire == 2:
            name, shape = _output_shape(value)
            outputs[name] = shape
    return GraphFacts(initializers=initializers, outputs=outputs)
