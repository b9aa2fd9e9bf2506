"""Drop idx_tasks_status: idx_tasks_ready (status, priority, seq) serves every query by status, and
each status change paid for both (a page more written per commit on the hot path)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 03:00:00
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("idx_tasks_status", table_name="tasks")


def downgrade() -> None:
    op.create_index("idx_tasks_status", "tasks", ["status"], unique=False)
