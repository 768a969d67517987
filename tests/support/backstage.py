"""Run real Backstage code from the tests.

Two entry points, both backed by the Node project in ``tests/backstage``:

* :func:`validate_entities` validates catalog entities with ``@backstage/catalog-model`` the
  way the catalog does (default entity policies plus the kind validators), without a backend.
* :class:`BackstageBackend` starts a real Backstage backend (catalog, scaffolder entity model,
  proxy) on ``127.0.0.1`` and talks to its HTTP API. Entities that fail validation never
  show up in the catalog API; the backend records the catalog's processing errors in a JSON
  Lines file, read with :meth:`BackstageBackend.catalog_errors`.

The Node dependencies are installed by ``make test`` or ``npm ci --prefix tests/backstage``;
the Trellis scaffolder module (``backend/plugin-scaffolder-backend-module-trellis``) is
compiled with ``npm run build-module --prefix tests/backstage``. The backend loads the
scaffolder with that module only when its config has a ``trellis`` block (the scaffolder is
a second of CPU at every start), and can then run real scaffolder tasks and dry-runs
(:meth:`BackstageBackend.dry_run`, :meth:`BackstageBackend.run_task`).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from support.markers import starting
from support.timing import scaled

HARNESS_DIR: Path = Path(__file__).resolve().parent.parent / "backstage"
"""The Node project holding ``backend.js`` and ``validate.js``."""

NODE_MODULES: Path = HARNESS_DIR / "node_modules"

MODULE_DIR: Path = HARNESS_DIR.parents[1] / "backend" / "plugin-scaffolder-backend-module-trellis"
"""The Trellis scaffolder module; ``backend.js`` loads its compiled ``dist/``."""

PROVIDER_DIR: Path = HARNESS_DIR.parents[1] / "backend" / "plugin-catalog-backend-module-trellis"
"""The Trellis catalog entity provider; ``backend.js`` loads its compiled ``dist/``."""

_BUILDS: dict[Path, str] = {
    MODULE_DIR: "npm run build-module --prefix tests/backstage",
    PROVIDER_DIR: "npm run build-provider --prefix tests/backstage",
}
"""Each Trellis Backstage package and the command that compiles it."""

ALLOWED_KINDS: tuple[str, ...] = (
    "Component",
    "API",
    "Resource",
    "System",
    "Group",
    "User",
    "Domain",
    "Template",
    "Location",
)
"""Kinds the test backend's ``catalog.rules`` accept."""

START_TIMEOUT = 90.0
"""Seconds to wait for the backend's HTTP server to become ready."""

VALIDATE_TIMEOUT = 120.0
"""Seconds ``validate.js`` may run."""

READINESS_PATH = "/.backstage/health/v1/readiness"

ExtraConfig = Mapping[str, Any] | Callable[[int], Mapping[str, Any]]
"""Config merged over the generated one, or a function of the backend's port that makes it."""

_PORT_ATTEMPTS = 3

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")

_LOG_LEVEL = re.compile(r"^(error|warn|info|debug|verbose|silly): ")

TASK_TIMEOUT = 60.0
"""Seconds a scaffolder task or dry-run may take in tests."""

TASK_END_STATES = frozenset({"completed", "failed", "cancelled"})
"""Statuses after which a scaffolder task changes no more."""

_INSTALL_HINT = (
    "Install the Backstage test harness first: `make test` installs it, or run "
    "`npm ci --prefix tests/backstage` (needs Node.js 20+ and npm)."
)


def ensure_harness() -> Path:
    """Check that Node.js and the harness's Node dependencies are installed.

    Returns :data:`HARNESS_DIR`. Raises :class:`AssertionError` with install instructions
    when something is missing: tests that need Backstage fail rather than skip.
    """
    if shutil.which("node") is None:
        raise AssertionError(f"`node` is not on PATH. {_INSTALL_HINT}")
    if not NODE_MODULES.is_dir():
        raise AssertionError(f"{NODE_MODULES} does not exist. {_INSTALL_HINT}")
    manifest = json.loads((HARNESS_DIR / "package.json").read_text(encoding="utf-8"))
    missing = [
        name
        for name in manifest.get("dependencies", {})
        if not (NODE_MODULES / name / "package.json").is_file()
    ]
    if missing:
        raise AssertionError(
            f"Missing Node packages in {NODE_MODULES}: {', '.join(missing)}. {_INSTALL_HINT}"
        )
    _ensure_module_built()
    return HARNESS_DIR


def _ensure_module_built() -> None:
    """Fail when a Trellis package's ``dist/`` is missing or older than its sources.

    A stale build would let the tests prove old code, so it counts as missing.
    """
    for folder, command in _BUILDS.items():
        hint = f"Compile it with `{command}` (or run `make test`)."
        built = folder / "dist" / "index.js"
        if not built.is_file():
            raise AssertionError(f"{folder.name} is not compiled ({built}). {hint}")
        built_at = built.stat().st_mtime
        stale = sorted(
            str(source.relative_to(folder))
            for source in (folder / "src").rglob("*.ts")
            if source.stat().st_mtime > built_at
        )
        if stale:
            raise AssertionError(f"{folder.name}'s build is older than {', '.join(stale)}. {hint}")


def _node() -> str:
    """Return the path of the ``node`` executable, after checking the harness."""
    starting("backstage")
    ensure_harness()
    node = shutil.which("node")
    if node is None:
        raise AssertionError(f"`node` is not on PATH. {_INSTALL_HINT}")
    return node


def node_executable() -> str:
    """Return the ``node`` executable, after checking the harness is installed and built."""
    return _node()


def validate_entities(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validate catalog entities with ``@backstage/catalog-model``, as the catalog does.

    Returns one result per entity, in order: ``{"ref": "kind:namespace/name", "ok": bool,
    "errors": [str, ...]}``. An entity of a kind no validator knows is an error.
    """
    node = _node()
    proc = subprocess.run(
        [node, "validate.js"],
        cwd=HARNESS_DIR,
        input=json.dumps(entities),
        capture_output=True,
        text=True,
        timeout=scaled(VALIDATE_TIMEOUT),
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(f"validate.js exited with {proc.returncode}:\n{proc.stderr.strip()}")
    results: list[dict[str, Any]] = json.loads(proc.stdout)
    if len(results) != len(entities):
        raise AssertionError(
            f"validate.js returned {len(results)} results for {len(entities)} entities"
        )
    return results


PARSE_TIMEOUT = 20.0
"""Seconds ``parse-yaml.js`` may take for one batch on an idle machine (stretched by
:func:`scaled`), its start-up included."""


class _YamlReader:
    """A ``parse-yaml.js`` process that answers one batch of files per line, kept running.

    Node's start-up costs more CPU than parsing a batch, and property tests parse a batch per
    example, so one process serves every call of a test process (:func:`parse_yaml`).
    """

    def __init__(self, node: str) -> None:
        self._process = subprocess.Popen(
            [node, "parse-yaml.js"],
            cwd=HARNESS_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
        )

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def ask(self, encoded: list[str]) -> Any:
        """Send one batch of base64-encoded files; return the decoded answer line."""
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(json.dumps(encoded).encode("ascii") + b"\n")
        except BrokenPipeError:
            raise self._failure() from None
        timeout = scaled(PARSE_TIMEOUT)
        deadline = time.monotonic() + timeout
        answer = bytearray()
        while not answer.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.close()
                raise AssertionError(f"parse-yaml.js gave no answer within {timeout:.0f} s")
            if select.select([stdout], [], [], remaining)[0]:
                chunk = os.read(stdout.fileno(), 1 << 16)
                if not chunk:
                    raise self._failure()
                answer += chunk
        return json.loads(answer)

    def _failure(self) -> AssertionError:
        self.close()
        assert self._process.stderr is not None
        stderr = self._process.stderr.read().decode("utf-8", errors="replace").strip()
        return AssertionError(f"parse-yaml.js exited with {self._process.returncode}:\n{stderr}")

    def close(self) -> None:
        """End the process (closing its stdin ends it) and wait for it."""
        if self._process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self._process.stdin.close()
        try:
            self._process.wait(timeout=scaled(10))
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


_yaml_reader: _YamlReader | None = None


def parse_yaml(files: Sequence[bytes | str]) -> list[list[dict[str, Any]]]:
    """Read YAML files as Backstage's catalog does: the ``yaml`` npm package, YAML 1.2.

    Returns, per file, its documents as ``{"value": <JSON form>, "errors": [str, ...]}``;
    a document with errors is one Backstage would refuse (its ``value`` is ``None``). All
    calls of a test process go through one Node process, started by the first. Needs only
    Node.js and the harness's ``yaml`` package, not a built scaffolder module.
    """
    global _yaml_reader
    if _yaml_reader is None or not _yaml_reader.alive:
        node = shutil.which("node")
        if node is None:
            raise AssertionError(f"`node` is not on PATH. {_INSTALL_HINT}")
        if not (NODE_MODULES / "yaml" / "package.json").is_file():
            raise AssertionError(
                f"The `yaml` package is missing from {NODE_MODULES}. {_INSTALL_HINT}"
            )
        _yaml_reader = _YamlReader(node)
        atexit.register(_yaml_reader.close)
    encoded = [
        base64.b64encode(f.encode("utf-8") if isinstance(f, str) else f).decode() for f in files
    ]
    results: list[list[dict[str, Any]]] = _yaml_reader.ask(encoded)
    if len(results) != len(files):
        raise AssertionError(f"parse-yaml.js answered {len(results)} of {len(files)} files")
    return results


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``extra`` into a copy of ``base``; nested mappings merge, other values replace.

    ``None`` removes the key, so a test can ask for Backstage's own default of a setting.
    """
    merged = dict(base)
    for key, value in extra.items():
        current = merged.get(key)
        if value is None:
            merged.pop(key, None)
        elif isinstance(current, dict) and isinstance(value, Mapping):
            merged[key] = _deep_merge(current, value)
        else:
            merged[key] = value
    return merged


def build_app_config(
    port: int,
    *,
    locations: list[dict[str, Any]],
    reading_allow: list[str],
    extra_config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the app-config for a test backend listening on ``127.0.0.1:port``.

    ``locations`` become ``catalog.locations`` as given (for example
    ``{"type": "url", "target": "http://127.0.0.1:8000/catalog-info.yaml"}``);
    ``reading_allow`` are ``host[:port]`` entries for ``backend.reading.allow``;
    ``extra_config`` is deep-merged on top.
    """
    base_url = f"http://127.0.0.1:{port}"
    config: dict[str, Any] = {
        "backend": {
            "baseUrl": base_url,
            "listen": {"host": "127.0.0.1", "port": port},
            "database": {"client": "better-sqlite3", "connection": ":memory:"},
            "auth": {"dangerouslyDisableDefaultAuthPolicy": True},
            "reading": {"allow": [{"host": host} for host in reading_allow]},
        },
        "catalog": {
            "rules": [{"allow": list(ALLOWED_KINDS)}],
            "locations": list(locations),
            "processingInterval": {"seconds": 5},
        },
        # Only the in-process event bus: there is no events backend plugin to talk to.
        "events": {"useEventBus": "never"},
    }
    if extra_config:
        config = _deep_merge(config, extra_config)
    return config


def _tail(path: Path, lines: int = 60) -> str:
    """Return the last ``lines`` lines of a log file without color codes."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return f"<{path} does not exist>"
    return "\n".join(_ANSI_ESCAPE.sub("", line) for line in text.splitlines()[-lines:])


class BackstageBackend:
    """A running Backstage backend (``tests/backstage/backend.js``) and an HTTP client for it.

    Create it with :meth:`start`, which is a context manager::

        with BackstageBackend.start(tmp_path, locations=[...], reading_allow=[...]) as backend:
            backend.wait_for(lambda: backend.entities(), 30, "any entity")
    """

    def __init__(
        self,
        *,
        base_url: str,
        process: subprocess.Popen[bytes],
        config_path: Path,
        log_path: Path,
        errors_path: Path,
    ) -> None:
        """Wrap an already started backend process; use :meth:`start` instead."""
        self._base_url = base_url
        self.process = process
        self.config_path = config_path
        self.log_path = log_path
        self.errors_path = errors_path
        self.client = httpx.Client(base_url=base_url, timeout=scaled(30.0))
        self._stopped = False

    @classmethod
    @contextlib.contextmanager
    def start(
        cls,
        tmp_dir: Path,
        *,
        locations: list[dict[str, Any]],
        reading_allow: list[str],
        extra_config: ExtraConfig | None = None,
        timeout: float = START_TIMEOUT,
        scaffolder: bool = True,
    ) -> Iterator[BackstageBackend]:
        """Start a backend, wait until it answers HTTP, yield it, then stop it.

        Writes ``app-config.yaml``, ``backend.log`` (stdout and stderr) and
        ``catalog-errors.jsonl`` into ``tmp_dir``. The backend runs in its own process group,
        which is terminated on exit. Fails with the log tail if the process dies or is not
        ready within ``timeout`` seconds.

        ``extra_config`` is deep-merged over the generated config; pass a function of the
        backend's port instead when the config must name the backend's own address (for
        example ``discovery.endpoints`` pointing at its proxy): it is called again with the
        new port when a start is retried.

        With a ``trellis`` block in the config the backend also loads the scaffolder with
        the Trellis module (unless ``scaffolder`` is false), and with ``trellis.catalog`` the
        Trellis entity provider; a ``kubernetes`` block adds the Kubernetes backend plugin,
        a ``techdocs`` block the TechDocs backend plugin, an ``auth`` block the auth backend
        with its guest provider.
        """
        node = _node()
        tmp_dir = Path(tmp_dir)
        tmp_dir.mkdir(parents=True, exist_ok=True)
        # The port is picked before the backend binds it; another process may take it in
        # between, so a start that fails with EADDRINUSE is retried on a new port.
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            backend = cls._launch(
                node,
                tmp_dir,
                locations=locations,
                reading_allow=reading_allow,
                extra_config=extra_config,
                scaffolder=scaffolder,
            )
            try:
                backend._wait_until_ready(timeout)
            except BaseException:
                backend.stop()
                if attempt < _PORT_ATTEMPTS and "EADDRINUSE" in backend.log_tail():
                    continue
                raise
            break
        try:
            yield backend
        finally:
            backend.stop()

    @classmethod
    def _launch(
        cls,
        node: str,
        tmp_dir: Path,
        *,
        locations: list[dict[str, Any]],
        reading_allow: list[str],
        extra_config: ExtraConfig | None,
        scaffolder: bool = True,
    ) -> BackstageBackend:
        """Write the config and start ``backend.js`` in a new session, without waiting."""
        port = free_port()
        config_path = tmp_dir / "app-config.yaml"
        log_path = tmp_dir / "backend.log"
        errors_path = tmp_dir / "catalog-errors.jsonl"
        if callable(extra_config):
            extra_config = extra_config(port)
        config = build_app_config(
            port, locations=locations, reading_allow=reading_allow, extra_config=extra_config
        )
        config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        errors_path.write_text("", encoding="utf-8")

        env = {key: value for key, value in os.environ.items() if not key.startswith("APP_CONFIG_")}
        env["TRELLIS_CATALOG_ERRORS_FILE"] = str(errors_path)
        # The scaffolder module lives outside the harness; its @backstage/* imports resolve
        # through NODE_PATH to the harness's copies, the same instances the backend uses.
        env["NODE_PATH"] = os.pathsep.join(
            p for p in (str(NODE_MODULES), os.environ.get("NODE_PATH", "")) if p
        )
        # The module needs the `trellis` config block, so the scaffolder comes only with one.
        env.pop("TRELLIS_SCAFFOLDER_MODULE", None)
        env.pop("TRELLIS_CATALOG_PROVIDER", None)
        # The Kubernetes, TechDocs and auth backends start only for a config that sets them up.
        for block, variable in (
            ("kubernetes", "TRELLIS_KUBERNETES_BACKEND"),
            ("techdocs", "TRELLIS_TECHDOCS_BACKEND"),
            ("auth", "TRELLIS_AUTH_BACKEND"),
        ):
            env.pop(variable, None)
            if block in config:
                env[variable] = "1"
        if "trellis" in config and scaffolder:
            env["TRELLIS_SCAFFOLDER_MODULE"] = "1"
        if "catalog" in config.get("trellis", {}):
            env["TRELLIS_CATALOG_PROVIDER"] = "1"

        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [node, "backend.js", "--config", str(config_path)],
                cwd=HARNESS_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            return cls(
                base_url=f"http://127.0.0.1:{port}",
                process=process,
                config_path=config_path,
                log_path=log_path,
                errors_path=errors_path,
            )
        except BaseException:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise

    @property
    def base_url(self) -> str:
        """The backend's base URL, ``http://127.0.0.1:<port>``."""
        return self._base_url

    def _wait_until_ready(self, timeout: float) -> None:
        """Poll the readiness endpoint until it answers 200, the process dies, or time is up."""
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        while True:
            code = self.process.poll()
            if code is not None:
                raise AssertionError(
                    f"Backstage backend exited with {code} before it was ready. "
                    f"Log tail ({self.log_path}):\n{self.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if self.client.get(READINESS_PATH, timeout=scaled(2.0)).status_code == 200:
                    return
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"Backstage backend not ready after {timeout:.0f} s. "
                    f"Log tail ({self.log_path}):\n{self.log_tail()}"
                )
            time.sleep(0.25)

    def stop(self) -> None:
        """Terminate the backend's whole process group and close the HTTP client."""
        if self._stopped:
            return
        self._stopped = True
        self.client.close()
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=scaled(15))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=scaled(15))
        # Children that outlived the leader would still be in the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 60) -> str:
        """Return the last ``lines`` lines of the backend's log."""
        return _tail(self.log_path, lines)

    def entities(self, filter: str | None = None) -> list[dict[str, Any]]:
        """Return the catalog's entities (``GET /api/catalog/entities``).

        ``filter`` is passed as the ``filter`` query parameter, for example
        ``"kind=resource,spec.type=ai-model"``.
        """
        params = {"filter": filter} if filter is not None else None
        response = self.client.get("/api/catalog/entities", params=params)
        response.raise_for_status()
        entities: list[dict[str, Any]] = response.json()
        return entities

    def refresh(self, entity_ref: str) -> None:
        """Ask the catalog to process an entity (and re-read its location) right away."""
        response = self.client.post("/api/catalog/refresh", json={"entityRef": entity_ref})
        response.raise_for_status()

    def catalog_errors(self) -> list[dict[str, Any]]:
        """Return the ``experimental.catalog.errors`` events recorded so far.

        Each is ``{"topic", "receivedAt", "entity": "kind:namespace/name", "location":
        "url:...", "errors": [{"name", "message", "cause"?, ...}]}``.
        """
        try:
            text = self.errors_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        events: list[dict[str, Any]] = []
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                # A line still being written; it is complete on the next read.
                continue
        return events

    def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float,
        what: str,
        *,
        interval: float = 0.5,
    ) -> None:
        """Poll ``predicate`` until it returns true; raise AssertionError naming ``what``.

        Exceptions raised by ``predicate`` count as "not yet"; the last one is reported on
        timeout, with the backend's log tail. ``timeout`` is an idle machine's figure,
        stretched by the suite's scale factor.
        """
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while True:
            try:
                if predicate():
                    return
                last_error = None
            except Exception as error:  # reported on timeout
                last_error = error
            if time.monotonic() >= deadline:
                detail = f" (last error: {last_error!r})" if last_error is not None else ""
                raise AssertionError(
                    f"Timed out after {timeout:.0f} s waiting for {what}{detail}. "
                    f"Backend log tail ({self.log_path}):\n{self.log_tail(30)}"
                )
            if self.process.poll() is not None:
                raise AssertionError(
                    f"Backstage backend exited with {self.process.returncode} while waiting "
                    f"for {what}. Log tail ({self.log_path}):\n{self.log_tail()}"
                )
            time.sleep(interval)

    def validate_entity(self, entity: dict[str, Any], location: str) -> httpx.Response:
        """Ask the catalog to validate ``entity`` (``POST /api/catalog/validate-entity``).

        ``location`` is a location ref such as ``"url:http://127.0.0.1:8000/x.yaml"``. The
        response is 200 when valid and 400 with the validator's errors otherwise.
        """
        return self.client.post(
            "/api/catalog/validate-entity", json={"entity": entity, "location": location}
        )

    def dry_run(
        self,
        template: Mapping[str, Any],
        values: Mapping[str, Any],
        *,
        secrets: Mapping[str, str] | None = None,
        timeout: float = TASK_TIMEOUT,
    ) -> httpx.Response:
        """Run a Template entity's steps in dry-run mode (``POST /api/scaffolder/v2/dry-run``).

        The template need not be in the catalog. A 200 answer holds ``directoryContents``
        (decode them with :func:`dry_run_files`) and ``log``; parameters that fail the
        template's own form schema give 400 ``{"errors": [...]}``, and an action's
        ``InputError`` gives 400 ``{"error": {"name": "InputError", "message": ...}}``.
        """
        return self.client.post(
            "/api/scaffolder/v2/dry-run",
            json={
                "template": template,
                "values": values,
                "secrets": dict(secrets or {}),
                "directoryContents": [],
            },
            timeout=scaled(timeout),
        )

    def create_task(
        self,
        template_ref: str,
        values: Mapping[str, Any],
        *,
        secrets: Mapping[str, str] | None = None,
    ) -> str:
        """Start a real scaffolder task from a catalog template; return its id.

        ``template_ref`` is ``template:namespace/name``. Raises AssertionError with the answer
        when the scaffolder refuses the task (for example, values that fail the form).
        """
        response = self.client.post(
            "/api/scaffolder/v2/tasks",
            json={"templateRef": template_ref, "values": values, "secrets": dict(secrets or {})},
        )
        if response.status_code != 201:
            raise AssertionError(
                f"The scaffolder refused the task ({response.status_code}): {response.text}"
            )
        task_id: str = response.json()["id"]
        return task_id

    def wait_for_task(self, task_id: str, timeout: float = TASK_TIMEOUT) -> dict[str, Any]:
        """Poll ``GET /api/scaffolder/v2/tasks/ID`` until the task has ended; return it.

        Ended means ``completed``, ``failed`` or ``cancelled``. Raises AssertionError with
        the task's log on timeout.
        """
        task: dict[str, Any] = {}

        def ended() -> bool:
            nonlocal task
            response = self.client.get(f"/api/scaffolder/v2/tasks/{task_id}")
            response.raise_for_status()
            task = response.json()
            return task.get("status") in TASK_END_STATES

        try:
            self.wait_for(ended, timeout, f"task {task_id} to end", interval=0.25)
        except AssertionError as error:
            log = "\n".join(task_log(self.task_events(task_id)))
            raise AssertionError(f"{error}\nTask log:\n{log}") from None
        return task

    def task_events(self, task_id: str) -> list[dict[str, Any]]:
        """Return a task's events (``GET /api/scaffolder/v2/tasks/ID/events``), oldest first.

        Each is ``{"id", "taskId", "type": "log" | "completion" | ..., "body": {"message",
        "stepId"?, "status"?, "error"?: {"name", "message"}}, "createdAt"}``.
        """
        response = self.client.get(f"/api/scaffolder/v2/tasks/{task_id}/events")
        response.raise_for_status()
        events: list[dict[str, Any]] = response.json()
        return events

    def run_task(
        self,
        template_ref: str,
        values: Mapping[str, Any],
        *,
        secrets: Mapping[str, str] | None = None,
        timeout: float = TASK_TIMEOUT,
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Start a task, wait until it ends, and return ``(task, events)``."""
        task_id = self.create_task(template_ref, values, secrets=secrets)
        task = self.wait_for_task(task_id, timeout)
        return task, self.task_events(task_id)


def dry_run_files(response: httpx.Response) -> dict[str, tuple[bytes, bool]]:
    """Decode a successful dry-run answer into ``{path: (content, executable)}``.

    Raises AssertionError with the answer when the dry-run did not succeed.
    """
    if response.status_code != 200:
        raise AssertionError(f"The dry-run failed ({response.status_code}): {response.text}")
    return {
        item["path"]: (base64.b64decode(item["base64Content"]), bool(item.get("executable")))
        for item in response.json()["directoryContents"]
    }


def task_log(events: list[dict[str, Any]], step_id: str | None = None) -> list[str]:
    """Return the log messages of task ``events`` (of one step, if given), as plain text.

    Also takes a dry-run answer's ``log`` (entries with a ``body`` and no ``type``). Step
    loggers format each line as ``<colored level>: <message>``; the color codes and the level
    are removed, so a message reads exactly as the action logged it.
    """
    messages = []
    for event in events:
        body = event.get("body", {})
        if event.get("type", "log") != "log" or (
            step_id is not None and body.get("stepId") != step_id
        ):
            continue
        text = _ANSI_ESCAPE.sub("", str(body.get("message", "")))
        messages.append(_LOG_LEVEL.sub("", text, count=1))
    return messages


def workspace_listing(root: Path) -> str:
    """Return what ``debug:log`` with ``listWorkspace: with-contents`` prints for ``root``.

    Mirrors the action: folders are walked depth first with entries in byte order (Node's
    ``readdir`` sorts them), each file printed as `` - path:`` then a blank line, two
    spaces and its UTF-8 contents. Compare it with the logged message to prove a task's
    workspace holds exactly these files with exactly these contents.
    """

    def walk(folder: Path) -> Iterator[Path]:
        for entry in sorted(folder.iterdir(), key=lambda p: os.fsencode(p.name)):
            if entry.is_dir() and not entry.is_symlink():
                yield from walk(entry)
            else:
                yield entry

    parts = [
        f" - {path.relative_to(root).as_posix()}:\n\n"
        f"  {path.read_bytes().decode('utf-8', errors='replace')}"
        for path in walk(root)
    ]
    return "Workspace:\n" + "\n".join(parts)
