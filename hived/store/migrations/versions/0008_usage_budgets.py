"""Usage and budgets (issue 16): the usage records every sum is made of, and what was added to runs'
budgets.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 05:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_records",
        sa.Column("lease", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("task_id", sa.String(36), nullable=False),
        sa.Column("run_id", sa.String(36), nullable=True),
        sa.Column("agent_id", sa.String(36), nullable=True),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_micro", sa.BigInteger(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("idx_usage_task", "usage_records", ["task_id"])
    op.create_index("idx_usage_run", "usage_records", ["run_id"])
    op.create_index("idx_usage_agent_day", "usage_records", ["agent_id", "day"])
    op.create_index("idx_usage_day", "usage_records", ["day"])
    op.create_index("idx_usage_recorded_at", "usage_records", ["recorded_at"])
    op.create_table(
        "run_budgets",
        sa.Column("run_id", sa.String(36), primary_key=True),
        sa.Column("added_micro", sa.BigInteger(), nullable=False),
        sa.Column("added_tokens", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("run_budgets")
    op.drop_table("usage_records")
