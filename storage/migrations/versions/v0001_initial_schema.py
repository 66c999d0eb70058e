"""The schema as the hand-written SQLite code left it: outbox, incident numbers, ledger.

Creates whatever is missing, so that it adopts a data dir written before migrations
existed: its tables are kept with their rows, the listing columns that came later are
added to ``incident_numbers``, and the tables and indexes that only some versions (or
only configured channels) created are created. On a fresh database it creates them all.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("outbox", "incident_numbers", "channel_deliveries", "channel_state")
INCIDENT_LISTING = ("opened_at", "summary", "service", "severity")  # added after 1st release


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    have = set(inspector.get_table_names())
    if "outbox" not in have:
        op.create_table(
            "outbox",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("idempotency_key", sa.Text, nullable=False, unique=True),
            sa.Column("incident_id", sa.Text, nullable=False),
            sa.Column("workflow_id", sa.Text, nullable=False),
            sa.Column("kind", sa.Text, nullable=False),
            sa.Column("recipient", sa.Text, nullable=False),
            sa.Column("channel", sa.Text, nullable=False),
            sa.Column("subject", sa.Text, nullable=False),
            sa.Column("text", sa.Text, nullable=False),
            sa.Column("scheduled_at", sa.Text, nullable=False),
            sa.Column("recorded_at", sa.Text, nullable=False),
            sa.Column("status", sa.Text, nullable=False, server_default="sent"),
            sa.Column("detail", sa.Text),
            sqlite_autoincrement=True,
        )
    if "incident_numbers" not in have:
        op.create_table(
            "incident_numbers",
            sa.Column("day", sa.Text, nullable=False),
            sa.Column("sequence", sa.Integer, nullable=False, autoincrement=False),
            sa.Column("workflow_key", sa.Text, nullable=False, unique=True),
            *(sa.Column(name, sa.Text) for name in INCIDENT_LISTING),
            sa.PrimaryKeyConstraint("day", "sequence"),
        )
    else:
        columns = {c["name"] for c in inspector.get_columns("incident_numbers")}
        for name in INCIDENT_LISTING:
            if name not in columns:
                op.add_column("incident_numbers", sa.Column(name, sa.Text))
    if "channel_deliveries" not in have:
        op.create_table(
            "channel_deliveries",
            sa.Column("idempotency_key", sa.Text, primary_key=True),
            sa.Column("incident_id", sa.Text, nullable=False),
            sa.Column("channel", sa.Text, nullable=False),
            sa.Column("address", sa.Text, nullable=False),
            sa.Column("status", sa.Text, nullable=False),
            sa.Column("provider_id", sa.Text),
            sa.Column("detail", sa.Text),
            sa.Column("tries", sa.Integer, nullable=False, server_default=sa.text("0")),
            sa.Column("created_at", sa.Text, nullable=False),
            sa.Column("updated_at", sa.Text, nullable=False),
        )
    if "channel_state" not in have:
        op.create_table(
            "channel_state",
            sa.Column("name", sa.Text, primary_key=True),
            sa.Column("value", sa.Text, nullable=False),
            sa.Column("updated_at", sa.Text, nullable=False),
        )
    for index, table, column in (
        ("outbox_incident", "outbox", "incident_id"),
        ("incident_numbers_opened", "incident_numbers", "opened_at"),
        ("channel_deliveries_incident", "channel_deliveries", "incident_id"),
    ):
        if table not in have or index not in {i["name"] for i in inspector.get_indexes(table)}:
            op.create_index(index, table, [column])


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
