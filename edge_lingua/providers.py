"""Execution providers: the one place that decides where a model runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from edge_lingua.errors import InvalidArgumentError, ProviderError, warn_caller

CPU = "CPUExecutionProvider"
ALIASES = {
    "cpu": CPU,
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "nnapi": "NnapiExecutionProvider",
    "qnn": "QNNExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "directml": "DmlExecutionProvider",
    "dml": "DmlExecutionProvider",
}
# What runs when the caller states no preference: a GPU when onnxruntime has one, else CPU.
DEFAULT_PREFERENCE = ("CUDAExecutionProvider", CPU)
# Windows per inference call: 1 on CPU keeps every window's result independent of its
# neighbours (dynamic INT8 computes activation scales over the whole batch tensor).
_BATCH_SIZE = {CPU: 1, "XnnpackExecutionProvider": 1}
_DEFAULT_GPU_BATCH = 16
GRAPH_OPTIMIZATION = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def canonical_name(name: str) -> str:
    """Map a short name ('cuda', 'qnn') or a full provider name to onnxruntime's name."""
    if not isinstance(name, str) or not name:
        raise InvalidArgumentError(f"provider names are non-empty strings, got {name!r}")
    return ALIASES.get(name.lower(), name)


def available_providers() -> list[str]:
    """Providers this onnxruntime build offers on this machine."""
    return list(ort.get_available_providers())


def resolve_providers(preference: Sequence[str] | None = None) -> list[str]:
    """Filter a preference list by what is available; CPU always ends the list."""
    wanted = [canonical_name(p) for p in (preference or DEFAULT_PREFERENCE)]
    available = set(available_providers())
    chosen = [p for p in dict.fromkeys(wanted) if p in available]
    unavailable = [p for p in wanted if p not in available]
    if preference and unavailable:
        warn_caller(
            f"execution provider(s) {', '.join(unavailable)} not available in this onnxruntime "
            f"build ({', '.join(sorted(available))}); falling back",
            RuntimeWarning,
        )
    if CPU not in chosen:
        chosen.append(CPU)
    return chosen


def batch_size_for(provider: str) -> int:
    """How many windows one inference call takes on this provider."""
    return _BATCH_SIZE.get(provider, _DEFAULT_GPU_BATCH)


@dataclass(frozen=True)
class SessionConfig:
    """How to build an onnxruntime session."""

    providers: Sequence[str] | None = None
    threads: int | None = None
    graph_optimization: str = "all"
    # onnxruntime's intra-op threads spin while they wait for work: lowest latency on an idle
    # CPU, but on a CPU shared with other busy processes the spinning threads steal the time
    # the others need (one 512-token window: 368 ms without, 687 ms with, on 2 loaded cores).
    spin_wait: bool = True

    def session_options(self) -> ort.SessionOptions:
        options = ort.SessionOptions()
        if self.threads is not None:
            if not isinstance(self.threads, int) or self.threads < 1:
                raise InvalidArgumentError(
                    f"threads must be a positive integer, got {self.threads!r}"
                )
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
        if self.graph_optimization not in GRAPH_OPTIMIZATION:
            raise InvalidArgumentError(
                f"graph_optimization must be one of {sorted(GRAPH_OPTIMIZATION)}, "
                f"got {self.graph_optimization!r}"
            )
        options.graph_optimization_level = GRAPH_OPTIMIZATION[self.graph_optimization]
        spin = "1" if self.spin_wait else "0"
        options.add_session_config_entry("session.intra_op.allow_spinning", spin)
        options.add_session_config_entry("session.inter_op.allow_spinning", spin)
        options.log_severity_level = 3
        return options


def create_session(model_path: Path, config: SessionConfig) -> tuple[ort.InferenceSession, str]:
    """Open an onnxruntime session on the best available provider; returns it and the provider."""
    providers = resolve_providers(config.providers)
    options = config.session_options()
    try:
        session = ort.InferenceSession(str(model_path), sess_options=options, providers=providers)
    except Exception as exc:
        if providers == [CPU]:
            raise ProviderError(f"onnxruntime could not open {model_path.name}: {exc}") from None
        warn_caller(
            f"could not start {providers[0]} ({exc}); falling back to {CPU}",
            RuntimeWarning,
        )
        try:
            session = ort.InferenceSession(str(model_path), sess_options=options, providers=[CPU])
        except Exception as cpu_exc:
            raise ProviderError(
                f"onnxruntime could not open {model_path.name}: {cpu_exc}"
            ) from None
    return session, session.get_providers()[0]
