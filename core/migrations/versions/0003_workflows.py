"""workflows and per-task aggregator choices

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workflows",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_workflows_name", "workflows", ["name"], unique=True)
    op.create_table(
        "aggregator_choices",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("task", sa.String(128), nullable=False),
        sa.Column("aggregator", sa.String(64), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_aggregator_choices_task", "aggregator_choices", ["task"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_aggregator_choices_task", table_name="aggregator_choices")
    op.drop_table("aggregator_choices")
    op.drop_index("ix_workflows_name", table_name="workflows")
    op.drop_table("workflows")
