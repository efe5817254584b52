"""Where texts are compressed: one :class:`TextCompressor` per local process or Ray actor.

Both engines yield the added fields chunk by chunk, in input order.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from edge_lingua.errors import EdgeLinguaError
from edge_lingua.optional import requires_extra

ADDED_FIELDS = ("compressed_text", "origin_tokens", "compressed_tokens", "error")


@dataclass(frozen=True)
class CorpusOptions:
    """What each worker needs to build its compressor and compress one text."""

    bundle: str | None = None
    rate: float | None = 0.5
    target_token: int | None = None
    threads: int = 1  # one onnxruntime thread per worker: workers give the parallelism


class TextCompressor:
    """One compressor (one per worker process or Ray actor) turning texts into added fields."""

    def __init__(self, options: CorpusOptions) -> None:
        from edge_lingua.compressor import load_compressor

        self.options = options
        self.compressor = load_compressor(options.bundle, threads=options.threads)

    def fields(self, text: str) -> dict[str, Any]:
        """The fields added to a record whose text is ``text``; errors go to ``error``."""
        if not text.strip():
            return {"compressed_text": text, "origin_tokens": 0, "compressed_tokens": 0,
                    "error": None}
        try:
            result = self.compressor.compress(
                text, rate=self.options.rate, target_token=self.options.target_token)
        except EdgeLinguaError as exc:
            return failed(f"{type(exc).__name__}: {exc}")
        return {"compressed_text": result.compressed_prompt,
                "origin_tokens": result.origin_tokens,
                "compressed_tokens": result.compressed_tokens, "error": None}

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Ray Data ``map_batches`` entry: a batch of ``text`` to a batch of added fields.

        Columns hold no None (Ray would make NaN of it): a failure is a non-empty ``error``
        with ``""`` and ``-1`` in the other columns; :func:`_from_ray` undoes this."""
        rows = [self.fields(str(t)) for t in batch["text"]]
        return {
            "position": batch["position"],
            "compressed_text": [r["compressed_text"] or "" for r in rows],
            "origin_tokens": [-1 if r["error"] else r["origin_tokens"] for r in rows],
            "compressed_tokens": [-1 if r["error"] else r["compressed_tokens"] for r in rows],
            "error": [r["error"] or "" for r in rows],
        }


def failed(message: str) -> dict[str, Any]:
    """The added fields of a record that could not be compressed."""
    return {"compressed_text": None, "origin_tokens": None, "compressed_tokens": None,
            "error": message}


_worker: TextCompressor | None = None  # the compressor of a pool worker process


def _init_worker(options: CorpusOptions) -> None:
    global _worker
    _worker = TextCompressor(options)


def _compress_chunk(texts: list[str]) -> list[dict[str, Any]]:
    assert _worker is not None
    return [_worker.fields(t) for t in texts]


def local_results(
    texts: list[str], options: CorpusOptions, workers: int, chunk: int
) -> Iterator[list[dict[str, Any]]]:
    """Added fields of ``texts``, ``chunk`` at a time, from ``workers`` spawned processes."""
    chunks = [texts[i : i + chunk] for i in range(0, len(texts), chunk)]
    if workers == 1:
        compressor = TextCompressor(options)
        yield from ([compressor.fields(t) for t in part] for part in chunks)
        return
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(options,)) as pool:
        yield from pool.imap(_compress_chunk, chunks)


def ray_results(
    texts: list[str], options: CorpusOptions, workers: int | None, chunk: int,
    address: str | None,
) -> Iterator[list[dict[str, Any]]]:
    """Added fields of ``texts``, a batch at a time, from a Ray Data actor pool of ``workers``
    actors (default: one per CPU of the cluster at ``address``, or of a local one)."""
    with requires_extra("ray"):
        import ray
        import ray.data
    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False)
    size = workers or max(int(ray.cluster_resources().get("CPU", 1)), 1)
    execution = ray.data.DataContext.get_current().execution_options
    preserve_order, execution.preserve_order = execution.preserve_order, True
    try:
        items = [{"position": i, "text": t} for i, t in enumerate(texts)]
        dataset = ray.data.from_items(items).map_batches(
            TextCompressor, fn_constructor_args=(options,), batch_size=chunk,
            batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=size), num_cpus=1)
        expected = 0
        for batch in dataset.iter_batches(batch_size=chunk, batch_format="numpy"):
            rows = []
            for j, position in enumerate(batch["position"].tolist()):
                if position != expected:
                    raise EdgeLinguaError(f"Ray returned record {position}, not {expected}")
                expected += 1
                rows.append(_from_ray(batch, j))
            yield rows
    finally:
        execution.preserve_order = preserve_order


def _from_ray(batch: dict[str, Any], j: int) -> dict[str, Any]:
    """Row ``j`` of a batch from :meth:`TextCompressor.__call__` as plain Python values."""
    if batch["error"][j]:
        return failed(str(batch["error"][j]))
    return {"compressed_text": str(batch["compressed_text"][j]),
            "origin_tokens": int(batch["origin_tokens"][j]),
            "compressed_tokens": int(batch["compressed_tokens"][j]), "error": None}
