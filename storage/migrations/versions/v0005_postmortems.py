"""Post-mortems and their action items (issue 13).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "postmortems",
        sa.Column("incident_id", sa.Text, nullable=False),
        sa.Column("workflow_id", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("service", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("stage", sa.Text, nullable=False),
        sa.Column("resolved_at", sa.Text),
        sa.Column("review_at", sa.Text, nullable=False),
        sa.Column("held_at", sa.Text),
        sa.Column("held_by", sa.Text),
        sa.Column("lessons_filled", sa.Integer, nullable=False, server_default="0"),
        sa.Column("items_total", sa.Integer, nullable=False, server_default="0"),
        sa.Column("items_open", sa.Integer, nullable=False, server_default="0"),
        sa.Column("completed_at", sa.Text),
        sa.Column("completed_by", sa.Text),
        sa.Column("document_path", sa.Text),
        sa.Column("detail", sa.Text, nullable=False, server_default="{}"),
        sa.Column("updated_at", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("incident_id", name="pk_postmortems"),
    )
    op.create_index("ix_postmortems_stage", "postmortems", ["stage"])
    op.create_table(
        "action_items",
        sa.Column("incident_id", sa.Text, nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("due", sa.Text, nullable=False),
        sa.Column("due_at", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("closed_by", sa.Text),
        sa.Column("closed_at", sa.Text),
        sa.Column("evidence", sa.Text),
        sa.Column("verified_by", sa.Text),
        sa.Column("verified_at", sa.Text),
        sa.Column("overdue_notices", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated_at", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("incident_id", "number", name="pk_action_items"),
    )
    op.create_index("ix_action_items_owner_status", "action_items", ["owner", "status"])
    op.create_index("ix_action_items_status_due_at", "action_items", ["status", "due_at"])


def downgrade() -> None:
    op.drop_table("action_items")
    op.drop_table("postmortems")
