"""Running git with a timeout, never prompting, with failures as ``SourceUnavailable``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from trellis.errors import ConfigError, SourceUnavailable
from trellis.redact import scrub_text

__all__ = ["GIT_TIMEOUT_SECONDS", "git", "git_url"]

GIT_TIMEOUT_SECONDS = 60.0
#: Copier's shorthands for hosted repositories (``gh:acme/trellis``).
_ALIASES = {"gh:": "https://github.com/", "gl:": "https://gitlab.com/"}


def git_url(source: str) -> str:
    """The URL git understands for a Copier source (Copier's ``gh:``/``gl:``/``git+`` forms).

    A source read from a repository's answers file is untrusted: one that git could take for
    an option (``--upload-pack=...``) is refused.
    """
    if source.startswith("-"):
        raise ConfigError(f"{source!r} is not a git repository URL")
    for alias, url in _ALIASES.items():
        if source.startswith(alias):
            return url + source.removeprefix(alias)
    return source.removeprefix("git+")


def git(
    *args: str,
    cwd: Path | None = None,
    timeout: float = GIT_TIMEOUT_SECONDS,
    ok_codes: tuple[int, ...] = (0,),
    what: str = "git",
) -> str:
    """Run ``git args`` and return its output; a failure or a timeout names the command.

    Git never prompts for credentials here (a private repository would hang a server); it
    fails instead. ``what`` names the upstream in the error (e.g. the blueprint source).
    """
    executable = shutil.which("git")
    if executable is None:
        raise ConfigError("git is not installed; install git to read blueprint versions")
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "LC_ALL": "C"}
    command = scrub_text(" ".join(["git", *args]))  # no credentials in messages
    try:
        result = subprocess.run(  # noqa: S603 - fixed executable, arguments are not shell-parsed
            [executable, *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise SourceUnavailable(what, f"`{command}` took longer than {timeout:g} s") from exc
    if result.returncode not in ok_codes:
        detail = scrub_text(" ".join(result.stderr.split()))[:300]
        detail = detail or f"exit code {result.returncode}"
        raise SourceUnavailable(what, f"`{command}` failed: {detail}")
    return result.stdout
