"""The ``trellis`` command: the same operations as the API, from a terminal.

Errors from Trellis become one line on stderr and an exit code, in one place
(``_handle_errors``): 2 for configuration, 3 for an upstream that could not be read.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
import yaml
from pydantic import SecretStr, ValidationError
from rich.console import Console
from rich.markup import escape

from trellis import __version__
from trellis.config import Settings
from trellis.errors import AnswerError, ConfigError, SourceUnavailable, TrellisError
from trellis.model import Snapshot
from trellis.redact import install_log_redaction
from trellis.scorecards import DefinitionError
from trellis.yaml_text import dump

__all__ = ["app", "main"]

app = typer.Typer(
    name="trellis",
    help="Trellis: the MLflow model registry, Prometheus and Kubernetes as a Backstage "
    "catalog, scorecards and observability. Configure with TRELLIS_* environment variables "
    "(see `docs/configuration.md`).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)

EXIT_CONFIG = 2
EXIT_SOURCE = 3


class OutputFormat(StrEnum):
    """How a command prints its answer."""

    TABLE = "table"
    JSON = "json"


@contextmanager
def _handle_errors() -> Iterator[None]:
    try:
        yield
    except ValidationError as exc:
        _fail(EXIT_CONFIG, "invalid configuration:\n" + _settings_errors(exc))
    except (ConfigError, AnswerError, DefinitionError) as exc:
        _fail(EXIT_CONFIG, str(exc))
    except SourceUnavailable as exc:
        _fail(EXIT_SOURCE, str(exc))
    except TrellisError as exc:
        _fail(1, str(exc))


def _fail(code: int, message: str) -> NoReturn:
    # No wrapping: a path or URL in the message must stay whole to be copied.
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _settings_errors(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        key = "TRELLIS_" + "__".join(str(p) for p in error["loc"]).upper()
        lines.append(f"  {key}: {error['msg']}")
    return "\n".join(lines)


def _settings() -> Settings:
    return Settings()


def _logging(level: str, settings: Settings) -> None:
    """Log to stderr, every line scrubbed of the configured secrets and URL credentials."""
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from trellis.app import redactor

    install_log_redaction(redactor(settings))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"trellis {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Trellis command line."""


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address [TRELLIS_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port [TRELLIS_PORT].")] = None,
) -> None:
    """Run the API (one worker: extra workers only add latency on reused connections)."""
    with _handle_errors():
        settings = _settings()
        _serve(settings, host or settings.host, port if port is not None else settings.port)


def _serve(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from trellis.app import create_app

    _logging(settings.log_level, settings)
    # The access log would record query strings, where a catalog token may ride: off.
    # No logging config of uvicorn's own: its loggers go to the root's scrubbing handlers.
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        workers=1,
        access_log=False,
        log_level=settings.log_level,
        log_config=None,
    )


@app.command()
def catalog(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Read the registry (and clusters) once and print the catalog entities as YAML."""
    from trellis.app import build_registry, catalog_options, read_once
    from trellis.services.catalog_refresh import build_document

    with _handle_errors():
        settings = _settings()
        _logging("warning", settings)
        snapshot = read_once(settings, build_registry(settings))
        _warn_failed_clusters(snapshot)
        document = build_document(snapshot, catalog_options(settings))
        _write(document.yaml, output)
        for problem in document.problems:
            err.print(
                f"{problem.severity}: {problem.model!r}: {problem.message}",
                highlight=False,
                markup=False,
            )
        err.print(
            f"{document.entity_count} entities from {document.model_count} models", highlight=False
        )


@app.command()
def openapi(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Print the API's OpenAPI document as YAML (the platform's own API entity uses it)."""
    from trellis.app import create_app

    with _handle_errors():
        document = create_app(Settings(api_tokens=[])).openapi()
        text = dump(document, width=100)
        _write(text.encode(), output)


@app.command()
def demo(
    retrain: Annotated[
        bool, typer.Option(help="Train again even when the demo models exist.")
    ] = False,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Start the API when training is done.")
    ] = True,
) -> None:
    """Train a few real scikit-learn models into the embedded registry and serve them."""
    from trellis.demo import prepare_demo, print_next_steps

    with _handle_errors():
        settings = _settings()
        console = Console()
        settings = prepare_demo(settings, console=console, retrain=retrain)
        print_next_steps(settings, console=console)
        if serve_after:
            _serve(settings, settings.host, settings.port)


@app.command()
def new(
    blueprint: Annotated[str, typer.Argument(help="Blueprint to render, e.g. ml-model.")],
    destination: Annotated[Path, typer.Argument(help="Folder to create the repository in.")],
    data: Annotated[
        list[str] | None,
        typer.Option("--data", "-d", help="An answer, KEY=VALUE; repeat for several."),
    ] = None,
    data_file: Annotated[
        Path | None, typer.Option(help="A YAML file of answers (--data wins over it).")
    ] = None,
    defaults: Annotated[
        bool, typer.Option(help="Use the default for every question not answered.")
    ] = False,
    vcs_ref: Annotated[
        str | None,
        typer.Option(
            help="Blueprint release (default: the newest), or a git ref such as HEAD for a "
            "development render [TRELLIS_BLUEPRINTS__VCS_REF]."
        ),
    ] = None,
) -> None:
    """Generate a new repository from a blueprint (Copier renders it; updatable later)."""
    from trellis.app import build_scaffolder

    with _handle_errors():
        settings = _settings()
        answers = _answers(data or [], data_file)
        if destination.exists() and any(destination.iterdir()):
            raise ConfigError(f"{destination} exists and is not empty")
        build_scaffolder(settings).new(
            blueprint, destination, answers, defaults=defaults, vcs_ref=vcs_ref
        )
        files = sum(1 for p in destination.rglob("*") if p.is_file())
        err.print(f"[green]✓[/] {blueprint}: {files} files in {destination}", highlight=False)
        err.print(
            f"  next: cd {destination} && git init && git add -A && git commit -m "
            "'Generated by Trellis'",
            highlight=False,
            markup=False,
            soft_wrap=True,  # a command to copy: never broken across lines
        )


blueprints_app = typer.Typer(
    help="The blueprints: list them, and write them as Backstage Software Templates.",
    no_args_is_help=True,
)
app.add_typer(blueprints_app, name="blueprints")


@blueprints_app.command("list")
def blueprints_list() -> None:
    """List the blueprints with their titles and questions."""
    from trellis.app import build_scaffolder

    with _handle_errors():
        for blueprint in build_scaffolder(_settings()).blueprints():
            typer.echo(f"{blueprint.name}: {blueprint.title}")
            typer.echo(f"  questions: {', '.join(q.name for q in blueprint.questions)}")


@blueprints_app.command("backstage")
def blueprints_backstage(
    output_dir: Annotated[
        Path, typer.Option("--output-dir", "-o", help="Folder to write the templates into.")
    ] = Path("catalog/templates"),
    check: Annotated[
        bool,
        typer.Option(help="Write nothing; exit 1 when a file differs from what would be written."),
    ] = False,
) -> None:
    """Write a Software Template per blueprint (`<blueprint>.yaml`) and a Location for them.

    The templates render through Trellis (`trellis:blueprint:render`), so new repositories
    can follow later blueprint versions with `copier update`. Never edit them by hand: run
    this again after changing a blueprint's copier.yml or blueprint.yaml.
    """
    from trellis.app import build_scaffolder

    with _handle_errors():
        files = build_scaffolder(_settings()).template_files()
        stale = [
            name
            for name, content in files.items()
            if not (output_dir / name).is_file() or (output_dir / name).read_bytes() != content
        ]
        extra = (
            sorted(p.name for p in output_dir.glob("*.yaml") if p.name not in files)
            if output_dir.is_dir()
            else []
        )
        if check:
            if stale or extra:
                _fail(
                    1,
                    f"out of date in {output_dir}: {', '.join(stale + extra)}; run "
                    "`trellis blueprints backstage`",
                )
            err.print(f"[green]✓[/] {len(files)} files in {output_dir} are current")
            return
        output_dir.mkdir(parents=True, exist_ok=True)
        for name in stale:
            (output_dir / name).write_bytes(files[name])
        for name in extra:
            (output_dir / name).unlink()  # a blueprint that no longer exists
        err.print(
            f"[green]✓[/] {len(files)} files in {output_dir} ({len(stale)} written, "
            f"{len(extra)} removed)",
            highlight=False,
        )


def _answers(pairs: list[str], data_file: Path | None) -> dict[str, object]:
    answers: dict[str, object] = {}
    if data_file is not None:
        try:
            loaded = yaml.safe_load(data_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read answers from {data_file}: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{data_file} must hold a mapping of question: answer")
        answers.update(loaded or {})
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--data takes KEY=VALUE, got {pair!r}")
        answers[key.strip()] = value
    return answers


def _warn_failed_clusters(snapshot: Snapshot) -> None:
    for read in snapshot.clusters.values():
        if not read.ok:
            err.print(f"warning: cluster {read.cluster}: {read.error}", markup=False)


def _write(data: bytes, output: Path | None) -> None:
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        output.write_bytes(data)


# --- blueprint updates: exit 1 on any error (2 means "an update exists" for check-update) ---


@contextmanager
def _one_line_errors() -> Iterator[None]:
    from rich.text import Text

    try:
        yield
    except TrellisError as exc:
        message = " ".join(str(exc).split())
        err.print(Text.assemble(("error: ", "bold red"), message), soft_wrap=True)
        raise typer.Exit(1) from exc


@app.command(
    "check-update",
    help="Say whether a newer blueprint version exists, and what it changes.\n\n"
    "Reads the blueprint, version and source the repository records (.copier-answers.yml), "
    "then the source's releases (each blueprint's version and changelog, read from the tree; "
    "git tags are not needed) and its changelog.\n\n"
    "Exit codes: 0 up to date, 2 a newer version exists, 1 an error (one line on stderr), "
    "including a source with no release at all.",
)
def check_update_command(
    repo: Annotated[
        str,
        typer.Argument(
            help="A generated repository: its checkout, or the http(s) base URL of its raw "
            "files, e.g. a raw.githubusercontent.com/OWNER/REPO/BRANCH URL."
        ),
    ] = ".",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of text.")
    ] = False,
) -> None:
    """Say whether a newer blueprint version exists, and what it changes."""
    import json

    from trellis.cli.update_report import print_status
    from trellis.services.updates import check_update

    with _one_line_errors():
        status = check_update(repo)
    if as_json:
        typer.echo(json.dumps(status.as_json(), indent=2))
    else:
        print_status(Console(), status)
    if status.behind is None:
        raise typer.Exit(1)
    raise typer.Exit(0 if status.up_to_date else 2)


@app.command(
    "update",
    help="Move a generated repository to a newer blueprint version (copier update).\n\n"
    "Your edits are kept: Copier merges the blueprint's changes into them; review with "
    "`git diff` and commit. Where it cannot merge, it leaves conflict markers: those files are "
    "listed and the command exits 1 until you resolve them (edit, `git add`, commit). A tree "
    "with uncommitted changes is refused.\n\n"
    "Exit codes: 0 updated or already current, 1 conflicts or an error.",
)
def update_command(
    repo: Annotated[
        Path, typer.Argument(help="The generated repository's checkout (a clean git tree).")
    ] = Path(),
    to: Annotated[
        str | None,
        typer.Option(help="Blueprint release to move to; default: the newest release."),
    ] = None,
) -> None:
    """Move a generated repository to a newer blueprint version (copier update)."""
    from trellis.cli.update_report import print_result
    from trellis.services.updates import update

    with _one_line_errors(), err.status(f"Updating {repo} with copier update ..."):
        result = update(repo, to)
    print_result(Console(), result)
    raise typer.Exit(1 if result.conflicts else 0)


@app.command(
    help="Golden signals of an entity's model servers, and its training history.\n\n"
    "ENTITY_REF is a model (resource:default/fraud-detector) or one of its servers "
    "(component:default/fraud-detector-eu-west-1). Reads the registry, the clusters and "
    "Prometheus once, like `trellis catalog` (no server needed), and prints a line per signal "
    "with a sparkline and the current value.\n\n"
    "Exit codes: 0 shown, 1 an error (an unknown entity, a bad range), 3 a source could not "
    "be read (what depends on it is marked unavailable).",
)
def observe(
    entity_ref: Annotated[str, typer.Argument(help="resource:NS/NAME or component:NS/NAME.")],
    range_: Annotated[str, typer.Option("--range", help="How far back: 30m, 6h, 7d.")] = "1h",
    step: Annotated[
        str | None, typer.Option(help="Between points, e.g. 1m; default: the range / 60.")
    ] = None,
) -> None:
    """Golden signals of an entity's model servers, and its training history."""
    from trellis.app import build_observer, build_registry, catalog_options, read_once
    from trellis.catalog import build_catalog
    from trellis.cli.observe_report import print_page
    from trellis.services.observability import NOT_CONFIGURED, find_target

    with _handle_errors():
        settings = _settings()
        _logging("warning", settings)
        registry = build_registry(settings)
        observer = build_observer(settings, registry=registry)
        try:
            window = observer.window(range_, step, None)
            snapshot = read_once(settings, registry)
            _warn_failed_clusters(snapshot)
            catalog = build_catalog(snapshot, catalog_options(settings))
            page = observer.page(entity_ref, find_target(entity_ref, catalog.targets), window)
        finally:
            observer.close()
            registry.close()
        print_page(Console(), page)
        down = [
            name
            for name, state in page["sources"].items()
            if state["status"] == "unavailable" and state["reason"] != NOT_CONFIGURED
        ]
        if down:
            raise typer.Exit(EXIT_SOURCE)


@app.command(
    help="Scorecards of one entity, or how many entities reached each level.\n\n"
    "Reads the registry, the clusters, Prometheus and the generated repositories once (no "
    "server needed), runs every check of scorecards/*.yaml and prints the same answer as "
    "GET /api/scorecards[/NS/KIND/NAME]. Without ENTITY_REF it prints the fleet's levels "
    "by owner.\n\n"
    "Exit codes: 0 shown, 1 an error (an unknown entity, a bad definition), 3 a source could "
    "not be read (the checks that depend on it are unknown, not failed).",
)
def score(
    entity_ref: Annotated[
        str | None,
        typer.Argument(help="resource:NS/NAME, component:NS/NAME; default: the whole fleet."),
    ] = None,
    format_: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="table for people, json for tools.")
    ] = OutputFormat.TABLE,
) -> None:
    """Scorecards of one entity, or how many entities reached each level."""
    from tempfile import TemporaryDirectory

    from trellis.app import (
        build_registry,
        build_scaffolder,
        build_scorer,
        catalog_options,
        read_once,
    )
    from trellis.cli.score_report import print_entity, print_fleet
    from trellis.entity_refs import parse_ref, stringify_ref
    from trellis.services.catalog_refresh import build_document
    from trellis.services.scoring.pipeline import OneRead

    with _handle_errors():
        settings = _settings()
        _logging("warning", settings)
        ref = None
        if entity_ref is not None:
            try:
                ref = stringify_ref(*parse_ref(entity_ref))
            except ValueError as exc:
                raise ConfigError(str(exc)) from exc
        registry = build_registry(settings)
        try:
            scaffolder = build_scaffolder(settings)
        except ConfigError as exc:
            err.print(f"warning: blueprint facts are unknown: {exc}", markup=False)
            scaffolder = None
        # Results go to a scratch store: a one-off run must not overwrite the server's.
        with TemporaryDirectory(prefix="trellis-score-") as scratch:
            scratch_settings = settings.model_copy(
                update={
                    "scorecards": settings.scorecards.model_copy(
                        update={"database_url": SecretStr(f"sqlite:///{scratch}/scorecards.db")}
                    )
                }
            )
            try:
                snapshot = read_once(settings, registry)
                _warn_failed_clusters(snapshot)
                document = build_document(snapshot, catalog_options(settings))
                scorer = build_scorer(
                    scratch_settings, OneRead(registry, document, snapshot), scaffolder
                )
                try:
                    run = scorer.run_once()
                    report = (
                        scorer.queries.entity_report(ref) if ref else scorer.queries.fleet_report()
                    )
                finally:
                    scorer.stop()
            finally:
                registry.close()
                if scaffolder is not None:
                    scaffolder.close()
        if format_ is OutputFormat.JSON:
            typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
        elif ref:
            print_entity(Console(), report)
        else:
            print_fleet(Console(), report)
        for source, reason in run.unavailable.items():
            err.print(f"warning: {source} facts are unknown: {reason}", markup=False)
        if run.unavailable:
            raise typer.Exit(EXIT_SOURCE)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    command: Callable[..., object] = typer.main.get_command(app)
    command(args=argv, prog_name="trellis")
