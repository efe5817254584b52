"""Peak resident memory of a piece of code, measured in a fresh subprocess.

After ``setup`` runs, the kernel's peak-RSS mark (``VmHWM``) is reset through
``/proc/self/clear_refs``; after ``code`` runs, the peak minus the resident size before it is
what ``code`` needed at its worst moment, transient arrays included (an RSS reading after the
call misses every array freed before it returns).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_TEMPLATE = """
import json
from edge_lingua.bench import peak_rss_mb

def _rss_mb():
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
{setup}
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")  # reset VmHWM to the current RSS
before = _rss_mb()
{code}
print(json.dumps({{"peak_growth_mb": peak_rss_mb() - before, "report": report}}))
"""


def peak_growth_mb(setup: str, code: str, timeout: int = 600) -> tuple[float, object]:
    """(peak RSS growth in MiB while ``code`` ran, the value ``code`` left in ``report``)."""
    script = _TEMPLATE.format(setup=textwrap.dedent(setup), code=textwrap.dedent(code))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["peak_growth_mb"], out["report"]
