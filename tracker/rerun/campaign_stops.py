"""Campaign-wide stops: what one runner of a campaign records as `campaign.stopped`, every runner obeys.

A quota or key error, a broken setup or the budget is the campaign's, not one host's: the runner that
meets it appends the stop at once, and every other runner of the campaign (threads, processes, hosts on one
PostgreSQL store) reads it within a second (and before it takes each next item) and stops the same way.
A Ctrl-C stops only the runner it was given to.
"""

from __future__ import annotations

import time

from tracker.domain.events import decode
from tracker.domain.run_events import CampaignStopped
from tracker.domain.streams import campaign_stream
from tracker.eventstore.store import EventStore

OBEYED = frozenset({"quota_exceeded", "invalid_api_key", "harness_error", "budget"})
"""What another runner's stop must stop this one for: the categories after which every item fails, and the budget."""


class CampaignStops:
    """The stops other runners of the campaign recorded since this one started."""

    def __init__(self, store: EventStore, campaign: str, run_id: str, every_s: float = 1.0) -> None:
        self.store = store
        self.stream = campaign_stream(campaign)
        self.run_id = run_id
        self.every_s = every_s
        self.version = store.stream_version(self.stream)
        self._next = 0.0

    def foreign(self, force: bool = False) -> CampaignStopped | None:
        """A stop another runner recorded that this one must obey (polled at most every `every_s`)."""
        now = time.monotonic()
        if not force and now < self._next:
            return None
        self._next = now + self.every_s
        found = None
        for event in self.store.read_stream(self.stream, self.version + 1):
            self.version = event.stream_version
            if event.event_type != CampaignStopped.TYPE or event.metadata.get("correlation_id") == self.run_id:
                continue
            stop = decode(event)
            assert isinstance(stop, CampaignStopped)
            if found is None and (stop.category in OBEYED or stop.reason == "budget"):
                found = stop
        return found
