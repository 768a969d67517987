"""The collector's pause: off inside, back as it was after, whatever happens inside."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from trellis.gc_pause import cycles_paused


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    gc.enable()
    yield
    gc.enable()


def test_the_collector_is_paused_inside_and_on_again_after_even_on_error() -> None:
    with pytest.raises(RuntimeError), cycles_paused():
        assert not gc.isenabled()
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_an_inner_pause_leaves_the_outer_one_in_force() -> None:
    with cycles_paused():
        with cycles_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with cycles_paused():
        pass
    assert not gc.isenabled()
