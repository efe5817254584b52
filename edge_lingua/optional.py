"""Optional dependencies: an ImportError that says which extra installs the missing package."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class MissingExtraError(ImportError):
    """An optional package is missing; the message names the extra that installs it."""


@contextmanager
def requires_extra(extra: str) -> Iterator[None]:
    """Turn an ImportError inside the block into one naming ``pip install 'edge-lingua[extra]'``.

        with requires_extra("langchain"):
            from langchain_core.documents import Document
    """
    try:
        yield
    except ImportError as exc:
        missing = exc.name or "a required package"
        raise MissingExtraError(
            f"{missing} is not installed; install it with pip install 'edge-lingua[{extra}]'",
            name=exc.name,
        ) from exc
