"""Scaling settings: DRAIN_TIMEOUT_S, INSTANCE_COUNT, WORKERS and what they require."""

from __future__ import annotations

from pathlib import Path

import pytest

from vonage_bridge.config import Settings
from vonage_bridge.errors import ConfigError

PG = "postgresql://app:pw@db.internal:5432/calls"
SECRET = "s" * 32


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "SERVER_URL": "abc.ngrok.app",
        "OPENAI_API_KEY": "sk-test-" + "x" * 20,
        "SYSTEM_MESSAGE_PATH": str(tmp_path / "no-such-file.txt"),
        "ALLOW_UNSIGNED_WEBHOOKS": "true",
    }


def test_defaults(env: dict[str, str]) -> None:
    scale = Settings.from_env(env).scale
    assert (scale.drain_timeout_s, scale.instance_count, scale.workers) == (240.0, 1, 1)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DRAIN_TIMEOUT_S", "-1"),
        ("DRAIN_TIMEOUT_S", "x"),
        ("INSTANCE_COUNT", "0"),
        ("WORKERS", "65"),
    ],
)
def test_bad_values_name_their_variable(env: dict[str, str], name: str, value: str) -> None:
    env[name] = value
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert [p.split("=", 1)[0] for p in info.value.problems] == [name]


@pytest.mark.parametrize(
    "extra",
    [{"INSTANCE_COUNT": "2"}, {"WORKERS": "2"}, {"FLY_MACHINE_ID": "148ed21a"}],
)
def test_postgresql_and_several_instances_need_a_shared_media_token_secret(
    env: dict[str, str], extra: dict[str, str]
) -> None:
    env.update(DATABASE_URL=PG, **extra)
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    (problem,) = info.value.problems
    assert problem.startswith("MEDIA_TOKEN_SECRET is required with PostgreSQL")
    assert "pw" not in problem
    env["MEDIA_TOKEN_SECRET"] = SECRET
    assert Settings.from_env(env).server.media_token_secret_is_random is False


def test_one_instance_on_postgresql_may_keep_a_random_secret(env: dict[str, str]) -> None:
    env["DATABASE_URL"] = PG
    assert Settings.from_env(env).server.media_token_secret_is_random is True


def test_sqlite_with_several_instances_is_a_warning_saying_why(env: dict[str, str]) -> None:
    env["INSTANCE_COUNT"] = "3"
    settings = Settings.from_env(env)
    (warning,) = [w for w in settings.warnings if "INSTANCE_COUNT" in w]
    assert "SQLite" in warning and "PostgreSQL" in warning
    env["INSTANCE_COUNT"] = "1"
    assert not [w for w in Settings.from_env(env).warnings if "INSTANCE_COUNT" in w]
