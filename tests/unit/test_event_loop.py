"""``EVENT_LOOP``: the setting, and which ``asyncio.Runner`` loop factory ``__main__`` picks.

Pure: nothing here creates or runs an event loop (the loop really run is checked end to end in
``tests/integration/test_startup_event_loop.py``).
"""

from __future__ import annotations

import sys

import pytest

from vonage_bridge.__main__ import EXIT_CONFIG, ExitError, loop_factory
from vonage_bridge.config import Settings
from vonage_bridge.errors import ConfigError


def test_event_loop_defaults_to_auto(base_env: dict[str, str]) -> None:
    assert Settings.from_env(base_env).server.event_loop == "auto"


@pytest.mark.parametrize(
    ("value", "expected"), [("asyncio", "asyncio"), (" UVLOOP ", "uvloop"), ("Auto", "auto")]
)
def test_event_loop_accepts_the_three_choices_in_any_case(
    base_env: dict[str, str], value: str, expected: str
) -> None:
    settings = Settings.from_env({**base_env, "EVENT_LOOP": value})
    assert settings.server.event_loop == expected


def test_unknown_event_loop_is_a_config_error_naming_it(base_env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**base_env, "EVENT_LOOP": "tokio"})
    assert caught.value.problems == ["EVENT_LOOP='tokio': must be one of auto, asyncio, uvloop"]


def test_asyncio_choice_is_asyncio_own_loop() -> None:
    assert loop_factory("asyncio") is None


@pytest.mark.parametrize("choice", ["auto", "uvloop"])
def test_auto_and_uvloop_pick_uvloop_when_installed(choice: str) -> None:
    uvloop = pytest.importorskip("uvloop")
    assert loop_factory(choice) is uvloop.new_event_loop


def test_without_uvloop_auto_falls_back_and_uvloop_is_exit_2(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError

    assert loop_factory("auto") is None
    with pytest.raises(ExitError) as caught:
        loop_factory("uvloop")
    assert caught.value.status == EXIT_CONFIG
    assert caught.value.message.startswith("EVENT_LOOP='uvloop' but uvloop cannot be imported")
