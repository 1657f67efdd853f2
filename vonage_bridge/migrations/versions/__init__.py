"""The Alembic revisions of the call store, oldest first (``r0001`` ...)."""
