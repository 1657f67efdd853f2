"""``vonage-bridge --version`` and ``--help``, whose variables come from the settings model."""

from __future__ import annotations

import pytest

from vonage_bridge import __version__
from vonage_bridge.__main__ import main
from vonage_bridge.cli_help import default_text
from vonage_bridge.config import _FIELDS


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    assert info.value.code == 0
    return capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--version").strip() == f"vonage-bridge {__version__}"


def test_help_lists_every_variable_with_its_model_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = run(capsys, "--help")
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("    ")}
    assert set(_FIELDS) <= set(lines)
    for name, field in _FIELDS.items():
        assert lines[name].split(None, 1)[1].strip() == default_text(field)
    assert lines["PORT"].split()[1] == "3000"
    assert lines["OPENAI_MODEL"].split()[1] == "gpt-realtime"
    assert lines["SERVER_URL"].split()[1] == "required"
    assert lines["TRANSFER_NUMBER"].split()[1] == "unset"
    assert "doctor" in out
