"""A copied or moved embedded tracking store (`mlruns/`) works in place.

MLflow keeps absolute artifact locations in its SQLite store (`experiments.artifact_location`,
`runs.artifact_uri`, the `mlflow.artifactLocation` trace tag). Copy `mlruns/` elsewhere and the copy still
writes new artifacts into, and reads old ones from, the original folder: gone when that folder is, silently
mixed when it is not. MLflow has no relative locations (a relative one resolves against the working
directory), so before `track sync` and `track ui` the locations of the experiments this tool made are
rewritten to the store's own `artifacts/` folder. Only locations of the shape `artifact_location` gives
(`<folder>/artifacts/<experiment name>`) are touched: an experiment someone pointed elsewhere stays as it is.
"""

from __future__ import annotations

import sqlite3

from tracker.projections.mlflow.client import artifact_location, is_sqlite, sqlite_path


def relocate_artifacts(tracking_uri: str) -> int:
    """Point this tool's experiments (and their runs and traces) at the store's own artifact folder; returns
    how many experiments had to move. Nothing happens to a store that is where it was made."""
    if not is_sqlite(tracking_uri):
        return 0
    db = sqlite_path(tracking_uri)
    if not db.is_file():
        return 0
    with sqlite3.connect(db, timeout=30) as connection:
        if not _has_table(connection, "experiments"):
            return 0
        moved = 0
        for experiment_id, name, location in connection.execute(
                "SELECT experiment_id, name, artifact_location FROM experiments").fetchall():
            wanted = artifact_location(tracking_uri, name)
            if wanted and location != wanted and _made_here(location, name):
                _move(connection, experiment_id, location, wanted)
                moved += 1
        return moved


def _made_here(location: str | None, name: str) -> bool:
    """Whether a location has the shape this tool gives an experiment (in some other folder)."""
    return bool(location) and str(location).startswith("file://") and str(location).endswith(
        "/artifacts/" + name.replace("/", "_"))


def _move(connection: sqlite3.Connection, experiment_id: int, old: str, new: str) -> None:
    connection.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?", (new, experiment_id))
    cut = len(old) + 1
    connection.execute("UPDATE runs SET artifact_uri = ? || substr(artifact_uri, ?) "
                       "WHERE experiment_id = ? AND substr(artifact_uri, 1, ?) = ?",
                       (new, cut, experiment_id, len(old), old))
    if _has_table(connection, "trace_tags") and _has_table(connection, "trace_info"):
        connection.execute("UPDATE trace_tags SET value = ? || substr(value, ?) "
                           "WHERE key = 'mlflow.artifactLocation' AND substr(value, 1, ?) = ? AND request_id IN "
                           "(SELECT request_id FROM trace_info WHERE experiment_id = ?)",
                           (new, cut, len(old), old, experiment_id))


def _has_table(connection: sqlite3.Connection, name: str) -> bool:
    return connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() \
        is not None

