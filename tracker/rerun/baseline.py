"""What a campaign measured per attempt, straight from the SQL read model (with pre-commit and model)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from tracker.errors import UnknownCampaign
from tracker.eventstore.schema import attempts, campaigns
from tracker.eventstore.store import EventStore
from tracker.projections.read_model import fold


@dataclass(frozen=True)
class MeasuredAttempt:
    """One attempt of a campaign as the read model holds it."""

    repo: str
    item_id: str | None
    commit: str
    pre_commit: str | None
    run_timestamp: str | None
    status: str | None
    category: str
    model: str | None
    input_tokens: int | None
    cached_input_tokens: int | None
    output_tokens: int | None
    duration_s: float | None


def campaign_row(store: EventStore, name: str) -> dict[str, object]:
    """The campaign's read-model row; a clear error when there is none."""
    fold.catch_up(store)
    with store.engine.connect() as connection:
        row = connection.execute(select(campaigns).where(campaigns.c.name == name)).mappings().first()
    if row is None:
        raise UnknownCampaign(name)
    return dict(row)


def measured_attempts(store: EventStore, campaign: str) -> list[MeasuredAttempt]:
    """Every attempt of `campaign` (the campaign must exist), ordered by repo, commit, timestamp."""
    campaign_row(store, campaign)
    c = attempts.c
    query = (select(c.repo, c.item_id, c.commit, c.pre_commit, c.run_timestamp, c.status, c.failure_category,
                    c.model, c.input_tokens, c.cached_input_tokens, c.output_tokens, c.duration_s)
             .where(c.campaign == campaign).order_by(c.repo, c.commit, c.run_timestamp))
    with store.engine.connect() as connection:
        rows = connection.execute(query).all()
    return [MeasuredAttempt(r[0], r[1], r[2], r[3], r[4], r[5], r[6] or "none", r[7], r[8], r[9], r[10], r[11])
            for r in rows]
