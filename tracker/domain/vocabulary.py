"""The domain's events: what can be known about a campaign and about an attempt.

Streams: `campaign:<name>` holds the campaign's own facts; `attempt:<campaign>:<repo>:<commit>:<ts>`
holds one agent run on one commit in one campaign. Payloads are facts as observed; derived values
(cost, success, best attempt) are computed by projections, so a new price table or classifier
re-derives history without rewriting it.
"""

from __future__ import annotations

FAILURE_CATEGORIES = (
    "tool_output_missing", "tool_result_missing", "empty_error_content", "quota_exceeded", "invalid_api_key",
    "rate_limited", "json_parse_error", "context_length_exceeded", "aws_sso_expired", "connection_error",
    "harness_error", "max_steps_exceeded", "no_patch", "timeout", "other",
)


"""Every category a failed attempt can get; a successful attempt's category is `none`."""

ATTEMPT_STATUSES = ("success", "error", "max_steps_exceeded", "running", "abandoned", "interrupted")
"""Every status an attempt can have: the journal's three, and the runner's own while or after it runs."""

HARNESS = "harness_error"
"""The category of an attempt whose setup was broken (bench, task or config file, repo checkout, interpreter,
agent program): the model never ran, so it is no verdict on the model and is kept out of its success rates."""
