"""Audit integrity: a store identity for the anchors, checkpoint hashes, and no replacing insert on SQLite.

- `store_identity`: one row, a random id made with the schema. Anchors written outside the database
  name it, so a store swapped for another (or wiped and recreated) is seen as another store.
- `projection_checkpoints.hash`: the hash of the event a checkpoint points at, so a projection notices a
  log that changed under it (a cut tail later refilled) instead of skipping the new events.
- SQLite's `INSERT OR REPLACE` / `REPLACE INTO` deletes the conflicting row without firing delete
  triggers (unless `recursive_triggers` is on, which no other client need set): a BEFORE INSERT
  trigger refuses any insert whose position, event id or stream version is already stored. The
  refusal raises a constraint error, as the unique indexes would, so idempotent re-appends still work.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10
"""

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SQLITE_TRIGGERS = [
    """CREATE TRIGGER events_refuse_replace BEFORE INSERT ON events
       WHEN EXISTS (SELECT 1 FROM events WHERE position = NEW.position)
         OR EXISTS (SELECT 1 FROM events WHERE event_id = NEW.event_id)
         OR EXISTS (SELECT 1 FROM events WHERE stream_id = NEW.stream_id AND stream_version = NEW.stream_version)
       BEGIN SELECT RAISE(ABORT, 'events are append-only: an insert over a stored event refused'); END""",
    """CREATE TRIGGER store_identity_refuse_update BEFORE UPDATE ON store_identity
       BEGIN SELECT RAISE(ABORT, 'the store identity is fixed: UPDATE refused'); END""",
    """CREATE TRIGGER store_identity_refuse_delete BEFORE DELETE ON store_identity
       BEGIN SELECT RAISE(ABORT, 'the store identity is fixed: DELETE refused'); END""",
    """CREATE TRIGGER store_identity_refuse_insert BEFORE INSERT ON store_identity
       WHEN EXISTS (SELECT 1 FROM store_identity)
       BEGIN SELECT RAISE(ABORT, 'the store identity is fixed: a second identity refused'); END""",
]

POSTGRES_TRIGGERS = [
    """CREATE FUNCTION store_identity_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'the store identity is fixed: % refused', TG_OP; END $$""",
    """CREATE TRIGGER store_identity_refuse_update_delete BEFORE UPDATE OR DELETE ON store_identity
       FOR EACH ROW EXECUTE FUNCTION store_identity_refuse_change()""",
    """CREATE TRIGGER store_identity_refuse_truncate BEFORE TRUNCATE ON store_identity
       FOR EACH STATEMENT EXECUTE FUNCTION store_identity_refuse_change()""",
]


def upgrade() -> None:
    op.create_table(
        "store_identity",
        sa.Column("store_id", sa.String(36), primary_key=True),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    op.execute(sa.text("INSERT INTO store_identity (store_id, created_at) VALUES (:id, :at)").bindparams(
        id=str(uuid.uuid4()), at=datetime.now(UTC).isoformat(timespec="microseconds")))
    with op.batch_alter_table("projection_checkpoints") as batch:
        batch.add_column(sa.Column("hash", sa.String(64)))
    statements = POSTGRES_TRIGGERS if op.get_bind().dialect.name == "postgresql" else SQLITE_TRIGGERS
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE store_identity")
        op.execute("DROP FUNCTION store_identity_refuse_change()")
    else:
        op.execute("DROP TRIGGER events_refuse_replace")
        op.drop_table("store_identity")
    with op.batch_alter_table("projection_checkpoints") as batch:
        batch.drop_column("hash")
