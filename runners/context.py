"""Shared CLI state: the store URL and opening the store once per command."""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from tracker.eventstore.store import EventStore
from tracker.projections.read_model import fold


@dataclass
class AppContext:
    db_url: str | None
    _store: EventStore | None = field(default=None, repr=False)
    _current: bool = field(default=False, repr=False)

    def store(self, *, create: bool = False) -> EventStore:
        """The store as it is (for commands that only append or check the log). Only a writer passes
        `create`: a reader pointed at a store that does not exist is refused, and nothing is made."""
        if self._store is None:
            self._store = EventStore.open(self.db_url, create=create)
        return self._store

    def current_store(self, *, create: bool = False) -> EventStore:
        """The store with its read model brought up to the log once, for commands that read it.

        The one write a reading command makes, and only to derived state: another host's import or run
        may have appended since the read model last caught up.
        """
        store = self.store(create=create)
        if not self._current:
            fold.catch_up(store)
            self._current = True
        return store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


pass_app = click.make_pass_decorator(AppContext)
