"""Limits held cluster-wide (issue 19): the units of a limit each running task holds, written in the
commit of its claim and deleted with its attempt's end, so that nodes on one PostgreSQL count each
other's holders.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 00:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "limit_holds",
        sa.Column("task_id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("lease", sa.BigInteger(), nullable=False),
        sa.Column("node", sa.String(63), nullable=False),
    )
    op.create_index("idx_limit_holds_name_key", "limit_holds", ["name", "key"])


def downgrade() -> None:
    op.drop_index("idx_limit_holds_name_key", "limit_holds")
    op.drop_table("limit_holds")
