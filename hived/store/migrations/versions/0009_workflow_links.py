"""Workflow power, part A: sub-workflow runs linked both ways (the child run on its parent's step, the
parent run and step on the child), reruns (`rerun_of`), and a run's `outputs`.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 05:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("workflow_runs") as batch:
        batch.add_column(sa.Column("parent_run_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("parent_step", sa.String(100), nullable=True))
        batch.add_column(sa.Column("rerun_of", sa.String(36), nullable=True))
        batch.add_column(sa.Column("outputs", Json, nullable=True))
        batch.create_index("ix_workflow_runs_parent_run_id", ["parent_run_id"], unique=False)
    with op.batch_alter_table("run_steps") as batch:
        batch.add_column(sa.Column("child_run_id", sa.String(36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("run_steps") as batch:
        batch.drop_column("child_run_id")
    with op.batch_alter_table("workflow_runs") as batch:
        batch.drop_index("ix_workflow_runs_parent_run_id")
        batch.drop_column("outputs")
        batch.drop_column("rerun_of")
        batch.drop_column("parent_step")
        batch.drop_column("parent_run_id")
