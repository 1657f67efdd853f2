"""requirements.lock pins every runtime dependency of pyproject.toml, with hashes, and the
Dockerfile installs from it (reproducible images)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    """PEP 503 normalisation: lower case, runs of ``-_.`` as one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked() -> dict[str, str]:
    """name -> the whole entry (pin, marker, hashes) of requirements.lock."""
    text = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    entries: dict[str, str] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        match = _NAME.match(block)
        if match and "==" in block.split("\\", 1)[0]:
            entries[canonical(match.group(1))] = block
    return entries


def test_every_runtime_dependency_is_pinned_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    entries = locked()
    names = []
    for dependency in project["dependencies"]:
        match = _NAME.match(dependency)
        assert match is not None, dependency
        names.append(canonical(match.group(1)))
    missing = [n for n in names if n not in entries]
    assert missing == [], f"re-run pip-compile (README, Reproducible images): {missing}"
    for name, entry in entries.items():
        assert "--hash=sha256:" in entry, name
    assert "greenlet" in entries  # SQLAlchemy[asyncio]'s extra is locked too


def test_the_dockerfile_installs_the_lock_with_hashes() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "pip install --require-hashes --no-deps -r /tmp/src/requirements.lock" in dockerfile
    assert "pip install --no-deps /tmp/src" in dockerfile
    fly = tomllib.loads((ROOT / "fly.toml").read_text(encoding="utf-8"))
    assert fly["mounts"]["destination"] == "/app/data"
    assert fly["env"]["DATABASE_URL"].startswith("sqlite:////app/data/")
