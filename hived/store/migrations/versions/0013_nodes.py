"""Nodes (issue 19): several hived on one PostgreSQL. A row per node, an agent's placement, and the
node that drives a workflow run.

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-01 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("slot", sa.Integer(), nullable=False, unique=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("address", sa.String(255), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lost_at", sa.DateTime(timezone=True), nullable=True),
    )
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("node", sa.String(63), nullable=True))
    with op.batch_alter_table("workflow_runs") as batch:
        batch.add_column(sa.Column("driver", sa.String(63), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workflow_runs") as batch:
        batch.drop_column("driver")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("node")
    op.drop_table("nodes")
