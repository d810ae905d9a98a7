"""The domain's events: what can be known about a campaign and about an attempt.

Streams: `campaign:<name>` holds the campaign's own facts; `attempt:<campaign>:<repo>:<commit>:<ts>`
holds one agent run on one commit in one campaign. Payloads are facts as observed; derived values
(cost, success, best attempt) are computed by projections, so a new price table or classifier
re-derives history without rewriting it.
"""

from __future__ import annotations

import re

from tracker.errors import TrackerError

CAMPAIGN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


CAMPAIGN_PREFIX, ATTEMPT_PREFIX, CLAIM_PREFIX = "campaign:", "attempt:", "claim:"


"""Stream ids: `campaign:<name>`, `attempt:<campaign>:<repo>:<commit>:<run id>[~<item id>]`,
`claim:<campaign>:<commit>`. Campaign names hold no ':' (`CAMPAIGN_NAME`), so the parts split cleanly;
these functions are the only place that builds or parses them."""


def campaign_stream(name: str) -> str:
    return f"{CAMPAIGN_PREFIX}{name}"


def attempt_stream(campaign: str, repo: str, commit: str, timestamp: str) -> str:
    return f"{ATTEMPT_PREFIX}{campaign}:{repo}:{commit}:{timestamp}"


def attempts_prefix(campaign: str) -> str:
    """The prefix shared by every attempt stream of a campaign."""
    return f"{ATTEMPT_PREFIX}{campaign}:"


def claim_stream(campaign: str, commit: str) -> str:
    return f"{CLAIM_PREFIX}{campaign}:{commit}"


def claims_prefix(campaign: str) -> str:
    return f"{CLAIM_PREFIX}{campaign}:"


BUDGET_PREFIX = "budget:"


def budget_stream(campaign: str) -> str:
    """`budget:<campaign>`: every runner's reservations and settlements against the campaign's budget."""
    return f"{BUDGET_PREFIX}{campaign}"


def attempt_parts(stream_id: str) -> tuple[str, str, str, str]:
    """(campaign, repo, commit, run id) of an attempt stream id (missing parts are "")."""
    parts = stream_id.removeprefix(ATTEMPT_PREFIX).split(":", 3)
    parts += [""] * (4 - len(parts))
    return parts[0], parts[1], parts[2], parts[3]


def stream_campaign(stream_id: str) -> str:
    """The campaign a campaign, attempt or claim stream belongs to."""
    return stream_id.split(":", 2)[1] if ":" in stream_id else ""


def claim_commit(stream_id: str) -> str:
    return stream_id.rsplit(":", 1)[1]


def check_campaign_name(name: str) -> str:
    if not CAMPAIGN_NAME.match(name):
        raise TrackerError(
            f"invalid campaign name {name!r}: use 1-80 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name



METER_PREFIX = "meter:"


def meter_stream(campaign: str) -> str:
    """`meter:<campaign>`: every API request the metering proxy passed for the campaign's agents."""
    return f"{METER_PREFIX}{campaign}"
