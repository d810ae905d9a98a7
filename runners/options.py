"""Options that several commands share, spelled once: one vocabulary across the CLI.

Conventions (the README's configuration table lists them): arguments name what a command reads (a tree,
plan files, the campaigns it reports on); `--campaign` names the campaign a command writes into;
`--baseline` the campaign a rerun is measured against; `--prices` a price table; `--mlflow/--no-mlflow`
whether a command also projects into MLflow, `--mlflow-uri` where; `--json` JSON on stdout.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from tracker.domain.outcomes import LEVELS
from tracker.domain.vocabulary import FAILURE_CATEGORIES
from tracker.isobench.discovery import KNOWN_REPOS

F = TypeVar("F", bound=Callable[..., Any])


def json_option(func: F) -> F:
    """The `--json` flag every reporting command shares."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table.")(func)


mlflow_uri_option = click.option(
    "--mlflow-uri", default=None, metavar="URI",
    help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else the embedded store mlruns/mlflow.db).")


def mlflow_options(what: str) -> Callable[[F], F]:
    """`--mlflow/--no-mlflow` (default on) and `--mlflow-uri`, for a command that also writes MLflow."""
    def decorate(func: F) -> F:
        func = mlflow_uri_option(func)
        return click.option("--mlflow/--no-mlflow", "to_mlflow", default=True, show_default=True,
                            help=f"Also {what} (later: `track sync`).")(func)
    return decorate


prices_option = click.option(
    "--prices", "prices_path", default=None, metavar="FILE", type=click.Path(exists=True, dir_okay=False),
    help="Price table JSON overriding the packaged one (tracker/data/prices.json).")


def repo_option(multiple: bool = False, help: str = "Only this repo.") -> Callable[[F], F]:
    """`--repo`, checked against the repos ISO-Bench has (a typo is an error, never an empty result)."""
    return click.option("--repo", "repos" if multiple else "repo", multiple=multiple, default=None,
                        type=click.Choice(KNOWN_REPOS), help=help + (" (repeatable)" if multiple else ""))


level_option = click.option(
    "--level", type=click.Choice(LEVELS), default="agent", show_default=True,
    help="Outcome level that counts as success: agent finished, patch, tests passed, faster.")

category_choice = click.Choice(FAILURE_CATEGORIES)
out_folder = click.Path(file_okay=False, path_type=Path)
