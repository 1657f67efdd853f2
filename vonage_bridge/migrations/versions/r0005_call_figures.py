"""The call's figures on its record.

- ``calls`` gains the nullable column ``figures``: the call's figures as JSON text (reply
  latency median/p95, underruns, barge-ins; ``records.call_figures``). NULL on older rows.

Backward compatible for one version: the previous version neither reads nor writes the new
column (nullable, no default needed). Skipped when the column is already there.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

log = logging.getLogger("vonage_bridge.migrations")

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``calls.figures`` unless it is there."""
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("calls")}
    if "figures" not in present:
        op.add_column("calls", sa.Column("figures", sa.Text(), nullable=True))
        log.info("call store upgraded: added column calls.figures")


def downgrade() -> None:
    """Drop ``calls.figures``."""
    op.drop_column("calls", "figures")
