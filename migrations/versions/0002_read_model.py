"""The SQL read model: campaigns and attempts, projected from the events (rebuildable at will).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("name", sa.String(80), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("agent", sa.String(100), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("benchmark", sa.String(100), nullable=False),
        sa.Column("agent_fix_commit", sa.String(64)),
        sa.Column("baseline_campaign", sa.String(80)),
        sa.Column("source", sa.Text),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "attempts",
        sa.Column("stream_id", sa.String(200), primary_key=True),
        sa.Column("campaign", sa.String(80), nullable=False),
        sa.Column("repo", sa.String(100), nullable=False),
        sa.Column("repo_raw", sa.String(100)),
        sa.Column("agent", sa.String(100)),
        sa.Column("model", sa.String(100)),
        sa.Column("model_raw", sa.String(100)),
        sa.Column("item_id", sa.String(200)),
        sa.Column("commit", sa.String(64), nullable=False),
        sa.Column("pre_commit", sa.String(64)),
        sa.Column("run_path", sa.Text),
        sa.Column("run_timestamp", sa.String(32)),
        sa.Column("status", sa.String(40)),
        sa.Column("failure_category", sa.String(40)),
        sa.Column("rule_id", sa.String(100)),
        sa.Column("rules_version", sa.String(40)),
        sa.Column("return_code", sa.Integer),
        sa.Column("duration_s", sa.Float),
        sa.Column("input_tokens", sa.BigInteger),
        sa.Column("cached_input_tokens", sa.BigInteger),
        sa.Column("output_tokens", sa.BigInteger),
        sa.Column("reasoning_tokens", sa.BigInteger),
        sa.Column("llm_calls", sa.Integer),
        sa.Column("patch_bytes", sa.BigInteger),
        sa.Column("patch_files", sa.Integer),
        sa.Column("lines_added", sa.Integer),
        sa.Column("lines_removed", sa.Integer),
        sa.Column("patch_sha256", sa.String(64)),
        sa.Column("eval_status", sa.String(40)),
        sa.Column("speedup", sa.Float),
        sa.Column("baseline_ms", sa.Float),
        sa.Column("patched_ms", sa.Float),
        sa.Column("problems", sa.Text, nullable=False, server_default="[]"),
        sa.Column("last_position", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_attempts_campaign_commit", "attempts", ["campaign", "commit"])
    # The tables are new and empty: a checkpoint left by an earlier downgrade would say they are full.
    op.execute("DELETE FROM projection_checkpoints WHERE name = 'read_model'")


def downgrade() -> None:
    op.drop_index("ix_attempts_campaign_commit", "attempts")
    op.drop_table("attempts")
    op.drop_table("campaigns")
    op.execute("DELETE FROM projection_checkpoints WHERE name = 'read_model'")
