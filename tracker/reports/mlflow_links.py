"""Links from a report's commit rows to the commit's runs in the MLflow UI.

The attempt projection puts every run of a campaign in experiment `<benchmark>/<agent>/<model>` with the
full commit sha as param `commit` (`tracker.projections.mlflow.mapping`), so one link per commit opens the
experiment's runs list filtered on it: the original and the rerun attempts side by side. MLflow 3's UI
reads the filter from the `searchFilter` query parameter of its hash route
(`#/experiments/<id>/runs?searchFilter=params.commit%20%3D%20'<sha>'`). Links need the UI's http(s) address
and the experiments' ids (looked up once by name); without them a report has no links at all, never a
broken one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from tracker.errors import TrackerError
from tracker.projections.mlflow.mapping import experiment_name
from tracker.settings import TRACKING_URI_ENV

SIDES = ("baseline", "rerun")


class LinksUnavailable(TrackerError):
    """The MLflow server did not say where the campaigns' experiments are (the report is written without links)."""


def is_http(url: str | None) -> bool:
    return bool(url) and urlsplit(str(url)).scheme in ("http", "https") and bool(urlsplit(str(url)).netloc)


def ui_address(explicit: str | None, tracking_uri: str | None = None) -> str | None:
    """The MLflow UI to link to: `explicit` (must be http(s)), else the tracking URI or $MLFLOW_TRACKING_URI
    when it is an http(s) server; None (no links) for an embedded store or nothing configured."""
    if explicit:
        if not is_http(explicit):
            raise TrackerError(f"--mlflow-url {explicit!r} is not an http(s) address: give the MLflow UI's URL, "
                               "e.g. http://mlflow.example:5000")
        return _public(explicit)
    for candidate in (tracking_uri, os.environ.get(TRACKING_URI_ENV)):
        if candidate and is_http(candidate):
            return _public(candidate)
    return None


def _public(url: str) -> str:
    """The address without user and password: a report is shared, the server's credentials are not."""
    parts = urlsplit(url)
    host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=host)).rstrip("/")


def commit_runs_url(ui: str, experiment_id: str, commit: str) -> str:
    """The experiment's runs list filtered on one commit (MLflow's search syntax, URL-encoded)."""
    search = quote(f"params.commit = '{commit}'", safe="'")
    return f"{ui.rstrip('/')}/#/experiments/{quote(str(experiment_id), safe='')}/runs?searchFilter={search}"


@dataclass(frozen=True)
class RunLinks:
    """Where each side's runs are: the UI address and the experiment id of the baseline and the rerun."""

    ui: str
    experiments: dict[str, str] = field(default_factory=dict)

    def for_commit(self, commit: str, sides: tuple[str, ...] = SIDES) -> list[tuple[str, str]]:
        """(label, url) per distinct experiment holding the commit: one link when both campaigns share it."""
        seen: dict[str, str] = {}
        for side in sides:
            experiment = self.experiments.get(side)
            if experiment is not None and experiment not in seen:
                seen[experiment] = side
        label = {1: lambda _: "runs"}.get(len(seen), lambda side: f"{side} runs")
        return [(label(side), commit_runs_url(self.ui, experiment, commit)) for experiment, side in seen.items()]


def resolve(baseline: dict[str, Any], rerun: dict[str, Any], ui: str) -> RunLinks:
    """Look the campaigns' experiments up on the server at `ui` (one call each); an experiment that does not
    exist yet (campaign not synced) has no links. LinksUnavailable when the server cannot be asked."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=ui)
    experiments: dict[str, str] = {}
    try:
        for side, campaign in zip(SIDES, (baseline, rerun), strict=True):
            found = client.get_experiment_by_name(experiment_name(campaign))
            if found is not None:
                experiments[side] = str(found.experiment_id)
    except (MlflowException, OSError) as exc:
        raise LinksUnavailable(f"no MLflow links: {ui} did not answer ({_first_line(exc)})") from None
    except Exception as exc:  # requests' connection errors, without importing requests
        if type(exc).__module__.split(".")[0] not in ("requests", "urllib3"):
            raise
        raise LinksUnavailable(f"no MLflow links: could not reach {ui} ({type(exc).__name__})") from None
    return RunLinks(ui, experiments)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
