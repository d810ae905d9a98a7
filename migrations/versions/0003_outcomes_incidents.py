"""Outcome levels and incidents in the read model; the read model is replayed from the log.

The new columns are projections of facts already in the log (and of the facts a re-import adds),
so the rows are deleted and the checkpoint reset: the next command re-derives every attempt.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("commit_source", sa.String(40)),
    ("patch_generated", sa.Boolean),
    ("agent_reported_cost_usd", sa.Float),
    ("usage_model", sa.String(100)),
    ("eval_agent_status", sa.String(40)),
    ("improvement", sa.Boolean),
    ("eval_error", sa.Text),
    ("incidents", sa.Text),
)


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        for name, kind in _COLUMNS:
            batch.add_column(sa.Column(name, kind))
    op.execute("DELETE FROM attempts")
    op.execute("DELETE FROM campaigns")
    op.execute("DELETE FROM projection_checkpoints WHERE name = 'read_model'")


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
    op.execute("DELETE FROM attempts")
    op.execute("DELETE FROM campaigns")
    op.execute("DELETE FROM projection_checkpoints WHERE name = 'read_model'")
