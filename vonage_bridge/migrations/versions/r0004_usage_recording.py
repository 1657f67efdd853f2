"""Token usage, cost and recording per call: ``calls`` gains ``usage`` (JSON, OpenAI's usage
shape summed), ``cost_usd`` (float) and ``recording`` (JSON: url, seconds, bytes, format,
channels, rate_hz, status).

Backward compatible for one version: nullable columns the previous version neither reads nor
writes; older rows read back with them null. A column already there (a pre-migration build of
this feature added it with ``ALTER TABLE``) is left as it is.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from alembic import op

log = logging.getLogger("vonage_bridge.migrations")

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("usage", sa.JSON(none_as_null=True)),
    ("cost_usd", sa.Float()),
    ("recording", sa.JSON(none_as_null=True)),
)


def upgrade() -> None:
    """Add ``calls.usage``, ``cost_usd`` and ``recording`` where missing."""
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("calls")}
    for name, type_ in _COLUMNS:
        if name not in present:
            op.add_column("calls", sa.Column(name, type_, nullable=True))
            log.info("call store upgraded: added column calls.%s", name)


def downgrade() -> None:
    """Drop ``calls.recording``, ``cost_usd`` and ``usage``."""
    for name, _ in reversed(_COLUMNS):
        op.drop_column("calls", name)
