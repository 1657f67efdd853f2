"""scripts/bootstrap.sh checks the Python version first: with a Python 3.10 on PATH, both
README commands stop at once with one line naming the version found and the one needed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def python_310(tmp_path: Path) -> dict[str, str]:
    fake = tmp_path / "bin" / "python3"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\necho "Python 3.10.12"\n', encoding="utf-8")
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "PYTHON"}
    env["PATH"] = f"{fake.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.mark.parametrize("script", ["scripts/sim.sh", "scripts/test.sh"])
def test_python_310_gets_one_line_naming_both_versions(
    python_310: dict[str, str], script: str
) -> None:
    venv_before = (ROOT / ".venv").exists()
    done = subprocess.run(
        ["bash", script], cwd=ROOT, env=python_310, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, lines
    assert "Python 3.10.12" in lines[0] and ">= 3.11" in lines[0]
    assert (ROOT / ".venv").exists() == venv_before  # nothing was created


def test_a_missing_python_is_named(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON": str(tmp_path / "no-python")}
    done = subprocess.run(
        ["bash", "scripts/bootstrap.sh"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "no-python" in done.stderr and ">= 3.11" in done.stderr


def test_a_venv_left_by_an_older_python_is_named(tmp_path: Path) -> None:
    """A .venv made by Python 3.10 (a first try) is not reused: the line says what to do."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "bootstrap.sh", tmp_path / "scripts")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    old = tmp_path / ".venv" / "bin" / "python"
    old.parent.mkdir(parents=True)
    old.write_text('#!/bin/sh\necho "Python 3.10.12"\n', encoding="utf-8")
    old.chmod(0o755)
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", "scripts/bootstrap.sh"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "bootstrap: .venv/bin/python is Python 3.10.12 (made by an older Python); "
        "remove it (rm -rf .venv) and run this again"
    ]
