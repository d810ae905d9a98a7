"""Shared CLI state: the store URL and opening the store once per command."""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from tracker.eventstore.store import EventStore


@dataclass
class AppContext:
    db_url: str | None
    _store: EventStore | None = field(default=None, repr=False)

    def store(self) -> EventStore:
        if self._store is None:
            self._store = EventStore.open(self.db_url)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


pass_app = click.make_pass_decorator(AppContext)
