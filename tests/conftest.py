"""Shared fixtures: bundles built through the project's own export path, real data paths."""

from __future__ import annotations

import gc
import importlib.abc
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import hypothesis
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from training.corpus import DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the checkout (real GSM8K and QuALITY); skip if absent."""
    if not (DATA / "gsm8k" / "test.jsonl").is_file():
        pytest.skip(f"shared data not found at {DATA}")
    return DATA


@pytest.fixture(scope="session")
def tiny_bert_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight BERT token classifier exported by edge-lingua's own exporter."""
    pytest.importorskip("torch")
    from tests.toolchain_models import cached_bundle

    return cached_bundle("bert", tmp_path_factory)


@pytest.fixture(scope="session")
def tiny_bert_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Hugging Face checkpoint ``tiny_bert_bundle`` was exported from."""
    pytest.importorskip("torch")
    from tests.toolchain_models import cached_checkpoint

    return cached_checkpoint("bert", tmp_path_factory)


@pytest.fixture(scope="session")
def compressor(request: pytest.FixtureRequest):
    """The compressor of the cascade and proxy tests: the shipped default model when present,
    else the tiny random BERT bundle (modules that test one bundle override this)."""
    from edge_lingua.compressor import Compressor, default_bundle_path

    if (default_bundle_path() / "manifest.json").is_file():
        return Compressor.load()
    return Compressor.load(request.getfixturevalue("tiny_bert_bundle"))


@pytest.fixture
def fault():
    """A scriptable OpenAI-style endpoint on loopback (``tests/servers.FaultServer``)."""
    from tests.servers import FaultServer

    with FaultServer() as server:
        yield server


@pytest.fixture
def proxy_for(compressor, tmp_path):
    """Start in-process proxies (``ProxyServer`` on a free port) in front of a fault server;
    each returns ``(server, ledger)``; all are stopped at the end of the test."""
    from edge_lingua.cascade import CircuitBreaker, Ledger, RemoteClient, RetryPolicy
    from edge_lingua.cascade.prompt import tokenizer_counter
    from edge_lingua.proxy import ProxyConfig, ProxyServer
    from tests.servers import UPSTREAM_KEY

    servers = []

    def start(upstream, *, timeout_s: float = 2.0, breaker_threshold: int = 20,
              anthropic_api: bool = False, **overrides):
        ledger = Ledger(tmp_path / f"ledger{len(servers)}.sqlite")

        def remote(auth: str) -> RemoteClient:
            return RemoteClient(upstream.url, api_key=UPSTREAM_KEY, timeout_s=timeout_s,
                                auth=auth, retry=RetryPolicy(max_retries=2, backoff_base_s=0.01),
                                breaker=CircuitBreaker(breaker_threshold, reset_after_s=60))

        options = {"upstream": remote("bearer"), "compressor": compressor, "ledger": ledger,
                   "rate": 0.4, "count": tokenizer_counter(compressor.bundle.tokenizer_path),
                   "anthropic": remote("x-api-key") if anthropic_api else None, **overrides}
        server = ProxyServer(ProxyConfig(**options), port=0).start()
        servers.append(server)
        return server, ledger

    yield start
    for server in servers:
        server.stop()


class _QuantizeUnderMutmut(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Under mutmut (docs/TESTING.md) the mutated copy of ``quantize/`` is the package
    ``quantize``; serve it under its installed name ``edge_lingua_quantize`` too, so tests
    that import the installed name run the mutants."""

    prefix = "edge_lingua_quantize"

    def find_spec(self, name, path=None, target=None):
        if name == self.prefix or name.startswith(self.prefix + "."):
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        return importlib.import_module("quantize" + spec.name[len(self.prefix):])

    def exec_module(self, module) -> None:
        """The module ran when ``create_module`` imported it."""


# mutmut sets the variable (empty while it prepares, a mutant's name while testing it) before
# the process that forks every mutant's session imports this file
UNDER_MUTMUT = "MUTANT_UNDER_TEST" in os.environ

if UNDER_MUTMUT:
    sys.meta_path.insert(0, _QuantizeUnderMutmut())
    # mutmut runs a test session per mutant: export the test models once, for all of them
    # (export/ is not mutated, so an export is the same under every mutant)
    os.environ.setdefault("EDGE_LINGUA_TEST_CACHE", str(Path.cwd() / ".test-models"))
    # and remember onnxruntime's results (the models are not mutated: tests/onnxruntime_memo.py)
    from tests.onnxruntime_memo import remember_runs

    remember_runs(Path(os.environ["EDGE_LINGUA_TEST_CACHE"]) / "onnxruntime-runs")
    # every mutant meets the same hypothesis examples, and a clean run cannot fail by chance
    hypothesis.settings.register_profile("mutmut", derandomize=True)
    hypothesis.settings.load_profile("mutmut")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under mutmut, a mutant's session runs only the tests of the files that own its module
    (``tests/mutation_owners.py``; mutmut already picked those that call the mutated
    function) that executed the statement the mutant changes (``tests/mutation_lines.py``);
    with ``EDGE_LINGUA_MUTANT_TEST_SECONDS`` set, only the fastest of those, by the durations
    recorded while mutmut collected its stats, while they add up to that many seconds with
    each file's fixture setup counted once (at least one test). They run cheapest first, the
    fixtures each test set up counted (``session_order``): a session stops at its first
    failure (``-x``), so a killed mutant rarely waits for a slow test or a server."""
    stats = Path("mutmut-stats.json")
    mutant = _mutant_under_test()
    if mutant is None or not stats.is_file():
        return

    from tests.mutation_lines import tests_reaching
    from tests.mutation_owners import (
        MUTANT_TEST_SECONDS,
        fastest_within,
        file_of,
        owners_of,
        session_order,
    )

    owners = owners_of(mutant)
    reaching = tests_reaching(mutant, Path.cwd())

    def runs(item: pytest.Item) -> bool:
        return ((owners is None or file_of(item.nodeid) in owners)
                and (reaching is None or item.nodeid in reaching))

    config.hook.pytest_deselected(items=[i for i in items if not runs(i)])
    items[:] = [i for i in items if runs(i)]
    duration = json.loads(stats.read_text(encoding="utf-8")).get("duration_by_test", {})
    setup = Path(SETUP_SECONDS)
    recorded = json.loads(setup.read_text(encoding="utf-8")) if setup.is_file() else {}

    def seconds(item: pytest.Item) -> float:
        return duration.get(item.nodeid, 0.0)

    chosen = fastest_within({i.nodeid: seconds(i) for i in items}, recorded.get("by_file", {}),
                            MUTANT_TEST_SECONDS)
    config.hook.pytest_deselected(items=[i for i in items if i.nodeid not in chosen])
    items[:] = [i for i in items if i.nodeid in chosen]
    order = session_order([i.nodeid for i in items], duration, recorded.get("by_test", {}))
    position = {test: n for n, test in enumerate(order)}
    items.sort(key=lambda item: position[item.nodeid])


# While mutmut records its stats (from mutants/), each test's and each test file's
# fixture-setup seconds are recorded (mutmut records only how long each test's call takes),
# and coverage.py records the lines of the mutated files each test executes
# (tests/mutation_lines.py)
SETUP_SECONDS = "mutmut-setup-seconds.json"
_setup_seconds: dict[str, dict[str, float]] = {"by_file": {}, "by_test": {}}
_line_recorder: list[Any] = []


def _recording_stats() -> bool:
    return UNDER_MUTMUT and os.environ["MUTANT_UNDER_TEST"] == "stats"


def _mutant_under_test() -> str | None:
    """The name of the mutant this session tests (under mutmut, in a mutant's session)."""
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    return mutant if UNDER_MUTMUT and "__mutmut_" in mutant else None


def pytest_runtest_logstart(nodeid: str, location: tuple[str, int | None, str]) -> None:
    for recorder in _line_recorder:
        recorder.switch_context(nodeid)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if _recording_stats() and report.when == "setup":
        by_file = _setup_seconds["by_file"]
        from tests.mutation_owners import file_of

        file = file_of(report.nodeid)
        by_file[file] = by_file.get(file, 0.0) + report.duration
        _setup_seconds["by_test"][report.nodeid] = report.duration


# Each mutant's session logs how long it took (mutmut's fork server reports 0 for every one:
# tests/mutation_sessions.py), and runs its tests in a working directory of its own (below)
_mutant_session: dict[str, Any] = {}


def pytest_sessionstart(session: pytest.Session) -> None:
    mutant = _mutant_under_test()
    if mutant is not None:
        _mutant_session.update(mutant=mutant, started=time.perf_counter(), root=Path.cwd())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _mutant_session:
        from tests.mutation_sessions import record_session

        root = _mutant_session["root"]
        os.chdir(root)
        if "workdir" in _mutant_session:
            shutil.rmtree(_mutant_session["workdir"], ignore_errors=True)
        record_session(root, _mutant_session["mutant"], int(exitstatus),
                       time.perf_counter() - _mutant_session["started"],
                       session.testscollected)
    if _recording_stats() and _setup_seconds["by_file"]:
        Path(SETUP_SECONDS).write_text(json.dumps(_setup_seconds, indent=1), encoding="utf-8")
    if _line_recorder:
        from tests.mutation_lines import save_recording

        save_recording(_line_recorder.pop(), Path.cwd())


def pytest_collection_finish(session: pytest.Session) -> None:
    """Under mutmut every mutant's session is a fork of one that collected the tests: freeze
    what that one holds, so the garbage collector of each fork does not walk (and copy) it;
    a mutant's session then runs its tests in an empty working directory of its own.
    While mutmut records its stats, start recording the lines each test executes."""
    if UNDER_MUTMUT:
        gc.freeze()
    if _mutant_session:
        # sessions run side by side, and a mutant can write where the original would not (a
        # model saved to ``str(None)``) or a tool can write a scratch file into the working
        # directory (onnxruntime's shape inference): neither may reach another mutant's session
        # (under mutants/, so what a session killed at its time limit leaves goes with the run)
        sessions = _mutant_session["root"] / ".sessions"
        sessions.mkdir(exist_ok=True)
        _mutant_session["workdir"] = tempfile.mkdtemp(prefix="mutant-", dir=sessions)
        os.chdir(_mutant_session["workdir"])
    if _recording_stats():
        from tests.mutation_lines import start_recording

        _line_recorder.append(start_recording(Path.cwd()))
