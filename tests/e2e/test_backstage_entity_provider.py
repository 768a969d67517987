"""Trellis's catalog entity provider in a real Backstage backend, against a real `trellis serve`.

The provider (``backend/plugin-catalog-backend-module-trellis``, compiled to ``dist/``) runs
inside the test backend with the config docs/backstage.md gives (its ``provider`` snippet,
with the test's address and token, a read every second instead of every five, and a
3-second timeout instead of 30). Trellis reads the hostile-name registry (330 models) from
SQLite and requires the token for its catalog. The test then deletes a model, registers one
whose entity another location already holds (Backstage refuses that one entity only), pauses Trellis
(reads time out), takes it down, starts it on an empty state with a registry that cannot be
read (503), then with a registry that has no models (an empty answer, held), and brings it
back: Backstage loses nothing it should keep, and keeps nothing it should lose."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import yaml

from support.backstage import NODE_MODULES, PROVIDER_DIR, BackstageBackend, node_executable
from support.doc_snippets import snippet
from support.registry import ModelSpec, client
from support.services import TrellisServer, free_port, wait_until
from support.timing import scaled

pytestmark = [pytest.mark.backstage]

TOKEN = "provider-" + secrets.token_hex(16)
READS_EVERY = 1
"""Seconds between the provider's reads: short, so the test waits on reads, not on time."""
READ_TIMEOUT = 3
"""Seconds the provider waits for Trellis (30 documented): a paused Trellis is slow sooner."""


@dataclass
class Scene:
    backstage: BackstageBackend
    trellis: TrellisServer
    registry: str
    names: set[str]
    """The names Trellis serves for the registry's models (entity names, not model names)."""
    other_location_port: int
    """Where a test serves a location of its own (Backstage may read from there)."""


def trellis_env(registry: str) -> dict[str, str]:
    return {
        "TRELLIS_MLFLOW__TRACKING_URI": registry,
        "TRELLIS_API_TOKENS": TOKEN,
        "TRELLIS_CATALOG__REQUIRES_TOKEN": "true",
        "TRELLIS_CATALOG__REFRESH_INTERVAL_SECONDS": "1",
        "TRELLIS_SCORECARDS__INTERVAL_SECONDS": "3600",
    }


def served(trellis: TrellisServer) -> list[dict]:
    answer = httpx.get(
        f"{trellis.url}/catalog/entities",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=scaled(30),
    )
    return answer.json()["items"]


def served_names(trellis: TrellisServer, kind: str) -> set[str]:
    return {e["metadata"]["name"] for e in served(trellis) if e["kind"] == kind}


def served_resources(trellis: TrellisServer) -> dict[str, str]:
    """``{entity name: model name}`` of the Resources Trellis serves."""
    return {
        e["metadata"]["name"]: e["metadata"]["title"]
        for e in served(trellis)
        if e["kind"] == "Resource"
    }


def resources(backstage: BackstageBackend) -> dict[str, dict]:
    return {e["metadata"]["name"]: e for e in backstage.entities("kind=resource")}


def provider_lines(backstage: BackstageBackend, what: str) -> int:
    return len(re.findall(what, backstage.log_path.read_text(errors="replace")))


def catalog_reads(trellis: TrellisServer, status: int) -> int:
    text = httpx.get(f"{trellis.url}/metrics", timeout=scaled(5)).text
    pattern = (
        r'trellis_http_request_duration_seconds_count\{method="GET",'
        rf'route="/catalog/entities",status="{status}"\}} ([0-9.]+)'
    )
    return int(sum(float(m) for m in re.findall(pattern, text)))


@pytest.fixture(scope="module")
def scene(
    tmp_path_factory: pytest.TempPathFactory, hostile_registry: tuple[Path, list[ModelSpec]]
) -> Iterator[Scene]:
    root = tmp_path_factory.mktemp("provider")
    db = root / "registry" / "mlflow.db"
    db.parent.mkdir()
    shutil.copy(hostile_registry[0], db)
    registry = f"sqlite:///{db}"
    trellis = TrellisServer(root / "state", env=trellis_env(registry), port=free_port())
    trellis.start(timeout=scaled(60))
    documented = snippet("provider", f"127.0.0.1:{trellis.port}")
    assert documented["trellis"]["token"] == "${TRELLIS_API_TOKEN}"
    documented["trellis"]["token"] = TOKEN
    documented["trellis"]["catalog"]["schedule"] = {
        "frequency": {"seconds": READS_EVERY},
        "timeout": {"seconds": READ_TIMEOUT},
    }
    config = {
        **documented,
        # Unchanged entities are not reprocessed while the test runs: 330 entities every
        # few seconds would cost more CPU than everything the test checks.
        "catalog": {"processingInterval": {"seconds": 600}},
    }
    other_location_port = free_port()
    try:
        with BackstageBackend.start(
            root / "backstage",
            locations=[],
            reading_allow=[f"127.0.0.1:{other_location_port}"],
            extra_config=config,
            scaffolder=False,
        ) as backstage:
            yield Scene(
                backstage, trellis, registry, set(served_resources(trellis)), other_location_port
            )
    finally:
        trellis.stop()


def test_every_entity_trellis_serves_is_ingested(scene):
    scene.backstage.wait_for(
        lambda: set(resources(scene.backstage)) == scene.names,
        180,
        f"all {len(scene.names)} models as Resources in Backstage",
    )
    assert len(scene.names) >= 300
    systems = {e["metadata"]["name"] for e in scene.backstage.entities("kind=system")}
    assert systems == served_names(scene.trellis, "System") != set()
    assert scene.backstage.catalog_errors() == []
    location = f"url:{scene.trellis.url}/catalog/entities"
    annotations = next(iter(resources(scene.backstage).values()))["metadata"]["annotations"]
    assert annotations["backstage.io/managed-by-location"] == location
    assert annotations["backstage.io/managed-by-origin-location"] == location


def test_a_read_that_changed_nothing_is_a_304_and_changes_nothing(scene):
    before = resources(scene.backstage)
    applied = provider_lines(scene.backstage, "Trellis catalog applied")
    unchanged = catalog_reads(scene.trellis, 304)
    wait_until(
        lambda: catalog_reads(scene.trellis, 304) >= unchanged + 3,
        timeout=scaled(30),
        what="three more reads answered 304",
    )
    assert provider_lines(scene.backstage, "Trellis catalog applied") == applied
    assert resources(scene.backstage) == before


def test_a_model_deleted_from_the_registry_leaves_backstage(scene):
    served = served_resources(scene.trellis)
    gone = sorted(served)[0]
    client(scene.registry).delete_registered_model(served[gone])
    scene.backstage.wait_for(
        lambda: gone not in resources(scene.backstage),
        60,
        f"{gone} to leave Backstage",
    )
    assert set(resources(scene.backstage)) == scene.names - {gone}
    scene.names.discard(gone)


CLAIMED = "claimed-elsewhere"
"""A model whose entity name another location of Backstage's already holds."""
BESIDE = "arrives-beside-it"


def test_an_entity_backstage_rejects_affects_only_itself(scene, tmp_path):
    """Another location owns ``resource:default/claimed-elsewhere`` before a model of that name
    is registered: Backstage refuses Trellis's entity (a conflict of locations) and keeps the
    other location's; a model registered at the same time, and every other entity, still
    arrive through the same full mutation."""
    (tmp_path / "catalog-info.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "backstage.io/v1alpha1",
                "kind": "Resource",
                "metadata": {"name": CLAIMED},
                "spec": {"type": "database", "owner": "group:default/dba"},
            }
        ),
        encoding="utf-8",
    )
    claim = f"http://127.0.0.1:{scene.other_location_port}/catalog-info.yaml"
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", scene.other_location_port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        answer = scene.backstage.client.post(
            "/api/catalog/locations", json={"type": "url", "target": claim}
        )
        assert answer.status_code == 201, answer.text
        scene.backstage.wait_for(
            lambda: CLAIMED in resources(scene.backstage), 60, "the other location's entity"
        )
    finally:
        server.shutdown()
        server.server_close()

    registry = client(scene.registry)
    registry.create_registered_model(CLAIMED)
    registry.create_registered_model(BESIDE)
    wait_until(
        lambda: {CLAIMED, BESIDE} <= set(served_resources(scene.trellis)),
        timeout=scaled(30),
        what="Trellis to serve both new models",
    )
    scene.backstage.wait_for(
        lambda: BESIDE in resources(scene.backstage), 60, f"{BESIDE} in Backstage"
    )

    kept = resources(scene.backstage)[CLAIMED]
    assert kept["spec"] == {"type": "database", "owner": "group:default/dba"}
    assert kept["metadata"]["annotations"]["backstage.io/managed-by-location"] == f"url:{claim}"
    assert set(resources(scene.backstage)) == scene.names | {CLAIMED, BESIDE}
    log = scene.backstage.log_path.read_text(errors="replace")
    assert re.search(rf"conflict\S*.*resource:default/{CLAIMED}", log, re.IGNORECASE), (
        "Backstage logged no conflict for the refused entity"
    )
    scene.names |= {CLAIMED, BESIDE}


def test_a_trellis_too_slow_to_answer_loses_nothing(scene):
    """A paused process accepts connections and answers nothing: reads time out."""
    slow = provider_lines(scene.backstage, "entities kept as they are: no answer within")
    os.kill(scene.trellis.process.popen.pid, signal.SIGSTOP)
    try:
        scene.backstage.wait_for(
            lambda: (
                provider_lines(scene.backstage, "entities kept as they are: no answer within")
                >= slow + 2
            ),
            60,
            "two reads that time out",
        )
        assert set(resources(scene.backstage)) == scene.names
    finally:
        os.kill(scene.trellis.process.popen.pid, signal.SIGCONT)


def test_an_outage_and_a_trellis_without_its_registry_lose_nothing(scene, tmp_path):
    kept = provider_lines(scene.backstage, "entities kept as they are")
    scene.trellis.stop()
    scene.backstage.wait_for(
        lambda: provider_lines(scene.backstage, "entities kept as they are") >= kept + 2,
        60,
        "two reads of a Trellis that is down",
    )
    assert set(resources(scene.backstage)) == scene.names

    # A Trellis on an empty state whose registry cannot be read has nothing to serve: 503.
    broken = TrellisServer(
        tmp_path / "state",
        env=trellis_env(f"http://127.0.0.1:{free_port()}"),
        port=scene.trellis.port,
    )
    broken.start(timeout=scaled(60), ready=False)
    try:
        wait_until(
            lambda: catalog_reads(broken, 503) >= 2,
            timeout=scaled(60),
            what="two reads answered 503",
        )
    finally:
        broken.stop()
    assert set(resources(scene.backstage)) == scene.names
    assert "Trellis answered 503" in scene.backstage.log_path.read_text()

    # On an empty state, pointed at a reachable registry with no models, Trellis has no
    # snapshot to hold a drop against and answers an empty catalog: the provider holds it.
    held = provider_lines(scene.backstage, "Trellis answered with no entities; held until")
    empty_registry = f"sqlite:///{tmp_path / 'empty-registry.db'}"
    assert client(empty_registry).search_registered_models() == []  # creates its schema
    empty = TrellisServer(
        tmp_path / "fresh-state",
        env=trellis_env(empty_registry),
        port=scene.trellis.port,
    )
    empty.start(timeout=scaled(60))
    try:
        assert served(empty) == []
        scene.backstage.wait_for(
            lambda: (
                provider_lines(scene.backstage, "Trellis answered with no entities; held until")
                >= held + 2
            ),
            60,
            "two empty answers held",
        )
    finally:
        empty.stop()
    assert set(resources(scene.backstage)) == scene.names

    scene.trellis.start(timeout=scaled(60))
    reads = catalog_reads(scene.trellis, 200) + catalog_reads(scene.trellis, 304)
    wait_until(
        lambda: catalog_reads(scene.trellis, 200) + catalog_reads(scene.trellis, 304) > reads,
        timeout=scaled(30),
        what="a read of the restarted Trellis",
    )
    assert set(resources(scene.backstage)) == scene.names


def test_the_token_is_in_no_log(scene):
    assert TOKEN not in scene.backstage.log_path.read_text(errors="replace")
    assert TOKEN not in scene.trellis.process_log.read_text(errors="replace")


class EndlessAnswer(http.server.BaseHTTPRequestHandler):
    """A look-alike of Trellis whose catalog answer never ends (Trellis itself cannot be made
    to send one): what a broken proxy in between could do."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        chunk = b" " * 1024 * 1024
        with contextlib.suppress(OSError):
            while True:
                self.wfile.write(chunk)

    def log_message(self, *args: object) -> None:
        pass


READ_AT = """
const { TrellisEntityProvider } = require(process.argv[1]);
const logger = { warn: m => console.error(m), info: m => console.error(m) };
let now = 0;
const provider = new TrellisEntityProvider(
  { baseUrl: process.argv[2], token: 't', timeoutMs: 120000, confirmEmptyMs: 60000 },
  logger,
  () => now,
);
const reads = [];
const applied = [];
(async () => {
  await provider.connect({
    applyMutation: async m => { applied.push(m.entities.length); },
    refresh: async () => {},
  });
  for (const at of JSON.parse(process.argv[3])) {
    now = at;
    reads.push(await provider.read());
  }
  console.log(JSON.stringify({ reads, applied }));
  process.exit(0);
})();
"""
"""Runs the provider's own code in Node: one read at each of the given clock times (ms)."""


def run_node(script: str, module: str, *args: str) -> tuple[Any, str]:
    """Runs ``script`` on the compiled provider's ``module``; its JSON stdout and its stderr."""
    result = subprocess.run(
        [node_executable(), "-e", script, str(PROVIDER_DIR / "dist" / module), *args],
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=True,
        # The compiled provider's @backstage/* imports resolve in the harness's packages.
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
    )
    return json.loads(result.stdout), result.stderr


def read_at(base_url: str, times: list[int]) -> tuple[dict, str]:
    return run_node(READ_AT, "provider.js", base_url, json.dumps(times))


@contextlib.contextmanager
def upstream(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_endless_answer_is_cut_at_the_cap_and_applies_nothing():
    """The provider's own code, in Node, reading an upstream that never stops sending."""
    with upstream(EndlessAnswer) as url:
        report, log = read_at(url, [0])
    assert report == {
        "applied": [],
        "reads": [{"kind": "kept", "reason": "the answer is larger than 268435456 bytes"}],
    }
    assert "entities kept as they are: the answer is larger than" in log


def send_resources(
    handler: http.server.BaseHTTPRequestHandler, names: list[str], etag: str | None = None
) -> None:
    """A catalog answer of a Resource per name, as Trellis's entity list has it."""
    items = [
        {"apiVersion": "backstage.io/v1alpha1", "kind": "Resource", "metadata": {"name": name}}
        for name in names
    ]
    body = json.dumps({"items": items}).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    if etag is not None:
        handler.send_header("ETag", etag)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class ScriptedAnswers(http.server.BaseHTTPRequestHandler):
    """A look-alike of Trellis whose catalog answers are, in turn: none, none, one entity,
    then none from then on (what a Trellis pointed at a wrong, empty registry says)."""

    answers = (0, 0, 1)
    served = 0

    def do_GET(self) -> None:
        count = self.answers[type(self).served] if type(self).served < len(self.answers) else 0
        type(self).served += 1
        send_resources(self, [f"m{i}" for i in range(count)])

    def log_message(self, *args: object) -> None:
        pass


def test_answers_with_no_entities_are_held_until_they_have_lasted():
    """An empty answer empties the catalog only once empty answers have lasted a minute (the
    confirmation given): one with entities in between starts the wait again."""
    times = [0, 30_000, 40_000, 50_000, 100_000, 109_999, 110_000]
    ScriptedAnswers.served = 0
    with upstream(ScriptedAnswers) as url:
        report, log = read_at(url, times)
    kinds = [read["kind"] for read in report["reads"]]
    assert kinds == ["kept", "kept", "applied", "kept", "kept", "kept", "applied"]
    assert report["applied"] == [1, 0]
    held = report["reads"][3]["reason"]
    assert held.startswith("Trellis answered with no entities; held until 1970-01-01T00:01:50")
    assert "confirmEmptyAfter" in held
    assert log.count("entities kept as they are: Trellis answered with no entities") == 5


class TakingTurns(http.server.BaseHTTPRequestHandler):
    """Two replicas behind one Service: a good one (one entity, ETag ``"a"``, then 304 to a
    reader holding it) and one misled to an empty registry, answering in ``turns``."""

    turns = ("good", "empty", "good", "empty", "empty", "empty")
    served = 0
    etags: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        turn = self.turns[type(self).served]
        type(self).served += 1
        type(self).etags.append(self.headers.get("If-None-Match"))
        if turn == "good" and self.headers.get("If-None-Match") == '"a"':
            self.send_response(304)
            self.end_headers()
            return
        send_resources(
            self, ["m0"] if turn == "good" else [], etag='"a"' if turn == "good" else '"e"'
        )

    def log_message(self, *args: object) -> None:
        pass


def test_a_304_between_empty_answers_starts_the_wait_again():
    """A 304 confirms the entities applied: empty answers around it do not add up."""
    TakingTurns.served, TakingTurns.etags = 0, []
    with upstream(TakingTurns) as url:
        report, _ = read_at(url, [0, 10_000, 40_000, 80_000, 139_999, 140_000])
    kinds = [read["kind"] for read in report["reads"]]
    assert kinds == ["applied", "kept", "unchanged", "kept", "kept", "applied"]
    assert TakingTurns.etags[2] == '"a"'  # the 304 answered the entities applied
    assert report["applied"] == [1, 0]


READ_CONFIG = """
const { readProviderConfig } = require(process.argv[1]);
const { ConfigReader } = require('@backstage/config');
const read = baseUrl => {
  const config = new ConfigReader({ trellis: { baseUrl, token: 't', catalog: {} } });
  try {
    return readProviderConfig(config).options.baseUrl;
  } catch (error) {
    return `error: ${error.message}`;
  }
};
console.log(JSON.stringify(JSON.parse(process.argv[2]).map(read)));
"""


def test_a_base_url_with_credentials_is_refused_without_repeating_them():
    """fetch() would refuse such a URL later with an error holding the password, in the logs."""
    urls = [
        "http://reader:s3cret@trellis:8080",
        "ftp://trellis",
        "http://trellis:8080/",
        "http://reader:s3cret@[trellis",  # does not parse, so never checked for credentials
    ]
    answers, log = run_node(READ_CONFIG, "index.js", json.dumps(urls))
    assert answers == [
        "error: trellis.baseUrl must not carry credentials: set trellis.token instead",
        'error: trellis.baseUrl must be an http(s) URL, got "ftp://trellis"',
        "http://trellis:8080",
        'error: trellis.baseUrl must be an http(s) URL, got "http://[trellis"',
    ]
    assert "s3cret" not in json.dumps(answers) + log
