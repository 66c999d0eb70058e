"""The weekly handoff: handoffs, handoff notes, and when each integration last sent anything.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "handoffs",
        sa.Column("handoff_id", sa.Text, nullable=False),
        sa.Column("workflow_id", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("shift_start", sa.Text, nullable=False),
        sa.Column("outgoing", sa.Text, nullable=False),
        sa.Column("incoming", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("unverified", sa.Integer, nullable=False, server_default="0"),
        sa.Column("result", sa.Text, nullable=False),
        sa.Column("started_at", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("handoff_id", name="pk_handoffs"),
    )
    op.create_index("ix_handoffs_started_at", "handoffs", ["started_at"])
    op.create_table(
        "handoff_notes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("author", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_handoff_notes_author_created_at", "handoff_notes", ["author", "created_at"])
    op.create_table(
        "integration_seen",
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("last_seen_at", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_integration_seen"),
    )


def downgrade() -> None:
    op.drop_table("integration_seen")
    op.drop_table("handoff_notes")
    op.drop_table("handoffs")
