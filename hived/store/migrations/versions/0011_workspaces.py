"""Workspaces (issue 18): an attempt's git worktree, its commits and its diff.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 08:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "attempt_workspaces",
        sa.Column("task_id", sa.String(36), primary_key=True),
        sa.Column("attempt", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("report", Json, nullable=False),
        sa.Column("diff", sa.Text(), nullable=False, server_default=""),
        sa.Column("diff_bytes", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("attempt_workspaces")
