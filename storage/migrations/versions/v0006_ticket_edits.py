"""Ticket edits made after an incident's workflow closed (issue 13).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ticket_edits",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.Text, nullable=False),
        sa.Column("at", sa.Text, nullable=False),
        sa.Column("edit", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_ticket_edits_incident_id", "ticket_edits", ["incident_id"])


def downgrade() -> None:
    op.drop_table("ticket_edits")
