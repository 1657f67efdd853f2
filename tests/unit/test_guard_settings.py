"""Settings and constants of the call guards: the Realtime stall timeout, and the shutdown
budget against the platform's kill timeout."""

from __future__ import annotations

from pathlib import Path

import pytest

from vonage_bridge.config import Settings
from vonage_bridge.errors import ConfigError


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "SERVER_URL": "abc.ngrok.app",
        "OPENAI_API_KEY": "sk-test-guards",
        "SYSTEM_MESSAGE_PATH": str(tmp_path / "no-such-file.txt"),
    }


def test_realtime_stall_timeout_defaults_to_15_s(env: dict[str, str]) -> None:
    assert Settings.from_env(env).openai.stall_timeout_s == 15.0


def test_realtime_stall_timeout_is_read_from_its_variable(env: dict[str, str]) -> None:
    env["REALTIME_STALL_TIMEOUT_S"] = "2.5"
    assert Settings.from_env(env).openai.stall_timeout_s == 2.5


@pytest.mark.parametrize("value", ["0", "-1", "abc", "601"])
def test_bad_realtime_stall_timeout_names_its_variable(env: dict[str, str], value: str) -> None:
    env["REALTIME_STALL_TIMEOUT_S"] = value
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert [p.split("=", 1)[0] for p in info.value.problems] == ["REALTIME_STALL_TIMEOUT_S"]
