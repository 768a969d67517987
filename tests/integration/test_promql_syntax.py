"""The fleet queries Trellis writes parse as PromQL, by Prometheus's own parser (promtool)."""

from __future__ import annotations

import json
import subprocess

import pytest

from support.prometheus import binaries
from support.timing import scaled
from trellis.observability.fleet import plan_fleet_queries

pytestmark = pytest.mark.prometheus


def promtool_check(queries: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``promtool check rules`` over one recording rule per query: Prometheus's own parser."""
    rules = [{"record": f"trellis:{name}", "expr": expr} for name, expr in queries.items()]
    _, promtool = binaries()
    return subprocess.run(
        [promtool, "check", "rules", "/dev/stdin"],
        input=json.dumps({"groups": [{"name": "fleet", "rules": rules}]}),  # YAML reads JSON
        capture_output=True,
        text=True,
        check=False,
        timeout=scaled(30),
    )


def test_every_query_parses_as_promql():
    plan = {q.fact: q.promql for q in plan_fleet_queries(300, 86_400)}
    checked = promtool_check(plan)
    assert checked.returncode == 0, checked.stderr + checked.stdout
    assert "SUCCESS: 8 rules found" in checked.stdout
    broken = promtool_check({"broken": plan["requestRate"][:-1]})  # the check can fail
    assert broken.returncode != 0 and "parse error" in broken.stderr + broken.stdout
