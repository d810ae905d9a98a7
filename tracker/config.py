"""Where things live by default: the embedded store under ./mlruns, overridable by env or flags."""

from __future__ import annotations

import os

DEFAULT_DB_URL = "sqlite:///mlruns/events.db"
DB_URL_ENV = "TRACK_DB_URL"


def resolve_db_url(explicit: str | None = None) -> str:
    """The store URL: the explicit flag, else $TRACK_DB_URL, else the embedded SQLite file."""
    return explicit or os.environ.get(DB_URL_ENV) or DEFAULT_DB_URL
