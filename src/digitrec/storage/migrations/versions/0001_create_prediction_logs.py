"""Create the prediction log.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prediction_logs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uid", sa.String(length=32), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("session_id", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("prediction", sa.Integer(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("probabilities", sa.JSON(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("image_png", sa.LargeBinary(), nullable=False),
        sa.Column("canvas_png", sa.LargeBinary(), nullable=True),
        sa.Column("actual", sa.Integer(), nullable=True),
        sa.Column("feedback_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction_logs")),
        sa.UniqueConstraint("uid", name=op.f("uq_prediction_logs_uid")),
        sa.CheckConstraint(
            "prediction >= 0 AND prediction <= 9", name=op.f("ck_prediction_logs_prediction_digit")
        ),
        sa.CheckConstraint(
            "actual >= 0 AND actual <= 9", name=op.f("ck_prediction_logs_actual_digit")
        ),
    )
    op.create_index(
        op.f("ix_prediction_logs_session_id_timestamp_id"),
        "prediction_logs",
        ["session_id", "timestamp", "id"],
    )
    op.create_index(op.f("ix_prediction_logs_timestamp_id"), "prediction_logs", ["timestamp", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_prediction_logs_timestamp_id"), table_name="prediction_logs")
    op.drop_index(op.f("ix_prediction_logs_session_id_timestamp_id"), table_name="prediction_logs")
    op.drop_table("prediction_logs")
