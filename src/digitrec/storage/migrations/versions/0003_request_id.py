"""The request that made a row: the models compared on one drawing share it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("prediction_logs", sa.Column("request_id", sa.String(length=32), nullable=True))
    op.create_index(op.f("ix_prediction_logs_request_id"), "prediction_logs", ["request_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_prediction_logs_request_id"), table_name="prediction_logs")
    with op.batch_alter_table("prediction_logs") as batch:
        batch.drop_column("request_id")
