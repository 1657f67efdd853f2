"""Outbound calls shared by the instances (``vonage_bridge.outbound_store``): table
``outbound_calls``, one row per call ``POST /connect`` placed, until its last outcome or
its ``expires_at``.

A new table only: the previous version never reads it (backward compatible). During a
rolling deploy a call placed by an instance of the previous version is known to that
instance only, as before. Skipped when the table is already there (as revision 0003 does).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``outbound_calls`` unless it is there."""
    if sa.inspect(op.get_bind()).has_table("outbound_calls"):
        return  # made by a build of this feature before its revision: taken as it is
    op.create_table(
        "outbound_calls",
        sa.Column("call_id", sa.String(128), primary_key=True),
        sa.Column("front_door", sa.String(16), nullable=False),
        sa.Column("to_number", sa.String(32), nullable=False),
        sa.Column("from_number", sa.String(32), nullable=False),
        sa.Column("context", sa.Text(), nullable=False),
        sa.Column("status_url", sa.Text(), nullable=True),
        sa.Column("machine_detection", sa.Text(), nullable=True),
        sa.Column("placed_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=False), nullable=False),
    )
    op.create_index("ix_outbound_calls_expires_at", "outbound_calls", ["expires_at"])


def downgrade() -> None:
    """Drop ``outbound_calls``."""
    op.drop_table("outbound_calls")
