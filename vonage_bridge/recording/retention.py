"""Deleting recordings older than ``RECORDING_RETENTION_DAYS``. Shell: touches files.

Run at start-up and then daily (``web.recordings``), in a worker thread. Only the files a
recorder writes are considered: ``*.wav`` and unfinished ``*.wav.part`` directly in the
recordings folder, by their modification time (when their last audio was written).
"""

from __future__ import annotations

import logging
from pathlib import Path

from .wav import PARTIAL_SUFFIX, SUFFIX

log = logging.getLogger(__name__)

DAY_S = 86_400.0


def delete_old_recordings(directory: Path, days: int, now: float) -> list[Path]:
    """Delete the recordings in ``directory`` last written more than ``days`` days before
    ``now`` (Unix time, s); ``days=0`` keeps everything.

    Returns:
        The files deleted. A file that cannot be deleted is logged (WARNING) and skipped; a
        missing folder deletes nothing.
    """
    if days <= 0 or not directory.is_dir():
        return []
    cutoff = now - days * DAY_S
    deleted: list[Path] = []
    for path in directory.iterdir():
        if not (path.name.endswith(SUFFIX) or path.name.endswith(PARTIAL_SUFFIX)):
            continue
        try:
            if not path.is_file() or path.stat().st_mtime >= cutoff:
                continue
            path.unlink()
        except OSError as exc:
            log.warning("recording %s not deleted: %s", path.name, exc.strerror or exc)
            continue
        deleted.append(path)
    return deleted
