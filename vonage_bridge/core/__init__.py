"""The pure core: the call session, its events, assistants, limits and request parsing (no I/O)."""
