"""Under mutation testing, onnxruntime's results are remembered across mutants' sessions.

mutmut runs a test session per mutant, and most sessions feed the same windows to the same
models as the clean run did. The models are not mutated: a model's outputs depend only on its
bytes, the session's options and providers, and the inputs, so ``InferenceSession.run`` returns
what an earlier session computed for exactly those, from ``<cache>/onnxruntime-runs``. The
mutated code still runs in full: a mutant that changes a window, an option or a quantized model
changes the key and runs the model. Failures are never remembered.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

MAX_REMEMBERED_BYTES = 16 << 20


def _options_fingerprint(options: ort.SessionOptions | None) -> str:
    if options is None:
        return "default"
    values = []
    for name in sorted(dir(options)):
        if name.startswith("_"):
            continue
        value = getattr(options, name)
        if not callable(value):
            values.append(f"{name}={value!r}")
    return ";".join(values)


def _model_digest(model: Any) -> str:
    if isinstance(model, bytes | bytearray):
        return hashlib.sha256(model).hexdigest()
    return hashlib.sha256(Path(model).read_bytes()).hexdigest()


def _run_key(session_key: str, output_names: Sequence[str] | None,
             feed: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(f"{session_key}|{output_names!r}".encode())
    for name in sorted(feed):
        array = np.ascontiguousarray(feed[name])
        digest.update(f"|{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def remember_runs(cache: Path) -> Callable[[], None]:
    """Make every ``onnxruntime.InferenceSession`` remember its results under ``cache``;
    returns the function that undoes it."""
    cache.mkdir(parents=True, exist_ok=True)
    original_init = ort.InferenceSession.__init__
    original_run = ort.InferenceSession.run

    def init(self: ort.InferenceSession, path_or_bytes: Any, sess_options: Any = None,
             *args: Any, **kwargs: Any) -> None:
        original_init(self, path_or_bytes, sess_options, *args, **kwargs)
        self._remembered_as = "|".join((_model_digest(path_or_bytes),
                                        _options_fingerprint(sess_options),
                                        ",".join(self.get_providers())))

    def run(self: ort.InferenceSession, output_names: Sequence[str] | None,
            input_feed: Mapping[str, Any], run_options: Any = None) -> list[Any]:
        if run_options is not None or not hasattr(self, "_remembered_as"):
            return original_run(self, output_names, input_feed, run_options)
        path = cache / f"{_run_key(self._remembered_as, output_names, input_feed)}.npz"
        if path.is_file():
            with np.load(path) as stored:
                return [stored[f"arr_{i}"] for i in range(len(stored.files))]
        outputs = original_run(self, output_names, input_feed)
        if (all(isinstance(o, np.ndarray) for o in outputs)
                and sum(o.nbytes for o in outputs) <= MAX_REMEMBERED_BYTES):
            handle, temporary = tempfile.mkstemp(dir=cache, suffix=".npz")
            with os.fdopen(handle, "wb") as out:
                np.savez(out, *outputs)
            os.replace(temporary, path)  # atomic: sessions run side by side
        return outputs

    ort.InferenceSession.__init__ = init  # type: ignore[method-assign]
    ort.InferenceSession.run = run  # type: ignore[method-assign]

    def undo() -> None:
        ort.InferenceSession.__init__ = original_init  # type: ignore[method-assign]
        ort.InferenceSession.run = original_run  # type: ignore[method-assign]

    return undo
