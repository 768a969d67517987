"""Fixtures the integration tests share: one real Prometheus over the backfilled test fleet.

Backfilling and starting Prometheus is the slow part, so one session serves every module
that reads the fleet (golden signals of a page, serving facts of the whole fleet).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import pytest

from support.observability import build_fleet
from support.prometheus import Fleet, PrometheusServer, prometheus_with


@pytest.fixture(scope="session")
def fleet() -> Fleet:
    return build_fleet(math.floor(time.time() / 60) * 60)


@pytest.fixture(scope="session")
def prom(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    with prometheus_with(fleet.samples, tmp_path_factory.mktemp("prom") / "data") as server:
        yield server
