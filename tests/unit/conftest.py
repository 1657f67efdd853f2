"""Call-session fixtures shared by the unit tests of the pure core.

- ``base_env``: the smallest valid environment (no persona file); ``settings``: from it.
- ``new_session``: factory, ``new_session(info=CallInfo("call-1"), *, bridging=True,
  env=None, **call_session_kwargs)``. ``bridging`` brings it to BRIDGING as the shell does
  (``realtime_opened()``, then ``flush_held()`` until ``[]``) and drains the notes that made;
  ``env`` adds to or overrides ``base_env`` (``Settings.from_env`` errors propagate).
- ``session``: ``new_session()``: a Vonage call (L16 at ``caller_rate_hz``, default 16 kHz,
  resampled; Vonage's playback commands) unless ``path``/``commands`` are given, BRIDGING.
- ``sent``: ``sent(session)`` drains the session's Realtime client events, parsed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from vonage_bridge.audio.path import ResamplingPath
from vonage_bridge.config import Settings
from vonage_bridge.core.call_data import CallInfo
from vonage_bridge.core.session import CallSession, Phase
from vonage_bridge.vonage.wire import VONAGE_COMMANDS

CALL_1 = CallInfo("call-1")


@pytest.fixture
def base_env(tmp_path: Path) -> dict[str, str]:
    """The smallest valid environment; the persona file does not exist (default persona)."""
    return {
        "SERVER_URL": "http://127.0.0.1:3000",
        "OPENAI_API_KEY": "sk-test",
        "SYSTEM_MESSAGE_PATH": str(tmp_path / "none.txt"),
        "ALLOW_UNSIGNED_WEBHOOKS": "true",  # no signature secret: a local run
    }


@pytest.fixture
def settings(base_env: dict[str, str]) -> Settings:
    return Settings.from_env(base_env)


@pytest.fixture
def new_session(base_env: dict[str, str]) -> Callable[..., CallSession]:
    def make(
        info: CallInfo = CALL_1,
        *,
        bridging: bool = True,
        env: Mapping[str, str] | None = None,
        caller_rate_hz: int = 16_000,
        **kwargs: Any,
    ) -> CallSession:
        settings = Settings.from_env({**base_env, **(env or {})})
        kwargs.setdefault("path", ResamplingPath(caller_rate_hz, settings.call.resample_quality))
        kwargs.setdefault("commands", VONAGE_COMMANDS)
        session = CallSession(info, openai=settings.openai, call=settings.call, **kwargs)
        if bridging:
            session.realtime_opened()
            while session.flush_held():
                pass
            assert session.phase is Phase.BRIDGING
            session.drain_notes()
        return session

    return make


@pytest.fixture
def session(new_session: Callable[..., CallSession]) -> CallSession:
    return new_session()


@pytest.fixture
def sent() -> Callable[[CallSession], list[dict[str, Any]]]:
    def drain(session: CallSession) -> list[dict[str, Any]]:
        return [json.loads(e) for e in session.drain_realtime()]

    return drain
