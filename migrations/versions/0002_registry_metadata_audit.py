"""registry metadata, lineage, inference data and audit log

Adds tags to registered models and versions; lineage (source, data sha256, lineage JSON,
registered_by) to versions; the optional ArviZ netCDF per version; the append-only
audit log of admin actions. The downgrade removes exactly these again.

Revision ID: 0002
Revises: 0001
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import sqlite

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EMPTY_JSON = sa.text("'{}'")


def upgrade() -> None:
    # Plain ADD COLUMN (no batch table rebuild): SQLite and PostgreSQL both support it with
    # a constant default, and existing rows keep everything they had.
    op.add_column("registered_models", sa.Column("tags", sa.JSON(), server_default=EMPTY_JSON,
                                                 nullable=False))
    op.add_column("model_versions", sa.Column("tags", sa.JSON(), server_default=EMPTY_JSON,
                                              nullable=False))
    op.add_column("model_versions", sa.Column("source", sa.Text(), nullable=True))
    op.add_column("model_versions", sa.Column("data_sha256", sa.String(length=64),
                                              nullable=True))
    op.add_column("model_versions", sa.Column("lineage", sa.JSON(), server_default=EMPTY_JSON,
                                              nullable=False))
    op.add_column("model_versions", sa.Column("registered_by", sa.String(length=128),
                                              nullable=True))
    op.create_table(
        "model_inference_data",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["name", "version"], ["model_versions.name", "model_versions.version"],
            name=op.f("fk_model_inference_data_name_model_versions"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("name", "version", name=op.f("pk_model_inference_data")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sqlite.INTEGER(), "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("alias", sa.String(length=64), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"])
    op.create_index(op.f("ix_audit_log_model_name"), "audit_log", ["model_name"])
    # Append-only in the database itself, not just by convention in the code.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql "
                   "AS $$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$")
        op.execute("CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON "
                   "audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()")
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER audit_log_no_{event.lower()} BEFORE {event} ON "
                       "audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END")


def downgrade() -> None:
    # Dropping the table drops its triggers; PostgreSQL's trigger function goes separately.
    op.drop_index(op.f("ix_audit_log_model_name"), table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_at"), table_name="audit_log")
    op.drop_table("audit_log")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_log_append_only()")
    op.drop_table("model_inference_data")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("registered_by")
        batch.drop_column("lineage")
        batch.drop_column("data_sha256")
        batch.drop_column("source")
        batch.drop_column("tags")
    with op.batch_alter_table("registered_models") as batch:
        batch.drop_column("tags")
