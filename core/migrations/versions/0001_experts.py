"""experts registry

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "experts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("base_model", sa.String(256)),
        sa.Column("adapter_path", sa.String(1024)),
        sa.Column("litellm_model", sa.String(256)),
        sa.Column("api_base", sa.String(1024)),
        sa.Column("api_key_env", sa.String(128)),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.Column("exemplars", sa.JSON(), nullable=False),
        sa.Column("cost_per_1k_tokens", sa.Float(), nullable=False, server_default="0"),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_experts_name", "experts", ["name"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_experts_name", table_name="experts")
    op.drop_table("experts")
