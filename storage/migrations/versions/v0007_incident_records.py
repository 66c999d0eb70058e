"""Incident records: one row per incident, for reports (issue 14).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "incident_records",
        sa.Column("incident_id", sa.Text, primary_key=True),
        sa.Column("opened_at", sa.Text, nullable=False),
        sa.Column("resolved_at", sa.Text),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("service", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("record", sa.Text, nullable=False),
    )
    op.create_index("ix_incident_records_opened_at", "incident_records", ["opened_at"])
    op.create_index("ix_incident_records_resolved_at", "incident_records", ["resolved_at"])


def downgrade() -> None:
    op.drop_table("incident_records")
