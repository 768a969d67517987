"""A real Backstage app in headless Chromium shows Trellis's models and their golden signals.

Everything is real and on 127.0.0.1: a registry seeded through MLflow into an ``sqlite:``
database; Prometheus over backfilled history of ``fraud-detector``'s two servers; ``trellis
serve`` reading both, and two Kubernetes clusters through ``support.kube_replay`` (a
Kubernetes API server cannot run here, so recorded API objects are served over real HTTP);
a Backstage backend (catalog with Trellis's entity provider, proxy) configured with the
snippets of docs/backstage.md; and the app (``tests/browser/app``: the new frontend system,
the stock catalog plugin and ``frontend/plugin-trellis``) bundled by ``build.js`` and served
as static files. ``drive.js`` drives Debian's Chromium with playwright-core and reports what
the pages show; the numbers on the card are checked against the backfilled samples.

Screenshots are written to docs/images/, with the hash of the plugin's sources recorded in
docs/images/screenshots.json (tests/test_screenshots.py compares it with the sources).

Run with ``make browser`` (which installs the app's packages and sets TRELLIS_BROWSER=1);
the ordinary suite does not collect this folder (see conftest.py here).
"""

from __future__ import annotations

import functools
import http.server
import json
import math
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.backstage import BackstageBackend, node_executable
from support.doc_snippets import snippet
from support.kube_replay import KubeReplay
from support.observability import DATA_SECONDS, FRAUD_EU, FRAUD_US, expected_series
from support.prometheus import Fleet, PrometheusServer, prometheus_with
from support.registry import ModelSpec, seed
from support.screenshots import MANIFEST, record_screenshots
from support.services import TrellisServer, free_port, wait_until
from support.timing import scaled
from support.training import RunSpec, Trained, curve, seed_trained

pytestmark = [pytest.mark.backstage, pytest.mark.prometheus, pytest.mark.kube_replay]

REPO = Path(__file__).resolve().parents[2]
HARNESS = Path(__file__).resolve().parent
IMAGES = REPO / "docs" / "images"
CHROMIUM = Path("/usr/lib/chromium/chromium")
TOKEN = "browser-test-token-" + "x" * 24

#: Served in two regions (hub: eu-west-1, edge: us-east-1), with backfilled history.
MODEL = "fraud-detector"
#: Its versions come from training runs: the champion's and candidate's curves are shown.
RUNS = {
    1: RunSpec({"loss": curve(20, 2.0, 0.6)}),
    2: RunSpec({"loss": curve(40, 2.0, 0.3), "accuracy": curve(40, 0.5, 0.93)}),
    3: RunSpec({"loss": curve(30, 1.8, 0.25), "f1": curve(30, 0.4, 0.9)}),
}
OTHERS = [
    ModelSpec("demand-forecast", {"owner": "supply-ml", "system": "supply-chain"}, 3, champion=3),
    ModelSpec("churn-predictor", {"owner": "growth-ml"}, versions=2, champion=2),
]
NAMES = {MODEL, *(spec.name for spec in OTHERS)}
#: The teams that own the models, as an adopter's catalog has them: their pages link up.
TEAMS = ("ml", "supply-ml", "growth-ml")
#: History runs this far past now, so the card's window (ending now) is covered to its end.
AHEAD_SECONDS = 15 * 60
SIGNALS = ("request_rate", "error_ratio", "latency_p95")


@dataclass
class Scene:
    app_url: str
    backstage: BackstageBackend
    trellis: TrellisServer
    prometheus: PrometheusServer
    fleet: Fleet
    trained: Trained


class _AppHandler(http.server.SimpleHTTPRequestHandler):
    """Static files of the bundle; any other path is the app's index.html (client routing)."""

    def send_head(self):  # type: ignore[no-untyped-def]
        path = Path(self.translate_path(self.path))
        if not path.exists():
            self.path = "/index.html"
        return super().send_head()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def app_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app bundled once for the module (esbuild, a few seconds)."""
    if not (HARNESS / "node_modules" / "esbuild").exists():
        pytest.fail(
            "tests/browser/node_modules is missing: run `make browser` "
            "(or `npm ci --prefix tests/browser`)"
        )
    out = tmp_path_factory.mktemp("app") / "build"
    result = subprocess.run(
        [node_executable(), "build.js", str(out)],
        cwd=HARNESS,
        capture_output=True,
        text=True,
        timeout=scaled(300),
        check=False,
    )
    assert result.returncode == 0, f"app build failed:\n{result.stdout}\n{result.stderr[-4000:]}"
    return out


@pytest.fixture(scope="module")
def scene(app_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    root = tmp_path_factory.mktemp("scene")
    end = math.floor(time.time() / 60) * 60 + AHEAD_SECONDS
    fleet = Fleet(begin=end - DATA_SECONDS - AHEAD_SECONDS, end=end)
    for server in (FRAUD_EU, FRAUD_US):
        fleet.add(server)
    registry = f"sqlite:///{root / 'mlflow.db'}"
    trained = seed_trained(registry, MODEL, RUNS, {"champion": 2, "candidate": 3})
    seed(registry, OTHERS)

    app_port = free_port()
    app_url = f"http://127.0.0.1:{app_port}"
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", app_port), functools.partial(_AppHandler, directory=str(app_build))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()

    with (
        prometheus_with(fleet.samples, root / "prom-data") as prometheus,
        KubeReplay.from_fixtures("hub", "edge") as replay,
    ):
        trellis = TrellisServer(
            state_dir=root / "state",
            port=free_port(),
            env={
                "TRELLIS_MLFLOW__TRACKING_URI": registry,
                "TRELLIS_KUBERNETES__KUBECONFIG": str(replay.write_kubeconfig(root / "kubeconfig")),
                "TRELLIS_KUBERNETES__CONTEXTS": "hub,edge",
                "TRELLIS_KUBERNETES__REGIONS": "hub=eu-west-1,edge=us-east-1",
                "TRELLIS_PROMETHEUS__URL": prometheus.url,
                "TRELLIS_API_TOKENS": TOKEN,
            },
        )
        trellis.state_dir.mkdir()
        trellis.start(timeout=scaled(60))
        address = f"127.0.0.1:{trellis.port}"
        provider = snippet("provider", address)
        provider["trellis"]["token"] = TOKEN
        proxy = snippet("frontend-proxy", address)
        proxy["proxy"]["endpoints"]["/trellis"]["headers"]["Authorization"] = f"Bearer {TOKEN}"
        config = {
            **provider,
            **proxy,
            "app": {"baseUrl": app_url},
            "backend": {"cors": {"origin": app_url, "credentials": True}},
        }
        try:
            teams = root / "teams.yaml"
            teams.write_text(
                "".join(
                    json.dumps(
                        {
                            "apiVersion": "backstage.io/v1alpha1",
                            "kind": "Group",
                            "metadata": {"name": team},
                            "spec": {"type": "team", "children": []},
                        }
                    )
                    + "\n---\n"
                    for team in TEAMS
                )
            )
            with BackstageBackend.start(
                root / "backstage",
                locations=[{"type": "file", "target": str(teams)}],
                reading_allow=[],
                extra_config=config,
                scaffolder=False,
            ) as backstage:
                (app_build / "app-config.json").write_text(
                    json.dumps(
                        {
                            "app": {"baseUrl": app_url, "title": "Backstage"},
                            "backend": {"baseUrl": backstage.base_url},
                        }
                    )
                )
                backstage.wait_for(
                    lambda: (
                        len(backstage.entities("kind=resource,spec.type=ai-model")) == len(NAMES)
                    ),
                    scaled(60),
                    "the models from Trellis's entity provider",
                )
                backstage.wait_for(
                    lambda: len(backstage.entities("kind=group")) == len(TEAMS),
                    scaled(60),
                    "the teams that own the models",
                )
                yield Scene(app_url, backstage, trellis, prometheus, fleet, trained)
        finally:
            trellis.stop()
            server.shutdown()
            server.server_close()


def drive(scene: Scene, steps: list[str], screenshots: dict[str, Path]) -> dict[str, Any]:
    """Run drive.js over the app; what the pages showed, as JSON."""
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: apt-get install -y --no-install-recommends chromium")
    options = {
        "appUrl": scene.app_url,
        "chromium": str(CHROMIUM),
        "model": f"default/{MODEL}",
        "models": len(NAMES),
        "steps": steps,
        "screenshots": {name: str(path) for name, path in screenshots.items()},
        "timeoutMs": int(scaled(20) * 1000),
    }
    result = subprocess.run(
        [node_executable(), "drive.js", json.dumps(options)],
        cwd=HARNESS,
        capture_output=True,
        text=True,
        timeout=scaled(240),
        check=False,
    )
    assert result.returncode == 0, f"drive.js failed:\n{result.stderr[-4000:]}"
    shown: dict[str, Any] = json.loads(result.stdout)
    return shown


def number(text: str) -> float:
    return float(text.split()[0])


def assert_shown(text: str | None, value: float, unit: str, what: str) -> None:
    """The cell's text is the value in the card's format, to the digits it shows."""
    assert text, what
    if unit == "ratio":
        assert text.endswith(" %"), what
        assert number(text) == pytest.approx(value * 100, abs=0.005 + 1e-9), what
    elif text.endswith(" ms"):
        assert value < 1, what
        assert number(text) == pytest.approx(value * 1000, abs=0.5 + 1e-9), what
    else:
        assert text.endswith(" req/s" if unit == "req/s" else " s"), what
        assert number(text) == pytest.approx(value, abs=0.005 + 1e-9), what


UNITS = {"request_rate": "req/s", "error_ratio": "ratio", "latency_p95": "s"}


def test_the_model_page_shows_golden_signals_from_prometheus_and_the_catalog_lists_models(
    scene: Scene,
) -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    shots = {
        "entity": IMAGES / "model-entity-page.png",
        "catalog": IMAGES / "catalog-ai-models.png",
    }
    shown = drive(scene, ["card", "catalog"], shots)

    assert any(MODEL in heading for heading in shown["headings"]), shown["headings"]
    card = shown["card"]
    assert "error" not in card, card
    assert card["unavailable"] == []
    assert [row["region"] for row in card["rows"]] == ["eu-west-1", "us-east-1", "All regions"]
    end = datetime.fromisoformat(card["window"]["end"]).timestamp()
    rate_seconds = int(card["window"]["rateWindowSeconds"])
    servers = {"eu-west-1": [FRAUD_EU], "us-east-1": [FRAUD_US]}
    servers["All regions"] = [FRAUD_EU, FRAUD_US]
    for row in card["rows"]:
        for signal in SIGNALS:
            cell = row["cells"][signal]
            what = f"{row['region']} {signal}: {cell}"
            [[_, want]] = expected_series(
                signal, scene.fleet, servers[row["region"]], [end], rate_seconds
            )
            assert cell["reason"] is None, what
            assert_shown(cell["value"], want, UNITS[signal], what)
            assert cell["sparkline"] == 1, what

    runs = {run["alias"]: run for run in shown["training"]}
    assert sorted(runs) == ["candidate", "champion"]
    for alias, version in (("champion", 2), ("candidate", 3)):
        run = runs[alias]
        assert (run["version"], run["reason"]) == (str(version), None), run
        logged = scene.trained.logged[alias]
        assert sorted(run["metrics"]) == sorted(logged), run
        for name, values in logged.items():
            assert float(run["metrics"][name]["value"]) == pytest.approx(values[-1], abs=5e-5)
            assert run["metrics"][name]["sparkline"] == 1, (alias, name)

    names = {cells[0] for cells in shown["catalog"] if cells}
    assert names >= NAMES, shown["catalog"]
    assert shown["pageErrors"] == []

    for path in shots.values():
        assert path.stat().st_size > 10_000, path
    record_screenshots(MANIFEST, shots.values())


def prometheus_state(scene: Scene) -> str:
    """How Trellis finds Prometheus when asked for the model's page right now."""
    page = httpx.get(
        f"{scene.trellis.url}/api/observability/default/resource/{MODEL}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=scaled(30),
    )
    page.raise_for_status()
    state: str = page.json()["sources"]["prometheus"]["status"]
    return state


def test_the_card_says_why_when_prometheus_cannot_be_read(scene: Scene) -> None:
    scene.prometheus.stop()
    try:
        # Trellis serves a complete answer again for a few seconds; wait until it has read
        # (and failed to read) Prometheus itself, as the next page load will.
        wait_until(
            lambda: prometheus_state(scene) == "unavailable",
            timeout=scaled(60),
            what="Trellis to find Prometheus unavailable",
        )
        shot = IMAGES / "model-entity-page-prometheus-down.png"
        shown = drive(scene, ["card"], {"entity": shot})
    finally:
        scene.prometheus.start()
    card = shown["card"]
    assert "error" not in card, card
    [unavailable] = card["unavailable"]
    assert unavailable.startswith("prometheus is unavailable: ")
    assert len(unavailable) > len("prometheus is unavailable: ") + 5
    assert [row["region"] for row in card["rows"]] == ["eu-west-1", "us-east-1", "All regions"]
    for row in card["rows"]:
        for signal in SIGNALS:
            cell = row["cells"][signal]
            assert cell["value"] is None, cell
            assert cell["reason"] == "unavailable", cell  # the reason is said once, above
    assert TOKEN not in scene.backstage.log_tail(10_000)
    record_screenshots(MANIFEST, [shot])
