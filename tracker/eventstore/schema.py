"""Table definitions the library queries; Alembic migrations in `migrations/` create them.

Payload and metadata are stored as canonical JSON *text* (not JSONB): the hash chain is computed
over the exact bytes stored, so no backend may reorder keys or reformat numbers underneath it.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

events = Table(
    "events",
    metadata,
    Column("position", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("stream_id", String(200), nullable=False),
    Column("stream_version", Integer, nullable=False),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("event_type", String(100), nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("payload", Text, nullable=False),
    Column("metadata", Text, nullable=False),
    Column("recorded_at", String(32), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("stream_id", "stream_version", name="uq_events_stream_version"),
)

projection_checkpoints = Table(
    "projection_checkpoints",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("updated_at", String(32), nullable=False),
    Column("hash", String(64)),  # migration 0004: the hash of the event at `position`
)

store_identity = Table(  # migration 0004: one row, fixed; the anchors outside the database name it
    "store_identity",
    metadata,
    Column("store_id", String(36), primary_key=True),
    Column("created_at", String(32), nullable=False),
)

evidence_blobs = Table(  # migration 0005: the files an attempt's evidence events name, redacted, by content hash
    "evidence_blobs",
    metadata,
    Column("sha256", String(64), primary_key=True),  # of the redacted content: the address
    Column("bytes", BigInteger, nullable=False),
    Column("compression", String(10), nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("stored_at", String(32), nullable=False),
)

# The SQL read model (migration 0002): a projection of the events, rebuildable at any time.
campaigns = Table(
    "campaigns",
    metadata,
    Column("name", String(80), primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("agent", String(100), nullable=False),
    Column("model", String(100), nullable=False),
    Column("benchmark", String(100), nullable=False),
    Column("agent_fix_commit", String(64)),
    Column("baseline_campaign", String(80)),
    Column("source", Text),
    Column("created_at", String(32), nullable=False),
)

attempts = Table(
    "attempts",
    metadata,
    Column("stream_id", String(200), primary_key=True),
    Column("campaign", String(80), nullable=False),
    Column("repo", String(100), nullable=False),
    Column("repo_raw", String(100)),
    Column("agent", String(100)),
    Column("model", String(100)),
    Column("model_raw", String(100)),
    Column("item_id", String(200)),
    Column("commit", String(64), nullable=False),
    Column("pre_commit", String(64)),
    Column("run_path", Text),
    Column("run_timestamp", String(32)),
    Column("status", String(40)),
    Column("failure_category", String(40)),
    Column("rule_id", String(100)),
    Column("rules_version", String(40)),
    Column("return_code", Integer),
    Column("duration_s", Float),
    Column("input_tokens", BigInteger),
    Column("cached_input_tokens", BigInteger),
    Column("output_tokens", BigInteger),
    Column("reasoning_tokens", BigInteger),
    Column("llm_calls", Integer),
    Column("patch_bytes", BigInteger),
    Column("patch_files", Integer),
    Column("lines_added", Integer),
    Column("lines_removed", Integer),
    Column("patch_sha256", String(64)),
    Column("eval_status", String(40)),
    Column("speedup", Float),
    Column("baseline_ms", Float),
    Column("patched_ms", Float),
    Column("problems", Text, nullable=False, server_default="[]"),
    Column("last_position", BigInteger, nullable=False),
    # migration 0003: outcome levels and incidents
    Column("commit_source", String(40)),
    Column("patch_generated", Boolean),
    Column("agent_reported_cost_usd", Float),
    Column("usage_model", String(100)),
    Column("eval_agent_status", String(40)),
    Column("improvement", Boolean),
    Column("eval_error", Text),
    Column("incidents", Text),
)
