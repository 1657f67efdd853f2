"""Baseline: the call records (``calls``, ``transcript_entries``) as the version before
migrations had them.

Creates only what is missing, so a database of that version (tables, no ``alembic_version``)
is taken as it is and stamped: the tables stay, rows and all, and a ``calls`` table older
still (no ``front_door``) gets ``front_door VARCHAR(16) NOT NULL DEFAULT 'vonage'`` (its rows
were all Vonage calls). Timestamps are naive UTC (``TIMESTAMP WITHOUT TIME ZONE``).
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

log = logging.getLogger("vonage_bridge.migrations")

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``calls`` and ``transcript_entries`` where missing; add ``calls.front_door`` to an
    older table."""
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("calls"):
        op.create_table(
            "calls",
            sa.Column("call_uuid", sa.String(128), primary_key=True),
            sa.Column("conversation_uuid", sa.String(128), nullable=True),
            sa.Column("direction", sa.String(16), nullable=False),
            sa.Column("from_number", sa.String(64), nullable=True),
            sa.Column("to_number", sa.String(64), nullable=True),
            sa.Column("started_at", sa.DateTime(timezone=False), nullable=False),
            sa.Column("ended_at", sa.DateTime(timezone=False), nullable=False),
            sa.Column("duration_s", sa.Float, nullable=False),
            sa.Column("end_reason", sa.Text, nullable=False),
            sa.Column(
                "front_door", sa.String(16), nullable=False, server_default=sa.text("'vonage'")
            ),
        )
        op.create_index("ix_calls_started_at", "calls", ["started_at"])
    elif "front_door" not in {c["name"] for c in inspector.get_columns("calls")}:
        op.add_column(
            "calls",
            sa.Column(
                "front_door", sa.String(16), nullable=False, server_default=sa.text("'vonage'")
            ),
        )
        log.info("call store upgraded: added column calls.front_door")
    if not inspector.has_table("transcript_entries"):
        op.create_table(
            "transcript_entries",
            sa.Column(
                "call_uuid",
                sa.String(128),
                sa.ForeignKey("calls.call_uuid", ondelete="CASCADE"),
                primary_key=True,
            ),
            sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("role", sa.String(32), nullable=False),
            sa.Column("text", sa.Text, nullable=False),
            sa.Column("at", sa.DateTime(timezone=False), nullable=True),
        )


def downgrade() -> None:
    """Drop ``transcript_entries`` and ``calls`` (every record)."""
    op.drop_table("transcript_entries")
    op.drop_table("calls")
