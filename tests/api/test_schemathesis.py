"""Every route of the OpenAPI document fuzzed by Schemathesis: no 5xx, every answer documented.

The app runs in-process over a real SQLite registry and the blueprints of this checkout,
without Prometheus, with a valid token. Generation is derandomized and bounded per
operation, so a run is repeatable and takes a minute or two.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.python.asgi import ASGIClient, get_client

from support.registry import ModelSpec, seed
from support.services import wait_until
from support.timing import scaled
from trellis.app import create_app
from trellis.config import Settings

TOKEN = "fuzz-token-" + "f" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES = 25
"""Cases per operation: enough to reach edge values, few enough for a two-core machine."""
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    status_code_conformance,
]
SPECS = [
    ModelSpec("fraud-detector", {"owner": "risk", "system": "payments"}, versions=2, champion=2),
    ModelSpec("support-llm", versions=1, champion=1),
]

# Moments are drawn half from the edges of what ISO 8601 can write (year 1 and 9999, the
# epoch, the widest offsets): ordinary dates alone almost never reach them.
_EDGES = [datetime(1, 1, 1), datetime(1970, 1, 1), datetime(9999, 12, 31, 23, 59, 59)]
_OFFSETS = ["Z", "+00:00", "+14:00", "-14:00", "+05:30"]
schemathesis.openapi.format(
    "date-time",
    st.builds(
        lambda moment, offset: moment.isoformat() + offset,
        st.sampled_from(_EDGES) | st.datetimes(),
        st.sampled_from(_OFFSETS),
    ),
)

cases: Counter[str] = Counter()
# The schema is read at collection, so the app is built at import; its registry is seeded
# and its lifespan run only when the test runs.
STATE = Path(tempfile.mkdtemp(prefix="trellis-fuzz-"))
REGISTRY = f"sqlite:///{STATE / 'registry.db'}"
app = create_app(
    Settings(
        state_dir=STATE,
        api_tokens=[TOKEN],
        mlflow={"tracking_uri": REGISTRY},
        catalog={"refresh_interval_seconds": 3600},
        webhooks={"secret": "fuzz-webhook-" + "w" * 24},
    )
)
schema = schemathesis.openapi.from_dict(app.openapi())
schema.app = app  # what from_asgi does, without starting the app at import


@pytest.fixture(scope="module")
def client() -> Iterator[ASGIClient]:
    """A client that reaches the app in-process; the lifespan is this fixture's, run once.

    Schemathesis would start the lifespan per test and end it after each, but the app, like
    a server process, starts once: the client is handed over unentered so it does not.
    """
    seed(REGISTRY, SPECS)
    with TestClient(app) as http:
        wait_until(
            lambda: http.get("/readyz").status_code == 200,
            timeout=scaled(30),
            what="the first catalog read",
        )
        yield get_client(app)
    shutil.rmtree(STATE, ignore_errors=True)
    print(f"\nschemathesis: {len(cases)} operations, {sum(cases.values())} cases")
    for operation, count in sorted(cases.items()):
        print(f"  {operation}: {count}")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_gives_a_5xx_or_an_undocumented_answer(
    case: schemathesis.Case, client: ASGIClient
) -> None:
    cases[f"{case.operation.method.upper()} {case.operation.path}"] += 1
    # The first GET /api/blueprints reads every blueprint's releases from git history; on a
    # busy machine that passes Schemathesis's own 10 s default, so the deadline is scaled.
    case.call_and_validate(session=client, headers=AUTH, checks=CHECKS, timeout=scaled(10))
