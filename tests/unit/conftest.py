"""Unit tests need nothing but Python: a test that starts a process or reaches the network fails.

An audit hook watches every process start and socket connection while a unit test runs (its
fixtures included). Connections to loopback stay allowed (in-process ASGI clients, local
sockets); anything else belongs with the tests that carry a marker for what they start.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Generator
from typing import Any

import pytest

_PROCESS_EVENTS = {"subprocess.Popen", "os.system", "os.posix_spawn", "os.exec", "os.fork"}
_MOVE_OUT = "move it out of tests/unit, beside the tests that carry a marker for what it starts"

_current: list[pytest.Item] = []
_violations: list[str] = []


def _loopback(address: Any) -> bool:
    if not isinstance(address, tuple):  # a Unix socket's path
        return True
    host = address[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _current:
        return
    if event in _PROCESS_EVENTS:
        what = f"starts a process ({event} {args[1:2] or args[:1]!r})"
    elif event == "socket.connect" and not _loopback(args[1]):
        what = f"connects to {args[1]!r}"
    else:
        return
    message = f"{_current[0].nodeid} {what}: unit tests need only Python; {_MOVE_OUT}"
    _violations.append(message)
    raise PermissionError(message)  # an OSError: the caller closes what it opened


sys.addaudithook(_audit)


def _guarded(item: pytest.Item) -> Generator[None, object, object]:
    _current.append(item)
    try:
        result = yield
    finally:
        _current.clear()
        found = _violations[:1]
        _violations.clear()
    if found:  # the test may have caught the error; it fails all the same
        pytest.fail(found[0], pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _guarded(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _guarded(item))
