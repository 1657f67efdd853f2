"""Shared state of several instances (``vonage_bridge.cluster``): ``claims`` (once-only keys:
webhook ids, SIP calls, spent media tokens, Twilio streams), ``instances`` (heartbeats) and
``live_calls``.

New tables only: the previous version never reads them (backward compatible).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``claims``, ``instances`` and ``live_calls``."""
    op.create_table(
        "claims",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("key", sa.String(256), primary_key=True),
        sa.Column("instance_id", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=False), nullable=False),
    )
    op.create_index("ix_claims_expires_at", "claims", ["expires_at"])
    op.create_table(
        "instances",
        sa.Column("instance_id", sa.String(64), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=False), nullable=False),
    )
    op.create_table(
        "live_calls",
        sa.Column("call_uuid", sa.String(128), primary_key=True),
        sa.Column("instance_id", sa.String(64), nullable=False),
        sa.Column("front_door", sa.String(16), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("from_masked", sa.String(32), nullable=True),
        sa.Column("to_masked", sa.String(32), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=False), nullable=False),
    )
    op.create_index("ix_live_calls_instance_id", "live_calls", ["instance_id"])


def downgrade() -> None:
    """Drop ``live_calls``, ``instances`` and ``claims``."""
    op.drop_table("live_calls")
    op.drop_table("instances")
    op.drop_table("claims")
