"""Serving facts of the whole fleet against a real Prometheus with backfilled history.

The fleet queries name no server: every server of every runtime comes back in one row per
fact. Each value is worked out here from the generated samples (``support`` re-does
Prometheus's ``rate()``, ``histogram_quantile()`` and lookback), never by asking Prometheus,
and the rows must be exactly the fleet's servers: hostile names get their own values, look-
alikes (same name in another namespace or region) stay apart, a silent server has no key.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from support.observability import (
    DECOYS,
    FLAKY,
    FRAUD_EU,
    HOSTILE,
    HOSTILE_DECOYS,
    IMAGE_EU,
    INJECTIONS,
    LLM_EU,
    LLM_US,
    SILENT,
    STALE,
    availability,
    deployment,
    fleet_facts,
)
from support.prometheus import Fleet
from trellis.model import Runtime, Sample
from trellis.observability.fleet import FLEET_FACTS, fleet_rows, plan_fleet_queries
from trellis.observability.queries import ServerKey, server_key
from trellis.sources.prometheus import PrometheusSource

pytestmark = pytest.mark.prometheus

SERVING, AVAILABILITY = 300, 3_600
Answers = dict[str, list[Sample]]


def ask(source: PrometheusSource, fleet: Fleet) -> Answers:
    at = datetime.fromtimestamp(fleet.end, UTC)
    return {q.fact: source.query(q.promql, at) for q in plan_fleet_queries(SERVING, AVAILABILITY)}


@pytest.fixture(scope="module")
def answers(source: PrometheusSource, fleet: Fleet) -> Answers:
    return ask(source, fleet)


@pytest.fixture(scope="module")
def rows(answers: Answers) -> dict[ServerKey, dict[str, float]]:
    return fleet_rows(answers)


@pytest.fixture(scope="module")
def want(fleet: Fleet) -> dict[ServerKey, dict[str, float]]:
    assert len({s.key for s in fleet.servers}) == len(fleet.servers)
    facts = {s.key: fleet_facts(fleet, s, SERVING, AVAILABILITY) for s in fleet.servers}
    return {key: values for key, values in facts.items() if values}


def assert_facts(got: dict[str, float], wanted: dict[str, float], what: object) -> None:
    assert sorted(got) == sorted(wanted), what
    for fact, value in wanted.items():
        assert got[fact] == pytest.approx(value, rel=1e-9, abs=1e-12), (what, fact)


# --- the tests --------------------------------------------------------------------------------


def test_every_fact_of_every_server_is_what_its_samples_say(rows, want, fleet):
    assert sorted(rows) == sorted(want)  # every server Prometheus knows, and no other row
    for key, wanted in want.items():
        assert_facts(rows[key], wanted, key)
    by_runtime = {s.runtime for s in fleet.servers if set(rows.get(s.key, {})) == set(FLEET_FACTS)}
    assert by_runtime == {Runtime.MLSERVER, Runtime.TRITON, Runtime.VLLM}


@pytest.mark.parametrize("server", [FRAUD_EU, IMAGE_EU, LLM_EU], ids=lambda s: s.runtime)
def test_a_serving_server_of_each_runtime_has_every_fact_in_its_unit(server, rows):
    facts = rows[server.key]
    assert sorted(facts) == sorted(FLEET_FACTS)
    assert facts["requestRate"] > 0.1 and 0 < facts["errorRatio"] < 0.2
    assert 0 < facts["latencyP50"] <= facts["latencyP95"] <= facts["latencyP99"] < 60  # seconds
    assert facts["availability"] == 1.0
    assert 0.05 <= facts["gpuUtilization"] <= 1.0  # a share, not a percentage
    assert facts["gpuMemoryBytes"] >= 10_000 * 1_048_576 * len(server.pods)


def test_availability_is_the_share_of_scrapes_that_succeeded(rows, fleet):
    flaky = rows[FLAKY.key]["availability"]
    assert flaky == pytest.approx(availability(fleet, FLAKY, fleet.end, AVAILABILITY), rel=1e-9)
    assert flaky == pytest.approx(5 / 6)  # every third scrape of one of its two pods failed
    assert rows[FLAKY.key]["requestRate"] > 0  # the scrapes that succeeded still count


def test_a_server_that_stopped_has_only_its_availability_and_a_silent_one_no_key(rows):
    # Its samples end 20 minutes ago: within the availability window, not the serving one.
    assert rows[STALE.key] == {"availability": 1.0}
    assert server_key(deployment(SILENT)) == SILENT.key
    assert SILENT.key not in rows


def test_hostile_names_get_their_own_values_and_look_alikes_stay_apart(rows, want):
    hostile = [*HOSTILE, *INJECTIONS]
    look_alikes = [*HOSTILE_DECOYS, *DECOYS, LLM_US]
    assert '"} or vector(1) #' in {s.name for s in hostile}
    for server in [*hostile, *look_alikes]:
        key = server_key(deployment(server))  # how a caller finds its server's row
        assert_facts(rows[key], want[key], server.key)
    # No two servers share a value: a row read for the wrong server would show.
    rates = [rows[s.key]["requestRate"] for s in [*hostile, *look_alikes]]
    assert len(set(rates)) == len(rates)


def test_asking_again_gives_the_same_rows(source, fleet, answers):
    assert fleet_rows(ask(source, fleet)) == fleet_rows(answers)
    assert {fact: len(samples) > 0 for fact, samples in answers.items()} == dict.fromkeys(
        FLEET_FACTS, True
    )
