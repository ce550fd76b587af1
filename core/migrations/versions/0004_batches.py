"""batch files, batches, batch requests and batch results

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "batch_files",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("filename", sa.String(512), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        _ts("created_at", nullable=False),
    )
    op.create_table(
        "batches",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("input_file_id", sa.String(64), sa.ForeignKey("batch_files.id"), nullable=False),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("completion_window", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("output_file_id", sa.String(64)),
        sa.Column("error_file_id", sa.String(64)),
        sa.Column("metadata", sa.JSON()),
        sa.Column("line_errors", sa.JSON(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        _ts("created_at", nullable=False),
        _ts("in_progress_at"),
        _ts("finalizing_at"),
        _ts("completed_at"),
        _ts("cancelling_at"),
        _ts("cancelled_at"),
        _ts("failed_at"),
    )
    op.create_index("ix_batches_status", "batches", ["status"])
    op.create_table(
        "batch_requests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("batch_id", sa.String(64), sa.ForeignKey("batches.id"), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("custom_id", sa.String(512), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decision", sa.JSON()),
        sa.Column("response", sa.JSON()),
        sa.Column("error", sa.JSON()),
        sa.UniqueConstraint("batch_id", "custom_id", name="uq_batch_requests_line"),
    )
    op.create_index("ix_batch_requests_batch_id", "batch_requests", ["batch_id"])
    op.create_index("ix_batch_requests_status", "batch_requests", ["status"])
    op.create_table(
        "batch_results",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("custom_id", sa.String(512), nullable=False),
        sa.Column("expert_id", sa.String(128), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("finish_reason", sa.String(16), nullable=False),
        sa.Column("error", sa.JSON()),
        _ts("created_at", nullable=False),
        sa.UniqueConstraint("batch_id", "custom_id", "expert_id", name="uq_batch_results_call"),
    )
    op.create_index("ix_batch_results_batch_id", "batch_results", ["batch_id"])


def downgrade() -> None:
    op.drop_table("batch_results")
    op.drop_table("batch_requests")
    op.drop_index("ix_batches_status", table_name="batches")
    op.drop_table("batches")
    op.drop_table("batch_files")
