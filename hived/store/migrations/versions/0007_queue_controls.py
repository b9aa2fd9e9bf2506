"""Queue controls (issue 15, part B): task labels, scheduled starts and expiry, cordoned agents, and
the queue's pauses.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 04:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("labels", Json, nullable=True))
        batch.add_column(sa.Column("not_before", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("cordoned", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "queue_pauses",
        sa.Column("key", sa.String(400), primary_key=True),
        sa.Column("type", sa.String(100), nullable=True),
        sa.Column("requires", Json, nullable=True),
        sa.Column("workflow", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("queue_pauses")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("cordoned")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("expires_at")
        batch.drop_column("not_before")
        batch.drop_column("labels")
