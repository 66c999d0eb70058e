"""The change feed and the mitigation runs ledger (runbooks, issue 11).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("change_id", sa.Text, nullable=False),
        sa.Column("service", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("who", sa.Text),
        sa.Column("at", sa.Text, nullable=False),
        sa.Column("received_at", sa.Text, nullable=False),
        sa.Column("integration", sa.Text),
        sa.Column("links", sa.Text, nullable=False, server_default="[]"),
        sa.Column("details", sa.Text, nullable=False, server_default="{}"),
        sa.UniqueConstraint("service", "change_id", name="uq_changes_service_change_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_changes_service_at", "changes", ["service", "at"])
    op.create_index("ix_changes_at", "changes", ["at"])
    op.create_table(
        "mitigation_runs",
        sa.Column("idempotency_key", sa.Text, primary_key=True),
        sa.Column("incident_id", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("result", sa.Text),
        sa.Column("started_at", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
    )
    op.create_index("ix_mitigation_runs_incident_id", "mitigation_runs", ["incident_id"])


def downgrade() -> None:
    op.drop_table("mitigation_runs")
    op.drop_table("changes")
