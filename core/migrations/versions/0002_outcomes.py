"""routing outcomes (feedback and imported evaluations)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "routing_outcomes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("query_id", sa.String(64)),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("expert", sa.String(128), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False, server_default="feedback"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_routing_outcomes_query_id", "routing_outcomes", ["query_id"])
    op.create_index("ix_routing_outcomes_expert", "routing_outcomes", ["expert"])


def downgrade() -> None:
    op.drop_index("ix_routing_outcomes_expert", table_name="routing_outcomes")
    op.drop_index("ix_routing_outcomes_query_id", table_name="routing_outcomes")
    op.drop_table("routing_outcomes")
