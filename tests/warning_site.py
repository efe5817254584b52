"""Where a warning edge-lingua gives on a caller's behalf should point."""

from __future__ import annotations

import os


def points_at(filename: str, caller: str) -> bool:
    """Whether a warning's ``filename`` is the ``caller``'s file. Under mutmut, whose
    trampolines stand between every call and the library's function, the nearest frame outside
    the library is the trampoline's, so that is where it points there."""
    if "MUTANT_UNDER_TEST" in os.environ:
        from mutmut.mutation import trampoline

        return filename in (caller, trampoline.__file__)
    return filename == caller
