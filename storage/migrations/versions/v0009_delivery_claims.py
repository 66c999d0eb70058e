"""Which activity attempt holds a pending delivery (issue 15: fast failover).

A retry of the same activity knows from Temporal that the attempt before it is over, so it
need not wait out the lease before asking the provider.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("channel_deliveries", sa.Column("claimed_by", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("channel_deliveries") as batch:
        batch.drop_column("claimed_by")
