"""Evidence captured once: the redacted files behind an attempt, in the store, by content hash.

`evidence_blobs` holds each captured file (patch, logs, trajectory, journal, evaluation result) once,
redacted and zlib-compressed, addressed by the SHA-256 of its redacted content. The `evidence.captured`
event of the attempt names the addresses, so the hash chain covers them: a blob changed in place no
longer matches its address, and `track sync` reports it instead of logging it. Blobs are insert-only
(an update or delete is refused), like the log.

Downgrading keeps the table when it holds evidence (only its triggers go): the log still names those blobs,
and nothing good may be lost to a mistyped revision; upgrading again finds the table and keeps it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SQLITE_TRIGGERS = [
    """CREATE TRIGGER evidence_refuse_update BEFORE UPDATE ON evidence_blobs
       BEGIN SELECT RAISE(ABORT, 'evidence is insert-only: UPDATE refused'); END""",
    """CREATE TRIGGER evidence_refuse_delete BEFORE DELETE ON evidence_blobs
       BEGIN SELECT RAISE(ABORT, 'evidence is insert-only: DELETE refused'); END""",
]

POSTGRES_TRIGGERS = [
    """CREATE FUNCTION evidence_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'evidence is insert-only: % refused', TG_OP; END $$""",
    """CREATE TRIGGER evidence_refuse_update_delete BEFORE UPDATE OR DELETE ON evidence_blobs
       FOR EACH ROW EXECUTE FUNCTION evidence_refuse_change()""",
    """CREATE TRIGGER evidence_refuse_truncate BEFORE TRUNCATE ON evidence_blobs
       FOR EACH STATEMENT EXECUTE FUNCTION evidence_refuse_change()""",
]


def upgrade() -> None:
    if "evidence_blobs" in sa.inspect(op.get_bind()).get_table_names():  # kept by an earlier downgrade
        _add_triggers()
        return
    op.create_table(
        "evidence_blobs",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("compression", sa.String(10), nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("stored_at", sa.String(32), nullable=False),
    )
    _add_triggers()


def _add_triggers() -> None:
    statements = POSTGRES_TRIGGERS if op.get_bind().dialect.name == "postgresql" else SQLITE_TRIGGERS
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    held = op.get_bind().execute(sa.text("SELECT count(*) FROM evidence_blobs")).scalar_one()
    if held:
        triggers = ("evidence_refuse_update_delete", "evidence_refuse_truncate") if postgres else (
            "evidence_refuse_update", "evidence_refuse_delete")
        for trigger in triggers:
            op.execute(f"DROP TRIGGER {trigger}" + (" ON evidence_blobs" if postgres else ""))
    else:
        op.drop_table("evidence_blobs")
    if postgres:
        op.execute("DROP FUNCTION evidence_refuse_change()")
