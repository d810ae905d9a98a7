"""Where things live by default: the embedded store under ./mlruns, overridable by env or flags.

MLflow 3 dropped the plain-file backend as a default; the embedded store is its SQLite backend at
`mlruns/mlflow.db` with artifacts under `mlruns/artifacts/`, so a laptop needs no server.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DB_URL = "sqlite:///mlruns/events.db"
DB_URL_ENV = "TRACK_DB_URL"
DEFAULT_MLFLOW_DB = Path("mlruns") / "mlflow.db"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"


def resolve_db_url(explicit: str | None = None) -> str:
    """The store URL: the explicit flag, else $TRACK_DB_URL, else the embedded SQLite file."""
    return explicit or os.environ.get(DB_URL_ENV) or DEFAULT_DB_URL


def resolve_tracking_uri(explicit: str | None = None) -> str:
    """The tracking URI: the flag, else $MLFLOW_TRACKING_URI, else the embedded SQLite store."""
    uri = explicit or os.environ.get(TRACKING_URI_ENV)
    if uri:
        return uri
    DEFAULT_MLFLOW_DB.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{DEFAULT_MLFLOW_DB.resolve()}"
