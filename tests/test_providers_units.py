"""Session building: the options every session gets, the fallback to CPU, the errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from edge_lingua import providers
from edge_lingua.errors import InvalidArgumentError, ProviderError
from edge_lingua.providers import (
    CPU,
    SessionConfig,
    batch_size_for,
    create_session,
    resolve_providers,
)
from tests.warning_site import points_at

CUDA = "CUDAExecutionProvider"
SPIN = ("session.intra_op.allow_spinning", "session.inter_op.allow_spinning")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smallest real model: y = x."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    path = tmp_path_factory.mktemp("identity") / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.mark.parametrize(("spin_wait", "flag"), [(True, "1"), (False, "0")])
def test_session_options_carry_threads_optimization_and_spinning(spin_wait: bool,
                                                                  flag: str) -> None:
    options = SessionConfig(threads=3, graph_optimization="basic",
                            spin_wait=spin_wait).session_options()
    assert options.intra_op_num_threads == 3
    assert options.inter_op_num_threads == 1
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    assert [options.get_session_config_entry(key) for key in SPIN] == [flag, flag]
    assert options.log_severity_level == 3  # onnxruntime's warnings stay quiet


def test_without_threads_onnxruntime_chooses() -> None:
    options = SessionConfig().session_options()
    assert options.intra_op_num_threads == 0
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL


@pytest.mark.parametrize("threads", [0, -1, 2.0, "2"])
def test_bad_threads_are_refused(threads: object) -> None:
    with pytest.raises(InvalidArgumentError, match=f"threads must be a positive integer, got "
                                                   f"{threads!r}"):
        SessionConfig(threads=threads).session_options()  # type: ignore[arg-type]


def test_a_bad_optimization_level_is_refused_with_the_choices() -> None:
    with pytest.raises(InvalidArgumentError, match=r"must be one of \['all', 'basic', "
                                                   r"'disable', 'extended'\], got 'max'"):
        SessionConfig(graph_optimization="max").session_options()


def test_a_session_is_built_with_the_configured_options(model: Path) -> None:
    session, provider = create_session(
        model, SessionConfig(providers=["cpu"], threads=1, graph_optimization="disable"))
    assert provider == CPU
    options = session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_DISABLE_ALL


def test_the_cpu_fallback_keeps_the_options_and_warns(
        model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = ort.InferenceSession

    def session(path, sess_options=None, providers=None, **kwargs):
        if CUDA in (providers or []):
            raise RuntimeError("CUDA failure 100: no CUDA-capable device is detected")
        return real(path, sess_options=sess_options, providers=providers, **kwargs)

    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    monkeypatch.setattr(ort, "InferenceSession", session)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        built, provider = create_session(model, SessionConfig(threads=1,
                                                              graph_optimization="basic"))
    assert provider == CPU
    assert built.get_session_options().intra_op_num_threads == 1
    assert built.get_session_options().graph_optimization_level == (
        ort.GraphOptimizationLevel.ORT_ENABLE_BASIC)
    (warning,) = [w for w in caught if "falling back" in str(w.message)]
    assert warning.category is RuntimeWarning
    assert str(warning.message).startswith(f"could not start {CUDA} (CUDA failure 100")
    assert points_at(warning.filename, __file__)  # points at the caller's line


def test_a_model_onnxruntime_cannot_open_is_a_provider_error(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(ProviderError, match=r"onnxruntime could not open broken\.onnx: "):
        create_session(broken, SessionConfig(providers=["cpu"]))
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    with pytest.warns(RuntimeWarning, match="falling back"), \
            pytest.raises(ProviderError, match=r"onnxruntime could not open broken\.onnx: "):
        create_session(broken, SessionConfig())


def test_gpu_providers_batch_windows_and_the_cpu_takes_one() -> None:
    assert batch_size_for(CPU) == 1
    assert batch_size_for(CUDA) == 16
    assert batch_size_for("TensorrtExecutionProvider") == 16


def test_a_provider_this_build_lacks_is_named_in_the_fallback_warning(monkeypatch) -> None:
    monkeypatch.setattr(providers, "available_providers", lambda: [CPU])
    with pytest.warns(RuntimeWarning) as caught:
        assert resolve_providers(["cuda", "cpu"]) == [CPU]
    assert [str(w.message) for w in caught] == [
        f"execution provider(s) {CUDA} not available in this onnxruntime build ({CPU}); "
        "falling back"]
    assert points_at(caught[0].filename, __file__)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_providers() == [CPU]  # no preference given: nothing to warn about
