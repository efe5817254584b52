"""Typed exceptions raised by edge-lingua, and how it warns.

Every error a caller can provoke with bad input or a bad bundle is one of these,
so applications can catch ``EdgeLinguaError`` and never see a stack trace from
inside onnxruntime or tokenizers. A warning names the caller's line (:func:`warn_caller`).
"""

from __future__ import annotations

import sys
import warnings


def warn_caller(message: str, category: type[Warning]) -> None:
    """Warn with the location of the first frame outside edge-lingua: the application's line
    that called the library, however deep inside it the warning arose."""
    frame = sys._getframe(1)
    level = 2  # in warnings.warn's count, the frame that called warn_caller
    while frame.f_back is not None and _in_edge_lingua(frame.f_globals.get("__name__", "")):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


def _in_edge_lingua(module: str) -> bool:
    return module == "edge_lingua" or module.startswith("edge_lingua.")


class EdgeLinguaError(Exception):
    """Base class of every error edge-lingua raises on purpose."""


# --- bundles -----------------------------------------------------------------
class BundleError(EdgeLinguaError):
    """A bundle cannot be used."""


class BundleNotFoundError(BundleError):
    """The path is not a bundle directory (no such directory, or no manifest.json)."""


class ManifestError(BundleError):
    """manifest.json is malformed, lacks a required field, or disagrees with its model.

    ``field`` names the manifest field at fault (``None`` when the file as a whole is bad).
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class UnsupportedFormatError(BundleError):
    """The manifest's format version is not one this runtime understands."""


class WrongBundleKindError(BundleError):
    """The bundle holds a different kind of model than the caller asked for."""


class MissingFileError(BundleError):
    """A file listed in the manifest is not in the bundle."""


class ChecksumMismatchError(BundleError):
    """A bundle file's sha256 differs from the manifest's."""


class UnsafePathError(BundleError):
    """A path in the manifest points outside the bundle directory."""


class NoDefaultModelError(BundleError):
    """No bundle was given and no default model is installed with the package."""


# --- input -------------------------------------------------------------------
class InvalidInputError(EdgeLinguaError, ValueError):
    """The text or an argument given to a compressor is not acceptable."""


class EmptyInputError(InvalidInputError):
    """The text to compress is empty or whitespace only."""


class InvalidArgumentError(InvalidInputError):
    """An argument is out of range or of the wrong type (rate, target_token, ...)."""


class InputEncodingError(InvalidInputError):
    """Input bytes are not valid UTF-8."""


class InvalidFieldError(InvalidArgumentError):
    """A field of a request body is malformed; ``field`` names it (``messages[2].pins``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"'{field}' {message}")
        self.field = field


class RequestTooLargeError(InvalidFieldError):
    """A request is over one of the proxy's size limits (body, messages, characters)."""


class EmptyQuestionError(InvalidArgumentError):
    """A question was passed but it is empty or whitespace only."""


class QuestionNotSupportedError(InvalidArgumentError):
    """A question was passed to a bundle whose manifest does not say it is question-aware."""


# --- execution ---------------------------------------------------------------
class ProviderError(EdgeLinguaError):
    """No usable onnxruntime execution provider could run the model."""


class InferenceError(EdgeLinguaError):
    """onnxruntime failed while running the model."""


# --- toolchain ---------------------------------------------------------------
class ToolchainError(EdgeLinguaError):
    """Base class of export and quantization errors."""


class ToolchainNotInstalledError(ToolchainError):
    """The export/quantize extra (torch, transformers, optimum) is not installed."""


class UnsupportedArchitectureError(ToolchainError):
    """The checkpoint's architecture is not one the exporter supports."""


class CheckpointError(ToolchainError):
    """The source checkpoint is missing or cannot be read."""


class OutputExistsError(ToolchainError):
    """The output folder exists already; edge-lingua never overwrites silently."""


class CalibrationError(ToolchainError):
    """Calibration text is missing or empty."""


class FidelityError(ToolchainError):
    """A quantized model disagrees with the fp32 model more than the threshold allows."""


# --- cascade and proxy -------------------------------------------------------
class CascadeError(EdgeLinguaError):
    """Base class of edge-to-cloud cascade and proxy errors."""


class LocalModelError(CascadeError):
    """The on-device model cannot be loaded or run (or llama-cpp-python is not installed)."""


class RemoteError(CascadeError):
    """Base class of failures talking to the remote chat-completions endpoint."""


class RemoteUnavailableError(RemoteError):
    """The remote did not answer usably after every retry (timeouts, 429/5xx, bad JSON)."""


class CircuitOpenError(RemoteUnavailableError):
    """The circuit breaker is open: the remote failed recently, so no call was made."""


class RemoteRequestError(RemoteError):
    """The remote rejected the request (a 4xx other than 429); retrying would not help."""

    def __init__(self, message: str, status: int, body: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class RemoteRateLimitedError(RemoteUnavailableError):
    """The remote answered 429 until the retries ran out; ``retry_after`` is its advice."""

    def __init__(self, message: str, body: bytes = b"", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = 429
        self.body = body
        self.retry_after = retry_after


class MissingDependencyError(CascadeError):
    """A package of the ``cascade`` extra that this feature needs is not installed."""


class StorageError(CascadeError):
    """A ledger or queue file cannot be created, opened or written."""


class ProxyStopError(CascadeError):
    """The proxy's server did not end within the time ``ProxyServer.stop`` gives it."""
