"""Assistants, outbound calls and the operator console.

- ``calls`` gains four nullable columns: ``call_metadata`` (the ``POST /connect`` metadata,
  JSON text), ``amd`` (``human`` / ``machine``), ``assistant`` and ``assistant_version``
  (who answered). NULL on older rows.
- New tables ``assistants`` and ``assistant_numbers`` (one row per bound E.164 number), and
  ``console_operators`` and ``console_sessions`` (the operator console's accounts and
  server-side sessions).

Backward compatible for one version: the previous version neither reads nor writes the new
columns (nullable, no default needed) or tables. Each step is skipped when what it makes is
already there, so a database that a pre-migration build of these features (which created
them with ``create_all`` and ``ALTER TABLE``) touched is taken as it is.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from alembic import op

log = logging.getLogger("vonage_bridge.migrations")

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_CALL_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("call_metadata", sa.Text()),
    ("amd", sa.String(16)),
    ("assistant", sa.String(64)),
    ("assistant_version", sa.Integer()),
)


def upgrade() -> None:
    """Add the four ``calls`` columns and the assistant and console tables, each where missing."""
    inspector = sa.inspect(op.get_bind())
    present = {c["name"] for c in inspector.get_columns("calls")}
    for name, type_ in _CALL_COLUMNS:
        if name not in present:
            op.add_column("calls", sa.Column(name, type_, nullable=True))
            log.info("call store upgraded: added column calls.%s", name)
    if not inspector.has_table("assistants"):
        op.create_table(
            "assistants",
            sa.Column("name", sa.String(64), primary_key=True),
            sa.Column("version", sa.Integer, nullable=False),
            sa.Column("body", sa.Text, nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=False), nullable=False),
        )
    if not inspector.has_table("assistant_numbers"):
        op.create_table(
            "assistant_numbers",
            sa.Column("number", sa.String(16), primary_key=True),
            sa.Column(
                "assistant",
                sa.String(64),
                sa.ForeignKey("assistants.name", ondelete="CASCADE"),
                nullable=False,
            ),
        )
        op.create_index("ix_assistant_numbers_assistant", "assistant_numbers", ["assistant"])
    if not inspector.has_table("console_operators"):
        op.create_table(
            "console_operators",
            sa.Column("name", sa.String(64), primary_key=True),
            sa.Column("password_hash", sa.String(255), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
        )
    if not inspector.has_table("console_sessions"):
        op.create_table(
            "console_sessions",
            sa.Column("token_hash", sa.String(64), primary_key=True),
            sa.Column(
                "operator",
                sa.String(64),
                sa.ForeignKey("console_operators.name", ondelete="CASCADE"),
                nullable=False,
            ),
            sa.Column("csrf", sa.String(64), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
            sa.Column("expires_at", sa.DateTime(timezone=False), nullable=False),
        )
        op.create_index("ix_console_sessions_expires_at", "console_sessions", ["expires_at"])


def downgrade() -> None:
    """Drop the console and assistant tables and the four ``calls`` columns."""
    op.drop_table("console_sessions")
    op.drop_table("console_operators")
    op.drop_table("assistant_numbers")
    op.drop_table("assistants")
    for name, _ in reversed(_CALL_COLUMNS):
        op.drop_column("calls", name)
