"""outbox trace context

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 15:20:00

Each queued message keeps the W3C traceparent of the request that queued it (when tracing was on),
so the worker's delivery span links back to that request's trace.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_message") as batch:
        batch.add_column(sa.Column("trace_context", sa.String(length=55), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox_message") as batch:
        batch.drop_column("trace_context")
