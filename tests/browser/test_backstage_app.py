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
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from support.backstage import BackstageBackend, dry_run_files, node_executable, task_log
from support.blueprints import VARIANTS, render
from support.doc_snippets import holds, snippet
from support.gitrepos import blueprint_source, generated_repo, release
from support.kube_replay import KubeReplay
from support.markers import starting
from support.observability import DATA_SECONDS, FRAUD_EU, FRAUD_US, expected_series
from support.prometheus import Fleet, PrometheusServer, prometheus_with
from support.registry import ModelSpec, client, seed
from support.screenshots import MANIFEST, record_screenshots
from support.services import TrellisServer, free_port, wait_until
from support.timing import scaled
from support.training import RunSpec, Trained, curve, seed_trained

pytestmark = [
    pytest.mark.backstage,
    pytest.mark.prometheus,
    pytest.mark.kube_replay,
    pytest.mark.tools,  # mkdocs builds the model's TechDocs
]

REPO = Path(__file__).resolve().parents[2]
HARNESS = Path(__file__).resolve().parent
IMAGES = REPO / "docs" / "images"
#: The Software Template generated from the ml-model blueprint's questions.
TEMPLATE = REPO / "catalog" / "templates" / "ml-model.yaml"
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
#: Regional fine-tunes of the model (adapters: `model_kind`, `parent_model`, `data_region`).
REGIONAL = {
    "fraud-detector-de": ("eu-central-1", "lora", "2", "d" * 64),
    "fraud-detector-jp": ("ap-northeast-1", "qlora", "3", "a" * 64),
}
ADAPTERS = [
    ModelSpec(
        name,
        {
            "owner": "group:default/ml",
            "model_kind": "adapter",
            "parent_model": MODEL,
            "data_region": region,
            "method": method,
            "parent_version": parent,
            "dataset_fingerprint": fingerprint,
        },
        versions=2,
        champion=2,
    )
    for name, (region, method, parent, fingerprint) in REGIONAL.items()
]
NAMES = {MODEL, *(spec.name for spec in [*OTHERS, *ADAPTERS])}
#: A repository generated from the ml-model blueprint's 1.0.0, known to Trellis; the blueprint
#: has since released 1.1.0 and 1.2.0. Its catalog-info.yaml is a location of the catalog.
REPOSITORY = "fraud-detector"
#: A Component that names a blueprint, in a repository Trellis is not told of.
UNKNOWN_REPOSITORY = "legacy-scoring"
NEWER_RELEASES = {
    "1.2.0": "- Serving manifests set resource limits.",
    "1.1.0": "- The catalog entry says who manages it.",
}
#: The teams that own the models, as an adopter's catalog has them: their pages link up.
TEAMS = ("ml", "supply-ml", "growth-ml")
#: History runs this far past now, so the card's window (ending now) is covered to its end.
AHEAD_SECONDS = 15 * 60
SIGNALS = ("request_rate", "error_ratio", "latency_p95")
#: The model's repository, as its ``source_repo`` tag names it: its TechDocs are shown.
SOURCE_REPO = "https://github.com/acme/fraud-detector"


@dataclass
class Scene:
    app_url: str
    backstage: BackstageBackend
    trellis: TrellisServer
    prometheus: PrometheusServer
    fleet: Fleet
    trained: Trained
    replay: KubeReplay
    techdocs: Path


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


def generated_repository(root: Path) -> tuple[Path, Path]:
    """A scratch blueprint source released up to 1.2.0, and a repository rendered at 1.0.0."""
    source = blueprint_source(root / "blueprints")
    for version, notes in reversed(NEWER_RELEASES.items()):
        release(source, version, notes)
    answers = {**VARIANTS["sklearn-github-aws"], "owner": "group:default/ml"}
    repository = generated_repo(source, root / REPOSITORY, answers)
    unknown = {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {
            "name": UNKNOWN_REPOSITORY,
            "annotations": {"trellis.dev/blueprint": "ml-model"},
        },
        "spec": {"type": "service", "lifecycle": "production", "owner": "group:default/ml"},
    }
    # Another file location of the catalog, beside the repository's own catalog-info.yaml.
    (root / "unknown-repository.yaml").write_text(json.dumps(unknown))
    return source, repository


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
    seed(registry, ADAPTERS)
    source, repository = generated_repository(root)
    client(registry).set_registered_model_tag(MODEL, "source_repo", SOURCE_REPO)
    techdocs = publish_techdocs(root)

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
                "TRELLIS_BLUEPRINTS__SOURCE": str(source),
                "TRELLIS_BLUEPRINTS__REPOSITORIES": str(repository),
                "TRELLIS_SCORECARDS__INTERVAL_SECONDS": "5",
            },
        )
        trellis.state_dir.mkdir()
        trellis.start(timeout=scaled(60))
        address = f"127.0.0.1:{trellis.port}"

        def config(port: int) -> dict[str, Any]:
            """The documented snippets, pointed at this run's Trellis, clusters and Backstage."""
            backstage_url = f"http://127.0.0.1:{port}"
            provider = snippet("provider", address)
            provider["trellis"]["token"] = TOKEN
            proxy = snippet("tech-insights", address, backstage_url)
            # The card's proxy snippet is part of the Tech Insights one: one block serves both.
            assert holds(proxy, snippet("frontend-proxy", address))
            proxy["proxy"]["endpoints"]["/trellis"]["headers"]["Authorization"] = f"Bearer {TOKEN}"
            return {
                **provider,
                **proxy,
                **kubernetes_config(replay),
                **techdocs_config(techdocs),
                "app": {"baseUrl": app_url},
                "backend": {"cors": {"origin": app_url, "credentials": True}},
                # The sign-in page's guest gets a Backstage token (TechDocs needs a user).
                "auth": {"providers": {"guest": {"dangerouslyAllowOutsideDevelopment": True}}},
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
                locations=[
                    {"type": "file", "target": str(teams)},
                    {"type": "file", "target": str(repository / "catalog-info.yaml")},
                    {"type": "file", "target": str(root / "unknown-repository.yaml")},
                    {"type": "file", "target": str(TEMPLATE)},
                ],
                reading_allow=[],
                extra_config=config,
            ) as backstage:
                discovery = snippet("tech-insights", address, backstage.base_url)["discovery"]
                (app_build / "app-config.json").write_text(
                    json.dumps(
                        {
                            "app": {"baseUrl": app_url, "title": "Backstage"},
                            "backend": {"baseUrl": backstage.base_url},
                            "discovery": discovery,
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
                backstage.wait_for(
                    lambda: len(backstage.entities("kind=template")) == 1,
                    scaled(60),
                    "the ml-model Software Template",
                )
                wait_until(
                    lambda: httpx.get(f"{trellis.url}/readyz").json()["scorecards"]["last_run"],
                    timeout=scaled(30),
                    what="the scorer's first run",
                )
                yield Scene(
                    app_url, backstage, trellis, prometheus, fleet, trained, replay, techdocs
                )
        finally:
            trellis.stop()
            server.shutdown()
            server.server_close()


def kubernetes_config(replay: KubeReplay) -> dict[str, Any]:
    """The documented Kubernetes block, its clusters the replayed ones.

    The replay answers pods, Deployments and InferenceServices only (what Trellis reads), so
    ``objectTypes`` asks for no other kinds and ``skipMetricsLookup`` skips the metrics API.
    """
    config = snippet("kubernetes", "unused")
    [locator] = config["kubernetes"]["clusterLocatorMethods"]
    documented = locator["clusters"][0]
    locator["clusters"] = [
        {
            **documented,
            "name": name,
            "url": replay.url(name),
            "serviceAccountToken": replay.clusters[name].token,
            "skipMetricsLookup": True,
        }
        for name in ("hub", "edge")
    ]
    config["kubernetes"]["objectTypes"] = ["pods", "deployments"]
    return config


def publish_techdocs(root: Path) -> Path:
    """The model's TechDocs as its repository's CI publishes them; the storage folder.

    The repository is the ml-model blueprint rendered for the model; its site is built with
    mkdocs and ``techdocs-core`` (as ``techdocs-cli generate`` does, ``techdocs_metadata.json``
    included) into the folder layout of TechDocs' ``local`` publisher, from the repository's
    own ``mkdocs.yml``. That file turns the theme's Google Fonts off (``font: false``): this
    browser has no internet, and the TechDocs reader keeps a page hidden until every
    stylesheet has loaded.
    """
    answers = {**VARIANTS["sklearn-github-aws"], "project_name": MODEL, "owner": "group:default/ml"}
    repo = render(answers, root / "repo")
    storage = root / "techdocs"
    site = storage / "default" / "resource" / MODEL
    starting("tools")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--quiet", "-d", str(site)],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=scaled(120),
        check=False,
    )
    assert result.returncode == 0, f"mkdocs build failed:\n{result.stderr[-4000:]}"
    assert (site / "techdocs_metadata.json").is_file()
    assert "fonts.googleapis.com" not in (site / "index.html").read_text()
    return storage


def techdocs_config(storage: Path) -> dict[str, Any]:
    """The documented TechDocs block, its local publisher's folder this run's."""
    config = snippet("techdocs", "unused")
    config["techdocs"]["publisher"]["local"]["publishDirectory"] = str(storage)
    return config


def drive(
    scene: Scene, steps: list[str], screenshots: dict[str, Path], **more: Any
) -> dict[str, Any]:
    """Run drive.js over the app (``more`` is added to its options); what the pages showed."""
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: apt-get install -y --no-install-recommends chromium")
    options = {
        "appUrl": scene.app_url,
        "chromium": str(CHROMIUM),
        "model": f"default/{MODEL}",
        "models": len(NAMES),
        "repository": f"default/{REPOSITORY}",
        "unknownRepository": f"default/{UNKNOWN_REPOSITORY}",
        "adapter": f"default/{next(iter(REGIONAL))}",
        "steps": steps,
        "screenshots": {name: str(path) for name, path in screenshots.items()},
        "timeoutMs": int(scaled(20) * 1000),
        **more,
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


def model_server(scene: Scene, region: str) -> dict[str, Any]:
    """The catalog's model-server Component of the model in ``region``."""
    [server] = [
        entity
        for entity in scene.backstage.entities("kind=component,spec.type=model-server")
        if entity["metadata"]["annotations"].get("trellis.dev/registered-model") == MODEL
        and entity["metadata"]["annotations"].get("trellis.dev/region") == region
    ]
    return server


def workloads(scene: Scene, entity_ref: str) -> dict[str, dict[str, list[str]]]:
    """What the Kubernetes backend finds for an entity: per cluster, object names by type."""
    response = scene.backstage.client.post(
        "/api/kubernetes/resources/workloads/query", json={"entityRef": entity_ref, "auth": {}}
    )
    response.raise_for_status()
    found: dict[str, dict[str, list[str]]] = {}
    for item in response.json()["items"]:
        assert item["errors"] == [], item["errors"]
        found[item["cluster"]["name"]] = {
            group["type"]: [obj["metadata"]["name"] for obj in group["resources"]]
            for group in item["resources"]
        }
    return found


def trellis_checks(scene: Scene) -> dict[str, tuple[str, str]]:
    """Trellis's own answer for the model's checks: id → (name, pass or fail), known only."""
    response = httpx.post(
        f"{scene.trellis.url}/api/tech-insights/checks/run/default/resource/{MODEL}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        json={},
        timeout=scaled(30),
    )
    response.raise_for_status()
    return {
        result["check"]["id"]: (result["check"]["name"], "pass" if result["result"] else "fail")
        for result in response.json()
        if isinstance(result["result"], bool)
    }


def test_the_model_page_has_scorecards_and_its_server_page_its_kubernetes_objects(
    scene: Scene,
) -> None:
    server = model_server(scene, "eu-west-1")
    server_ref = f"component:default/{server['metadata']['name']}"
    found = workloads(scene, server_ref)
    # The server's labels select its Deployment in the hub cluster (eu-west-1) only.
    assert sorted(found) == ["hub"], found
    assert (found["hub"]["deployments"], found["hub"]["pods"]) == (["fraud-detector-predictor"], [])
    shots = {
        "scorecards": IMAGES / "model-scorecards.png",
        "kubernetes": IMAGES / "model-server-kubernetes.png",
        "techdocs": IMAGES / "model-techdocs.png",
    }
    before = trellis_checks(scene)
    deployments = sorted({name for objects in found.values() for name in objects["deployments"]})
    shown = drive(
        scene,
        ["scorecards", "kubernetes", "techdocs"],
        shots,
        server=f"default/{server['metadata']['name']}",
        kubernetes={
            "waitFor": "Your Clusters",
            "clusters": sorted(found),
            "deployments": deployments,
        },
        techdocs={"heading": "h1"},
    )

    # Scorecards: every known check, with Trellis's own pass or fail for this model.
    assert "error" not in shown["scorecards"], shown["scorecards"]
    on_page = {c["id"]: (c["name"], c["result"]) for c in shown["scorecards"]["checks"]}
    # The scorer runs every 5 s: the page holds one of its answers, the one before or after.
    assert on_page in (before, trellis_checks(scene)), (on_page, before)
    assert {"pass", "fail"} <= {result for _, result in on_page.values()}, on_page
    assert {"Overview", "TechDocs", "Scorecards"} <= set(shown["tabs"]), shown["tabs"]

    # Kubernetes: the stock tab lists each cluster, its pod count and its Deployments.
    assert "Kubernetes" in shown["serverTabs"], shown["serverTabs"]
    text = shown["kubernetes"]
    for cluster, objects in found.items():
        assert cluster in text.splitlines(), text
        assert f"{len(objects['pods'])} pods" in text, text
        for deployment in objects["deployments"]:
            assert deployment in text, text
    assert "edge" not in text.splitlines(), text

    # TechDocs: the stock reader shows the published site: its title, sections and pages.
    site = scene.techdocs / "default" / "resource" / MODEL
    nav = yaml.safe_load((site.parents[3] / "repo" / "mkdocs.yml").read_text())["nav"]
    docs = shown["techdocs"]
    assert docs["title"] == MODEL, docs
    assert docs["nav"] == [next(iter(page)) for page in nav], docs
    index = (site / "index.html").read_text()
    assert docs["headings"] and all(f">{heading}<" in index for heading in docs["headings"]), docs
    assert shown["pageErrors"] == []
    for path in shots.values():
        assert path.stat().st_size > 10_000, path
    record_screenshots(MANIFEST, shots.values())


def test_the_template_form_from_copier_yml_is_filled_in_and_dry_run_in_the_editor(
    scene: Scene,
) -> None:
    template = yaml.safe_load(TEMPLATE.read_text())
    [first_page, *pages] = template["spec"]["parameters"]
    answers = {"project_name": "Fraud detector", "repository": "acme/fraud-detector"}
    owner = "ml"
    shots = {
        "template": IMAGES / "template-form.png",
        "dryrun": IMAGES / "template-dry-run.png",
    }
    shown = drive(
        scene,
        ["template", "dryrun"],
        shots,
        template={
            "files": {"template.yaml": TEMPLATE.read_text()},
            "answers": {
                "text": {first_page["properties"][k]["title"]: v for k, v in answers.items()},
                "owner": owner,
            },
        },
    )

    # The form is the template's: its pages, and the first page's fields in order.
    assert shown["formSteps"] == [page["title"] for page in [first_page, *pages]] + ["Review"]
    assert shown["formLabels"] == [p["title"] for p in first_page["properties"].values()]
    assert template["metadata"]["title"] in shown["templateHeadings"]

    # The editor's dry run went through the scaffolder and trellis:blueprint:render: the form
    # sent the typed answers (and the defaults), and the page shows the same files and log line
    # as a dry run of exactly those values through the scaffolder's API.
    sent = shown["dryRunValues"]
    typed = answers | {"owner": f"group:default/{owner}"}
    assert {key: sent.get(key) for key in typed} == typed, sent
    response = scene.backstage.dry_run(template, sent)
    files = dry_run_files(response)
    top = {path.split("/")[0] for path in files}
    folders = sorted(name for name in top if any(p.startswith(f"{name}/") for p in files))
    assert shown["dryRunFiles"] == folders + sorted(top - set(folders))  # as the tree sorts
    [rendered] = [line for line in task_log(response.json()["log"]) if line.startswith("Rendered ")]
    assert rendered.startswith("Rendered ml-model ") and rendered.endswith(f": {len(files)} files")
    log = shown["dryRunLog"]
    assert f"info: {rendered}" in log, log
    assert '"owner": "group:default/ml",' in log and '"repository": "acme/fraud-detector",' in log
    assert "Finished step Render the ML model blueprint" in log
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


def related(backstage: BackstageBackend, ref: str, relation: str) -> set[str]:
    """The targets of one kind of relation of an entity, as the catalog has stitched them."""
    kind, _, rest = ref.partition(":")
    found = backstage.entities(f"kind={kind},metadata.name={rest.partition('/')[2]}")
    return {r["targetRef"] for e in found for r in e.get("relations", []) if r["type"] == relation}


@pytest.fixture(scope="module")
def shown_cards(scene: Scene) -> dict[str, Any]:
    """What the Regional variants and servers and the Blueprint currency cards show."""
    model = f"resource:default/{MODEL}"
    variants = {f"resource:default/{name}" for name in REGIONAL}
    scene.backstage.wait_for(
        lambda: (
            variants <= related(scene.backstage, model, "dependencyOf")
            and len(
                {r for r in related(scene.backstage, model, "dependencyOf") if "component:" in r}
            )
            >= 3
        ),  # its two servers and the generated repository's Component
        scaled(60),
        "the model's variants and servers related to it in the catalog",
    )
    for name in (REPOSITORY, UNKNOWN_REPOSITORY):
        query = f"kind=component,metadata.name={name}"
        scene.backstage.wait_for(
            lambda query=query: bool(scene.backstage.entities(query)),
            scaled(60),
            f"the Component {name}",
        )
    shots = {
        "variants": IMAGES / "model-variants-and-servers.png",
        "currency": IMAGES / "repository-blueprint-currency.png",
    }
    shown = drive(scene, ["variants", "currency"], shots)
    assert shown["pageErrors"] == []
    for path in shots.values():
        assert path.stat().st_size > 5_000, path
    record_screenshots(MANIFEST, shots.values())
    return shown


def test_the_model_page_shows_its_regional_variants_and_the_servers_of_each(
    shown_cards: dict[str, Any],
) -> None:
    card = shown_cards["variants"]
    assert "error" not in card, card
    # Sorted by region: each variant with the facts its adapter model carries, and a link.
    assert [v["ref"] for v in card["variants"]] == [
        "resource:default/fraud-detector-jp",
        "resource:default/fraud-detector-de",
    ]
    for variant in card["variants"]:
        name = variant["ref"].split("/")[-1]
        region, method, parent, fingerprint = REGIONAL[name]
        assert (variant["region"], variant["method"], variant["parentVersion"]) == (
            region,
            method,
            parent,
        ), variant
        assert variant["version"] == "2", variant  # the champion of the adapter
        assert variant["dataset"] == fingerprint[:12], variant
        assert variant["links"] == [f"/catalog/default/resource/{name}"], variant
    assert card["noVariants"] is None
    # The recorded clusters serve the model in two regions; each server provides its API.
    servers = {s["region"]: s for s in card["servers"]}
    assert sorted(servers) == ["eu-west-1", "us-east-1"], card["servers"]
    for region, cluster in (("eu-west-1", "hub"), ("us-east-1", "edge")):
        server = servers[region]
        assert server["cluster"] == cluster, server
        assert server["runtime"] == "kserve-mlserver", server
        assert server["serves"].startswith("this model"), server
        name = server["ref"].split("/")[-1]
        assert server["links"] == [
            f"/catalog/default/component/{name}",
            f"/catalog/default/api/{name}",
        ], server
    assert card["noServers"] is None

    # On a variant's own page: no variants of its own, its base named, no servers.
    adapter = shown_cards["adapterVariants"]
    assert (adapter["variants"], adapter["servers"]) == ([], []), adapter
    assert adapter["noVariants"].startswith("No fine-tuned variants: this model is itself a")
    assert adapter["noVariants"].endswith(f"of {MODEL}."), adapter
    assert adapter["noServers"].startswith("No model servers: no Kubernetes cluster"), adapter


def test_the_repository_page_shows_its_blueprint_currency_and_update_request(
    shown_cards: dict[str, Any],
) -> None:
    card = shown_cards["currency"]
    assert "error" not in card, card
    assert (card["status"], card["unavailable"]) == ("ok", None)
    assert (card["blueprint"], card["current"], card["latest"]) == ("ml-model", "1.0.0", "1.2.0")
    assert card["behind"] == "2 releases behind"
    # The branch scripts/blueprint-update.sh pushes, searched on the repository's GitHub.
    assert card["requestUrl"] == (
        "https://github.com/acme/fraud-detector/pulls?q=is%3Apr+head%3Ablueprint-update%2F1.2.0"
    )
    assert "blueprint-update/1.2.0" in card["request"]
    assert [r["version"] for r in card["releases"]] == list(NEWER_RELEASES)
    for shown, notes in zip(card["releases"], NEWER_RELEASES.values(), strict=True):
        assert notes.removeprefix("- ") in shown["text"], shown


def test_a_component_trellis_does_not_know_gets_the_reason_not_a_blank_card(
    shown_cards: dict[str, Any],
) -> None:
    card = shown_cards["unknownCurrency"]
    assert card["error"].startswith("Trellis could not say how current this repository is: ")
    assert "answered 404" in card["error"]
    assert f"no generated repository of component:default/{UNKNOWN_REPOSITORY}" in card["error"]
