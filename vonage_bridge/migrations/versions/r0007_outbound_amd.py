"""The answering machine verdict of an outbound call, shared by the instances.

- ``outbound_calls`` gains the nullable column ``amd`` (``human`` / ``machine``): written by
  the instance the carrier's AMD event reached, read by the instance that writes the call's
  record, which may be another one. NULL until a verdict comes.

Backward compatible for one version: the previous version neither reads nor writes the new
column (nullable, no default needed). Skipped when the column is already there.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

log = logging.getLogger("vonage_bridge.migrations")

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``outbound_calls.amd`` unless it is there."""
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("outbound_calls")}
    if "amd" not in present:
        op.add_column("outbound_calls", sa.Column("amd", sa.String(16), nullable=True))
        log.info("call store upgraded: added column outbound_calls.amd")


def downgrade() -> None:
    """Drop ``outbound_calls.amd``."""
    op.drop_column("outbound_calls", "amd")
