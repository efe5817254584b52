"""The test files that own each mutated module, for mutation testing (docs/TESTING.md).

Under mutmut a mutant runs only the tests, among those that call its function, of the files
that own its module (``tests/conftest.py``; the longest module prefix wins): a module's own
tests kill its mutants, and a surviving mutant no longer runs every slow test that passes
through it.
"""

import os

# the recorded test time one mutant's session may spend, for a quick pass (docs/TESTING.md):
# unlimited unless set, since a 2 s budget cut the kills from 87% to 80% of the mutants checked
MUTANT_TEST_SECONDS = float(os.environ.get("EDGE_LINGUA_MUTANT_TEST_SECONDS", "inf"))

OWNERS: dict[str, tuple[str, ...]] = {
    "edge_lingua.segmentation": (
        "tests/test_segmentation_units.py",
        "tests/test_faithful.py",
        "tests/test_properties.py",
        "tests/test_selection_units.py",
        "tests/test_hand_set_models.py",
    ),
    "edge_lingua.selection": (
        "tests/test_selection_units.py",
        "tests/test_hand_set_models.py",
        "tests/test_faithful.py",
        "tests/test_properties.py",
    ),
    "edge_lingua.bundle": ("tests/test_bundle.py", "tests/test_providers_units.py"),
    "edge_lingua.providers": ("tests/test_providers_units.py", "tests/test_bundle.py"),
    "edge_lingua.compressor": (
        "tests/test_compressor.py",
        "tests/test_hand_set_models.py",
        "tests/test_faithful.py",
        "tests/test_properties.py",
        "tests/test_batching.py",
        "tests/test_question.py",
        "tests/test_perplexity_onnx.py",
    ),
    # Gemma through llama.cpp (tests/test_*_llama.py) is run for the module that drives it;
    # every other module of the package has unit tests of its own, and a surviving mutant
    # there would wait minutes on Gemma for nothing
    # (the hand-set unigram LM of tests/test_hand_set_models.py: expectations worked out in
    # nats, built in milliseconds)
    "edge_lingua.perplexity": (
        "tests/test_perplexity_units.py",
        "tests/test_perplexity_onnx.py",
        "tests/test_hand_set_models.py",
    ),
    "edge_lingua.perplexity.llama_scorer": (
        "tests/test_perplexity_units.py",
        "tests/test_perplexity_llama.py",
    ),
    "edge_lingua.cascade": (
        "tests/test_cascade_units.py",
        "tests/test_cascade_core.py",
        "tests/test_cascade_remote.py",
        "tests/test_cascade_drain.py",
        "tests/test_cascade_queue.py",
        "tests/test_cascade_local_failures.py",
    ),
    "edge_lingua.cascade.local": (
        "tests/test_cascade_core.py",
        "tests/test_cascade_local_failures.py",
        "tests/test_cascade_llama.py",
    ),
    "edge_lingua.cascade.redaction": ("tests/test_redaction.py", "tests/test_proxy_http_errors.py"),
    # tests/test_proxy_llama.py runs the proxy in a subprocess of the unmutated package
    "edge_lingua.proxy": (
        "tests/test_proxy_asgi.py",
        "tests/test_proxy_server.py",
        "tests/test_proxy_http_errors.py",
        "tests/test_proxy_hardening.py",
        "tests/test_proxy_apis.py",
        "tests/test_proxy_validation.py",
    ),
    # the MiniLM INT8 check (tests/test_quantize_minilm.py) runs in the suite
    "quantize": ("tests/test_quantize_gate.py", "tests/test_quantize_modes.py"),
}


def module_of(mutant: str) -> str:
    """``edge_lingua.selection.x_select__mutmut_3`` -> ``edge_lingua.selection``."""
    return mutant.split(".x_")[0].split(".xǁ")[0]


def owners_of(mutant: str) -> tuple[str, ...] | None:
    """The test files owning the module of a mutmut mutant name; None: no entry."""
    module = module_of(mutant)
    found = [p for p in OWNERS if module == p or module.startswith(p + ".")]
    return OWNERS[max(found, key=len)] if found else None


def file_of(test: str) -> str:
    """``tests/test_x.py::test_y[z]`` -> ``tests/test_x.py``."""
    return test.split("::")[0]


def session_order(tests: list[str], seconds: dict[str, float], setup: dict[str, float]
                  ) -> list[str]:
    """The order a mutant's session runs ``tests`` in: cheapest first, each file's together.

    A test's cost is its recorded seconds (``seconds``) plus the seconds its own fixtures took
    to set up while the stats were recorded (``setup``: test id -> seconds; a module fixture is
    charged to the first test of its file that used it). A session stops at its first failure,
    so a test that needs no server runs before one whose fixture starts ``llama_cpp.server``.
    Files run cheapest test first, and a file's tests stay together, so its module fixtures
    start once.
    """

    def cost(test: str) -> float:
        return seconds.get(test, 0.0) + setup.get(test, 0.0)

    cheapest: dict[str, float] = {}
    for test in tests:
        cheapest[file_of(test)] = min(cheapest.get(file_of(test), float("inf")), cost(test))
    return sorted(tests, key=lambda test: (cheapest[file_of(test)], file_of(test), cost(test)))


def fastest_within(seconds: dict[str, float], setup: dict[str, float], budget: float
                   ) -> set[str]:
    """The fastest tests while their time adds up to ``budget``; always at least one, if any.

    ``seconds``: test id -> recorded seconds of the test itself (equal times in the order
    given); ``setup``: test file -> seconds its fixtures took to set up, counted once, with the
    file's first test taken (a session of one test still starts the file's module fixtures).
    """
    chosen: set[str] = set()
    started: set[str] = set()
    total = 0.0
    for test in sorted(seconds, key=seconds.__getitem__):
        file = file_of(test)
        cost = seconds[test] + (0.0 if file in started else setup.get(file, 0.0))
        if chosen and total + cost > budget:
            continue
        chosen.add(test)
        started.add(file)
        total += cost
    return chosen
