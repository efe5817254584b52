"""Log lines the proxy writes: control characters escaped, request bodies never included."""

from __future__ import annotations

import logging
import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape(text: str) -> str:
    """``text`` with every control character (CR, LF, ESC...) written as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class EscapingFormatter(logging.Formatter):
    """A formatter whose every line is escaped, whichever logger wrote it.

    Tracebacks keep their line breaks; everything in the message itself is escaped, so a
    logged value can never start a forged log line.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape(super().formatMessage(record))
