"""The ``trellis`` command: the same operations as the API, from a terminal.

Errors from Trellis become one message on stderr and an exit code, in one place
(``_errors``): 2 for configuration, 3 for an upstream that could not be read, 1 otherwise.
What the commands build from the configuration comes from ``cli.wiring``.

Importing this module (as ``trellis --help`` does) loads only Typer, Rich and Trellis's
light modules: each command imports what it needs when it runs, so no command pays for
the clients, stores and renderers of the others.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from trellis.cli import wiring
from trellis.errors import AnswerError, ConfigError, SourceUnavailable, TrellisError

if TYPE_CHECKING:
    from pydantic import ValidationError

    from trellis.model import Question

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


def _exit_code(exc: TrellisError) -> int:
    """Each error's exit code; any other ``TrellisError`` exits 1."""
    # Imported here: the scorecard definitions bring jsonschema, which only scoring needs.
    from trellis.scorecards import DefinitionError

    codes: tuple[tuple[type[TrellisError], int], ...] = (
        (ConfigError, EXIT_CONFIG),
        (AnswerError, EXIT_CONFIG),
        (DefinitionError, EXIT_CONFIG),
        (SourceUnavailable, EXIT_SOURCE),
    )
    return next((code for kind, code in codes if isinstance(exc, kind)), 1)


@contextmanager
def _errors(*, updates: bool = False) -> Iterator[None]:
    """Map the error tree to a message on stderr and an exit code, for every command.

    The update commands (``updates``) exit 1 on every error, as 2 means "an update exists"
    to ``check-update``, and print the message on one line.
    """
    try:
        yield
    except TrellisError as exc:
        if updates:
            _fail(1, " ".join(str(exc).split()))
        _fail(_exit_code(exc), str(exc))
    except Exception as exc:
        settings_error = _settings_error(exc)
        if updates or settings_error is None:
            raise
        _fail(EXIT_CONFIG, "invalid configuration:\n" + _settings_errors(settings_error))


def _settings_error(exc: Exception) -> ValidationError | None:
    """``exc`` when it is pydantic's (settings that cannot work), else None.

    Pydantic is imported only once an error is seen: a command that never loads the
    settings (``--help``) does not load it.
    """
    from pydantic import ValidationError

    return exc if isinstance(exc, ValidationError) else None


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


def _warn(message: str) -> None:
    err.print(message, markup=False)


def _version(value: bool) -> None:
    if value:
        from trellis import __version__

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
    with _errors():
        wiring.serve(host, port)


@app.command()
def catalog(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Read the registry (and clusters) once and print the catalog entities as YAML."""
    with _errors():
        document = wiring.read_catalog(_warn)
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
    from trellis.yaml_text import dump

    with _errors():
        text = dump(wiring.openapi_document(), width=100)
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
    with _errors():
        wiring.run_demo(retrain=retrain, serve_after=serve_after)


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
    """Generate a new repository from a blueprint, updatable later.

    Copier renders it, or cookiecutter for a registered cookiecutter template.
    """
    with _errors():
        settings = wiring.load_settings()
        answers = _answers(data or [], data_file)
        if destination.exists() and any(destination.iterdir()):
            raise ConfigError(f"{destination} exists and is not empty")
        wiring.scaffolder(settings).new(
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
    with _errors():
        for blueprint in wiring.scaffolder(wiring.load_settings()).blueprints():
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
    with _errors():
        files = wiring.scaffolder(wiring.load_settings()).template_files()
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
        import yaml

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


def _write(data: bytes, output: Path | None) -> None:
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        output.write_bytes(data)


# --- blueprint updates: exit 1 on any error (2 means "an update exists" for check-update) ---


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

    with _errors(updates=True):
        status = wiring.check_update(repo)
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
    "A repository recorded in .cruft.json (a cookiecutter template) is updated the same way: "
    "both versions are rendered with the recorded answers and the difference is merged "
    "three ways; --data answers questions the new version adds.\n\n"
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
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data",
            "-d",
            help="For a cookiecutter repository (.cruft.json): an answer to a question the "
            "new version adds, or a changed answer, KEY=VALUE; repeat for several.",
        ),
    ] = None,
) -> None:
    """Move a generated repository to a newer blueprint version (copier update)."""
    from trellis.cli.update_report import print_result

    ask = _ask if sys.stdin.isatty() else None
    # No spinner while a question may be put to the person at the terminal.
    working = err.status(f"Updating {repo} ...") if ask is None else nullcontext()
    with _errors(updates=True), working:
        result = wiring.update(repo, to, _answers(data or [], None), ask)
    print_result(Console(), result)
    raise typer.Exit(1 if result.conflicts else 0)


def _ask(question: Question) -> object:
    """Put a question the new template version adds to the person at the terminal."""
    label = f"{question.name}" + (f" ({question.help})" if question.help else "")
    if question.choices:
        label += f" [{'/'.join(question.choices)}]"
    default = question.default if not question.computed_default else None
    answer: object = typer.prompt(label, default=default, err=True)
    return answer


@app.command(
    help="Record that an existing repository was generated from a cookiecutter template.\n\n"
    "Writes the repository's .cruft.json (template, commit, checkout, context) for the "
    "template's VERSION and the answers it was generated with (--data; the template's defaults "
    "for the rest), so `trellis update` and cruft can update it. Lists the files that differ "
    "from that version's render: local edits, which updates keep.\n\n"
    "Exit codes: 0 recorded, 1 an error.",
)
def adopt(
    repo: Annotated[Path, typer.Argument(help="The repository's checkout.")],
    template: Annotated[
        str,
        typer.Option(help="A registered cookiecutter blueprint's name, or a template's git URL."),
    ],
    version: Annotated[str, typer.Option(help="The template's version tag it came from.")],
    data: Annotated[
        list[str] | None,
        typer.Option("--data", "-d", help="An answer it was generated with, KEY=VALUE."),
    ] = None,
    data_file: Annotated[
        Path | None, typer.Option(help="A YAML file of answers (--data wins over it).")
    ] = None,
) -> None:
    """Record that an existing repository was generated from a cookiecutter template."""
    with _errors(updates=True):
        adopted = wiring.adopt(repo, template, version, _answers(data or [], data_file))
    err.print(
        f"[green]✓[/] {adopted.location}: recorded {adopted.blueprint} {adopted.version} in "
        ".cruft.json",
        highlight=False,
    )
    if adopted.differing:
        err.print(
            f"  {len(adopted.differing)} files differ from its render (kept as local edits): "
            + ", ".join(adopted.differing[:10])
            + (" ..." if len(adopted.differing) > 10 else ""),
            highlight=False,
            markup=False,
        )


@app.command(
    help="Golden signals of an entity's model servers, and its training history.\n\n"
    "ENTITY_REF is a model (resource:default/fraud-detector) or one of its servers "
    "(component:default/fraud-detector-eu-west-1). Reads the registry, the clusters and "
    "Prometheus once, like `trellis catalog` (no server needed), and prints a line per signal "
    "with a sparkline and the current value.\n\n"
    "Exit codes: 0 shown, 1 an error (an unknown entity, a bad range), 2 a bad option or a "
    "setting that cannot work, 3 a source could not be read (what depends on it is marked "
    "unavailable).",
)
def observe(
    entity_ref: Annotated[str, typer.Argument(help="resource:NS/NAME or component:NS/NAME.")],
    range_: Annotated[str, typer.Option("--range", help="How far back: 30m, 6h, 7d.")] = "1h",
    step: Annotated[
        str | None, typer.Option(help="Between points, e.g. 1m; default: the range / 60.")
    ] = None,
) -> None:
    """Golden signals of an entity's model servers, and its training history."""
    from trellis.cli.observe_report import print_page
    from trellis.services.observability import NOT_CONFIGURED

    with _errors():
        page = wiring.observe_once(entity_ref, range_, step, _warn)
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
    "GET /api/scorecards/NS/KIND/NAME. Without ENTITY_REF it prints the fleet's levels by "
    "owner, as GET /api/scorecards does.\n\n"
    "Exit codes: 0 shown, 1 an error (an unknown entity), 2 a bad option, a malformed "
    "ENTITY_REF, or a setting or scorecard definition that cannot work, 3 a source could not "
    "be read (the checks that depend on it are unknown, not failed).",
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
    from trellis.cli.score_report import print_entity, print_fleet

    with _errors():
        scored = wiring.score_once(entity_ref, _warn)
        report = scored.report
        if format_ is OutputFormat.JSON:
            typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
        elif scored.ref:
            print_entity(Console(), report)
        else:
            print_fleet(Console(), report)
        for source, reason in scored.unavailable.items():
            _warn(f"warning: {source} facts are unknown: {reason}")
        if scored.unavailable:
            raise typer.Exit(EXIT_SOURCE)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    command: Callable[..., object] = typer.main.get_command(app)
    command(args=argv, prog_name="trellis")
