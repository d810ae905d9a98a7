"""Who runs which commit: a lease per campaign and commit, kept in the event store itself.

The claim stream `claim:<campaign>:<commit>` is a small state machine: `claim.acquired` (holder,
lease), `claim.renewed` (heartbeat), `claim.released` (outcome). Taking a commit is an append at
the version just read, so when two runners (threads, processes, hosts sharing PostgreSQL) race, the
store's optimistic concurrency lets exactly one win. A holder that stops renewing (its host died)
loses the commit when its lease runs out; on the same host a dead holder is seen at once (its pid is
gone, or belongs to a newer process), so a `kill -9` of the runner is picked up by the next
`track run` without waiting for the lease.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from tracker.domain.events import DomainEvent, JsonDict, RecordedEvent, decode
from tracker.domain.run_events import ClaimAcquired, ClaimReleased, ClaimRenewed
from tracker.domain.streams import attempt_stream, claim_stream
from tracker.domain.vocabulary import HARNESS
from tracker.errors import ConcurrencyError
from tracker.eventstore.store import EventStore
from tracker.rerun.planning import PlanItem

TS_FORMAT = "%Y-%m-%d_%H-%M-%S"
NOT_AN_ATTEMPT = HARNESS
"""The release outcome of an attempt whose setup was broken: the model never ran, so it is not counted."""


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def process_start(pid: int) -> str | None:
    """`<boot id>:<start ticks>` of a process: tells a live holder from a reused pid or a reboot."""
    stat = _read(f"/proc/{pid}/stat")
    boot = _read("/proc/sys/kernel/random/boot_id")
    if stat is None or boot is None:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return f"{boot.strip()}:{fields[19]}" if len(fields) > 19 else None


def pid_alive(pid: int, start: str | None) -> bool:
    """Whether the process `pid` that started at `start` still runs on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if start is None:
        return True
    now = process_start(pid)
    return now is None or now == start


@dataclass
class Holder:
    token: str
    host: str
    pid: int
    process_start: str | None
    lease_until: float
    attempt_stream: str
    run_timestamp: str
    child_pid: int | None = None


@dataclass
class ClaimState:
    """The fold of one claim stream."""

    version: int = 0
    holder: Holder | None = None
    acquisitions: int = 0
    uncounted: int = 0
    """Acquisitions that gave the model no run (released as `harness_error`): they use up no attempt."""
    succeeded: bool = False
    last_outcome: str | None = None
    last_run_timestamp: str | None = None
    history: list[JsonDict] = field(default_factory=list)


def _acquired(state: ClaimState, event: ClaimAcquired) -> None:
    """A new holder took the commit (whatever held it before is replaced)."""
    state.acquisitions += 1
    state.holder = Holder(event.token, event.host, event.pid, event.process_start, event.lease_until,
                          event.attempt_stream, event.run_timestamp)
    state.last_run_timestamp = event.run_timestamp


def _renewed(state: ClaimState, event: ClaimRenewed) -> None:
    """The current holder's heartbeat: its lease runs on; a heartbeat of a replaced holder is ignored."""
    if state.holder and state.holder.token == event.token:
        state.holder.lease_until = event.lease_until
        state.holder.child_pid = event.child_pid or state.holder.child_pid


def _released(state: ClaimState, event: ClaimReleased) -> None:
    """The current holder let go with an outcome; a release by a replaced holder is ignored."""
    if state.holder and state.holder.token == event.token:
        state.holder = None
        state.last_outcome = event.outcome
        state.succeeded = state.succeeded or event.outcome == "succeeded"
        state.uncounted += event.outcome == NOT_AN_ATTEMPT


_CLAIM_TYPES = frozenset({ClaimAcquired.TYPE, ClaimRenewed.TYPE, ClaimReleased.TYPE})
"""The event types that change a claim's state; any other event only advances the version."""


def _apply(state: ClaimState, event: DomainEvent) -> None:
    """Dispatch one decoded claim event to the state change it stands for."""
    if isinstance(event, ClaimAcquired):
        _acquired(state, event)
    elif isinstance(event, ClaimRenewed):
        _renewed(state, event)
    elif isinstance(event, ClaimReleased):
        _released(state, event)


def fold(events: Iterable[RecordedEvent]) -> ClaimState:
    """The state of one claim stream, from its events in order."""
    state = ClaimState()
    for event in events:
        state.version = event.stream_version
        if event.event_type in _CLAIM_TYPES:
            _apply(state, decode(event))
    return state


@dataclass
class Claim:
    """A claim this runner holds."""

    campaign: str
    item: PlanItem
    token: str
    version: int
    run_timestamp: str
    attempt_stream: str
    attempt_number: int
    lease_until: float
    replaced: Holder | None = None
    """The dead or expired holder this claim took over (its attempt must be marked abandoned)."""
    replaced_reason: str | None = None

    @property
    def stream(self) -> str:
        return claim_stream(self.campaign, self.item.commit)


@dataclass(frozen=True)
class Refusal:
    """Why a commit was not claimed: `succeeded`, `held` (live holder), `max_attempts`, `raced`."""

    reason: str
    detail: str = ""


class Claims:
    """Acquire, renew and release commit claims of one campaign for this process."""

    def __init__(self, store: EventStore, campaign: str, lease_s: float = 300.0, metadata: JsonDict | None = None):
        self.store = store
        self.campaign = campaign
        self.lease_s = lease_s
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.start = process_start(self.pid)
        self.metadata = metadata or {}
        self._lock = threading.Lock()
        """Heartbeats (main thread) and releases (workers) of one claim must not race on its version."""

    def state(self, commit: str) -> ClaimState:
        return fold(self.store.read_stream(claim_stream(self.campaign, commit)))

    def dead_reason(self, holder: Holder, now: float | None = None) -> str | None:
        """Why a holder no longer holds (None: it is alive and its lease runs)."""
        if holder.host == self.host and not pid_alive(holder.pid, holder.process_start):
            return f"runner pid {holder.pid} on {holder.host} is gone"
        if holder.lease_until < (now or self.store.now()):
            return f"lease of {holder.host} pid {holder.pid} expired"
        return None

    def acquire(self, item: PlanItem, max_attempts: int | None = None) -> Claim | Refusal:
        state = self.state(item.commit)
        if state.succeeded:
            return Refusal("succeeded")
        reason = None
        if state.holder is not None:
            reason = self.dead_reason(state.holder)
            if reason is None:
                return Refusal("held", f"{state.holder.host} pid {state.holder.pid}")
        if max_attempts is not None and state.acquisitions - state.uncounted >= max_attempts:
            return Refusal("max_attempts", f"{state.acquisitions - state.uncounted} attempts already")
        run_ts = _next_timestamp(state.last_run_timestamp)
        token = str(uuid.uuid4())
        lease_until = self.store.now() + self.lease_s
        stream = attempt_stream(self.campaign, item.repo, item.commit, run_ts)
        event = ClaimAcquired(
            campaign=self.campaign, repo=item.repo, commit=item.commit, item_id=item.item_id, token=token,
            host=self.host, pid=self.pid, process_start=self.start, lease_until=lease_until, attempt_stream=stream,
            run_timestamp=run_ts, replaces=state.holder.token if state.holder else None,
        )
        try:
            self.store.append(event_stream := claim_stream(self.campaign, item.commit),
                              [event.to_new_event(metadata=self.metadata)], expected_version=state.version)
        except ConcurrencyError:
            return Refusal("raced", event_stream)
        return Claim(self.campaign, item, token, state.version + 1, run_ts, stream, state.acquisitions + 1, lease_until,
                     state.holder, reason)

    def renew(self, claim: Claim, child_pid: int | None = None) -> bool:
        """Extend the lease; False when the claim was lost (taken over after it expired)."""
        lease_until = self.store.now() + self.lease_s
        event = ClaimRenewed(token=claim.token, lease_until=lease_until, child_pid=child_pid)
        if not self._append_held(claim, event):
            return False
        claim.lease_until = lease_until
        return True

    def release(self, claim: Claim, outcome: str, category: str | None = None) -> bool:
        return self._append_held(claim, ClaimReleased(token=claim.token, outcome=outcome, category=category))

    def _append_held(self, claim: Claim, event: DomainEvent) -> bool:
        """Append to a claim we hold, at its version; False when someone else took it meanwhile."""
        with self._lock:
            try:
                result = self.store.append(claim.stream, [event.to_new_event(metadata=self.metadata)],
                                           expected_version=claim.version)
            except ConcurrencyError:
                return False
            claim.version = result.stream_version
        return True


def _next_timestamp(previous: str | None) -> str:
    """Now as YYYY-MM-DD_HH-MM-SS, later than the commit's previous attempt (streams must not collide)."""
    now = datetime.now().replace(microsecond=0)
    if previous:
        try:
            last = datetime.strptime(previous, TS_FORMAT)
        except ValueError:
            last = None
        if last is not None and now <= last:
            now = last + timedelta(seconds=1)
    return now.strftime(TS_FORMAT)
