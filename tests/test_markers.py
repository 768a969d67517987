"""The suite's own guards: markers name what a test starts, and tests/unit starts nothing.

Each case runs a small suite in a child pytest laid out like this one (same pyproject, root
conftest, support package and unit conftest), so the guards are the real ones.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

TESTS = Path(__file__).resolve().parent

STARTS_REPLAY = """
import pytest
from support.kube_replay import KubeReplay

@pytest.fixture(scope="module")
def replay():
    with KubeReplay({}) as running:
        yield running

@pytest.mark.kube_replay
def test_marked(replay):
    assert replay.port

def test_reuses_the_fixture_unmarked(replay):
    assert replay.port

def test_starts_one_unmarked():
    with KubeReplay({}):
        pass
"""

STARTS_A_PROCESS = """
import subprocess
import sys

def test_pure():
    assert sorted([2, 1]) == [1, 2]

def test_starts_a_process():
    subprocess.run([sys.executable, "-c", "pass"], check=False)

def test_reaches_the_network():
    import socket
    try:
        socket.create_connection(("192.0.2.1", 80), timeout=0.2)  # TEST-NET-1: never routed
    except OSError:
        pass
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A copy of this suite's layout, without its tests."""
    shutil.copy(TESTS.parent / "pyproject.toml", pytester.path / "pyproject.toml")
    (pytester.path / "tests" / "unit").mkdir(parents=True)
    shutil.copy(TESTS / "conftest.py", pytester.path / "tests" / "conftest.py")
    shutil.copy(TESTS / "unit" / "conftest.py", pytester.path / "tests" / "unit" / "conftest.py")
    (pytester.path / "tests" / "support").symlink_to(TESTS / "support")
    return pytester


@pytest.mark.kube_replay
def test_a_start_without_its_marker_fails_naming_the_marker(suite: pytest.Pytester) -> None:
    (suite.path / "tests" / "test_replay.py").write_text(STARTS_REPLAY)
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "tests/test_replay.py")
    result.assert_outcomes(passed=1, failed=2)
    for name in ("test_reuses_the_fixture_unmarked", "test_starts_one_unmarked"):
        result.stdout.fnmatch_lines(
            [f"*{name} starts kube_replay without its marker: add @pytest.mark.kube_replay*"]
        )


def test_a_unit_test_that_starts_a_process_or_leaves_loopback_fails(
    suite: pytest.Pytester,
) -> None:
    (suite.path / "tests" / "unit" / "test_pure.py").write_text(STARTS_A_PROCESS)
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "tests/unit")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*test_starts_a_process starts a process*move it out*"])
    result.stdout.fnmatch_lines(["*test_reaches_the_network connects to ('192.0.2.1', 80)*"])
