"""A reader that may give no digit: a row's prediction, confidence and probabilities may be empty.

A chat model answers "none" or nothing usable, and states no probabilities.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("prediction", sa.Integer()),
    ("confidence", sa.Float()),
    ("probabilities", sa.JSON()),
)


def upgrade() -> None:
    with op.batch_alter_table("prediction_logs") as batch:  # SQLite rebuilds the table
        for name, kind in COLUMNS:
            batch.alter_column(name, existing_type=kind, nullable=True)


def downgrade() -> None:
    # Rows without a digit or a confidence (every chat-model row) cannot be kept in columns
    # that require both.
    op.execute(
        sa.text("DELETE FROM prediction_logs WHERE prediction IS NULL OR confidence IS NULL")
    )
    with op.batch_alter_table("prediction_logs") as batch:
        for name, kind in COLUMNS:
            batch.alter_column(name, existing_type=kind, nullable=False)
