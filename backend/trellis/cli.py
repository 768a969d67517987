"""The ``trellis`` command: the same operations as the API, from a terminal.

Errors from Trellis become one line on stderr and an exit code, in one place
(``_handle_errors``): 2 for configuration, 3 for an upstream that could not be read.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console

from trellis import __version__
from trellis.config import Settings
from trellis.errors import ConfigError, SourceUnavailable, TrellisError
from trellis.sources.blueprints import AnswerError

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


@contextmanager
def _handle_errors() -> Iterator[None]:
    try:
        yield
    except ValidationError as exc:
        _fail(EXIT_CONFIG, "invalid configuration:\n" + _settings_errors(exc))
    except (ConfigError, AnswerError) as exc:
        _fail(EXIT_CONFIG, str(exc))
    except SourceUnavailable as exc:
        _fail(EXIT_SOURCE, str(exc))
    except TrellisError as exc:
        _fail(1, str(exc))


def _fail(code: int, message: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _settings_errors(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        key = "TRELLIS_" + "__".join(str(p) for p in error["loc"]).upper()
        lines.append(f"  {key}: {error['msg']}")
    return "\n".join(lines)


def _settings() -> Settings:
    return Settings()


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


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

    _logging(settings.log_level)
    # The access log would record query strings, where a catalog token may ride: off.
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        workers=1,
        access_log=False,
        log_level=settings.log_level,
    )


@app.command()
def catalog(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Read the registry once and print the catalog entities as YAML (no server)."""
    from trellis.app import build_registry, catalog_options
    from trellis.service import build_document

    with _handle_errors():
        settings = _settings()
        _logging("warning")
        document = build_document(build_registry(settings).read(), catalog_options(settings))
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
        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
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
        str | None, typer.Option(help="Blueprint version (git tag) [TRELLIS_BLUEPRINTS__VCS_REF].")
    ] = None,
) -> None:
    """Generate a new repository from a blueprint (Copier renders it; updatable later)."""
    from trellis.app import build_blueprints

    with _handle_errors():
        settings = _settings()
        answers = _answers(data or [], data_file)
        source = build_blueprints(settings)
        if destination.exists() and any(destination.iterdir()):
            raise ConfigError(f"{destination} exists and is not empty")
        source.render(
            blueprint,
            destination,
            answers,
            defaults=defaults,
            vcs_ref=vcs_ref or settings.blueprints.vcs_ref,
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


def _answers(pairs: list[str], data_file: Path | None) -> dict[str, object]:
    answers: dict[str, object] = {}
    if data_file is not None:
        try:
            loaded = yaml.safe_load(data_file.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
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


def _write(data: bytes, output: Path | None) -> None:
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        output.write_bytes(data)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    command: Callable[..., object] = typer.main.get_command(app)
    command(args=argv, prog_name="trellis")
