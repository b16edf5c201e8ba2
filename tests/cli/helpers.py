"""Running the `alps` command in-process (click's CliRunner) for the CLI tests."""

from __future__ import annotations

import pathlib

from click.testing import CliRunner, Result

from cli.main import alps


def run(*args: str | pathlib.Path) -> Result:
    """Invoke `alps ARGS`; exceptions other than SystemExit propagate (a traceback would
    fail the test)."""
    return CliRunner().invoke(alps, [str(a) for a in args], catch_exceptions=False)


def ok(*args: str | pathlib.Path) -> str:
    result = run(*args)
    assert result.exit_code == 0, (args, result.output)
    return result.stdout


def one_line_error(result: Result) -> str:
    """The single stderr line of a failed command (asserts the shape)."""
    assert result.exit_code != 0, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]
