"""User text for calibration and fidelity: reading it, feeding it to onnxruntime's calibrator."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from edge_lingua.bundle import Bundle
from edge_lingua.compressor import load_tokenizer
from edge_lingua.errors import CalibrationError


def read_texts(path: str | Path) -> list[str]:
    """Texts from a file: JSON lines (a string, or an object's "text" or all its string
    fields joined) or plain text with one text per blank-line separated paragraph."""
    source = Path(path)
    if not source.is_file():
        raise CalibrationError(f"calibration text file {source} does not exist")
    try:
        raw = source.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CalibrationError(f"{source} is not UTF-8 text: {exc}") from None
    if source.suffix == ".jsonl":
        texts = [_json_text(line, source, n) for n, line in enumerate(raw.splitlines(), 1)
                 if line.strip()]
    else:
        texts = [" ".join(p.split()) for p in raw.split("\n\n")]  # read_text made \r\n \n
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise CalibrationError(f"{source} holds no text: calibration needs some")
    return texts


def _json_text(line: str, source: Path, number: int) -> str:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise CalibrationError(f"{source}:{number} is not valid JSON: {exc}") from None
    if isinstance(row, str):
        return row
    if isinstance(row, dict):
        if isinstance(row.get("text"), str):
            return row["text"]
        return " ".join(v for v in row.values() if isinstance(v, str))
    raise CalibrationError(f"{source}:{number} must be a string or an object")


def require_texts(texts: Sequence[str] | None, what: str) -> list[str]:
    """The non-empty texts of ``texts``; a CalibrationError when there are none."""
    kept = [t for t in (texts or []) if isinstance(t, str) and t.strip()]
    if not kept:
        raise CalibrationError(f"{what} text is empty: give at least one non-empty text")
    return kept


def model_feeds(
    bundle: Bundle, texts: Sequence[str], pad_to: int | None = None
) -> list[dict[str, np.ndarray]]:
    """One feed per window of every text, built exactly as the runtime builds them:
    [bos] + up to max_seq_len - 2 tokens + [eos], batch of one. ``pad_to`` pads every window
    to that many positions (pad id, attention mask 0), as fixed-shape NPU models see them;
    onnxruntime's histogram calibrator (percentile) needs equal shapes."""
    manifest = bundle.manifest
    tokenizer = load_tokenizer(bundle.tokenizer_path)
    bos, eos = manifest.special_tokens["bos"], manifest.special_tokens["eos"]
    pad = manifest.special_tokens.get("pad", 0)
    width = manifest.max_seq_len - 2
    feeds = []
    for text in texts:
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        for start in range(0, max(len(ids), 1), width):
            tokens = [bos, *ids[start:start + width], eos]
            length = max(pad_to or 0, len(tokens))
            window = np.full((1, length), pad, dtype=np.int64)
            window[0, : len(tokens)] = tokens
            mask = np.zeros_like(window)
            mask[0, : len(tokens)] = 1
            feed = {
                "input_ids": window,
                "attention_mask": mask,
                "token_type_ids": np.zeros_like(window),
            }
            feeds.append({k: v for k, v in feed.items() if k in manifest.model_inputs})
    return feeds


class TextCalibrationReader(CalibrationDataReader):
    """Feeds calibration windows to onnxruntime's calibrator, with a progress bar."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=len(feeds), desc="calibrating", unit="window", leave=False)
        self._feeds: Iterator[dict[str, np.ndarray]] = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        feed = next(self._feeds, None)
        if feed is None:
            self._bar.close()
        else:
            self._bar.update()
        return feed
