"""Settings and constants of the call guards: the Realtime stall timeout, and the shutdown
budget against the platform's kill timeout."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from vonage_bridge.config import Settings
from vonage_bridge.errors import ConfigError
from vonage_bridge.web.lifecycle import SHUTDOWN_CANCEL_S, SHUTDOWN_DEADLINE_S, SHUTDOWN_HANGUP_S

FLY_TOML = Path(__file__).parents[2] / "fly.toml"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "SERVER_URL": "abc.ngrok.app",
        "OPENAI_API_KEY": "sk-test-guards",
        "ALLOW_UNSIGNED_WEBHOOKS": "true",
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


def test_shutdown_budget_fits_the_kill_timeout_of_fly_toml() -> None:
    """SIGTERM to SIGKILL is ``kill_timeout``: ending the calls must leave room for aiohttp
    to close what is left and for the cleanup contexts (HTTP client, store)."""
    kill_timeout = tomllib.loads(FLY_TOML.read_text())["kill_timeout"]
    assert kill_timeout.endswith("s")
    assert SHUTDOWN_DEADLINE_S <= float(kill_timeout[:-1]) - 5.0
    assert SHUTDOWN_HANGUP_S + SHUTDOWN_CANCEL_S < SHUTDOWN_DEADLINE_S
