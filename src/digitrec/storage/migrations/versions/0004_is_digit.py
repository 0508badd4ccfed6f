"""Not a digit: the detector's probability and decision on each row, and the person's label.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("prediction_logs", sa.Column("digit_probability", sa.Float(), nullable=True))
    op.add_column(
        "prediction_logs",
        sa.Column("is_digit", sa.Boolean(), server_default=sa.true(), nullable=False),
    )
    op.add_column(
        "prediction_logs",
        sa.Column("not_a_digit", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("prediction_logs") as batch:
        batch.drop_column("not_a_digit")
        batch.drop_column("is_digit")
        batch.drop_column("digit_probability")
