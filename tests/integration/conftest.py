"""Fixtures the integration tests share: one real Prometheus over the backfilled test fleet.

Backfilling and starting Prometheus is the slow part, so one session serves every module
that reads the fleet (golden signals of a page, serving facts of the whole fleet). A module
with a Prometheus of its own (its own ``prom``) gets a ``source`` reading that one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import httpx
import pytest

from support.observability import build_fleet
from support.prometheus import Fleet, PrometheusServer, prometheus_with
from support.timing import scaled
from trellis.sources.prometheus import PrometheusSource


@pytest.fixture(scope="session")
def fleet() -> Fleet:
    return build_fleet(math.floor(time.time() / 60) * 60)


@pytest.fixture(scope="session")
def prom(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    with prometheus_with(fleet.samples, tmp_path_factory.mktemp("prom") / "data") as server:
        yield server


@pytest.fixture(scope="module")
def source(prom: PrometheusServer) -> Iterator[PrometheusSource]:
    with httpx.Client(base_url=prom.url, timeout=scaled(10)) as client:
        yield PrometheusSource(client, label=prom.url)
