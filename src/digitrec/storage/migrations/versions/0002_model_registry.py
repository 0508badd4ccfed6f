"""Model registry: versions of each model with their ONNX bytes, and the version on every row.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("prediction_logs", sa.Column("model_version", sa.Integer(), nullable=True))
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("parent_version", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("onnx", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("checkpoint", sa.LargeBinary(), nullable=True),
        sa.Column("temperature", sa.Float(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("trained_on", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_by", sa.String(), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_model_versions_name")),
        sa.CheckConstraint(
            "status IN ('candidate', 'champion', 'rejected', 'retired')",
            name=op.f("ck_model_versions_status_known"),
        ),
    )
    op.create_index(op.f("ix_model_versions_name_status"), "model_versions", ["name", "status"])


def downgrade() -> None:
    op.drop_index(op.f("ix_model_versions_name_status"), table_name="model_versions")
    op.drop_table("model_versions")
    with op.batch_alter_table("prediction_logs") as batch:
        batch.drop_column("model_version")
