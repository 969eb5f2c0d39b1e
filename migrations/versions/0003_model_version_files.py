"""files attached to model versions (the fit report figures)

Adds `model_version_files`: per version, files such as "report/fit.png" with their media
type, size, sha256 and bytes, so the figures live in the registry with the version they
describe. The downgrade drops the table (and with it the stored figures).

Revision ID: 0003
Revises: 0002
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "model_version_files",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=255), nullable=False),
        sa.Column("media_type", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["name", "version"], ["model_versions.name", "model_versions.version"],
            name=op.f("fk_model_version_files_name_model_versions"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("name", "version", "path",
                                name=op.f("pk_model_version_files")),
    )


def downgrade() -> None:
    op.drop_table("model_version_files")
