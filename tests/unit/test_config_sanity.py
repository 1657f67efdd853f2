"""Start-up refuses the obvious mistakes of a first configuration, naming each variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from dotenv import dotenv_values

from vonage_bridge.config import Settings
from vonage_bridge.config_sanity import is_realtime_model
from vonage_bridge.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-proj-TESTKEY-0123456789abcdef"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "SERVER_URL": "abc.ngrok.app",
        "OPENAI_API_KEY": KEY,
        "SYSTEM_MESSAGE_PATH": str(tmp_path / "no-such-file.txt"),
        "ALLOW_UNSIGNED_WEBHOOKS": "true",
        "DATABASE_URL": "sqlite:///:memory:",
    }


def problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    return info.value.problems


def test_the_unedited_env_example_is_refused_naming_each_placeholder(tmp_path: Path) -> None:
    example = {k: v or "" for k, v in dotenv_values(ROOT / ".env.example").items()}
    example["DATABASE_URL"] = "sqlite:///:memory:"  # not the working tree's calls.db
    found = problems(example)
    assert any(p.startswith("SERVER_URL='abc123.ngrok.app': is the placeholder") for p in found)
    assert any(p.startswith("OPENAI_API_KEY=***: is the placeholder") for p in found)
    assert all("sk-..." not in p for p in found)  # the secret's value is never shown


def test_every_value_in_env_example_is_a_default_or_a_placeholder(env: dict[str, str]) -> None:
    """A new placeholder added to .env.example must be caught too: every other value in it
    starts the server (with the two required ones set)."""
    example = {k: v for k, v in dotenv_values(ROOT / ".env.example").items() if v}
    del example["SERVER_URL"], example["OPENAI_API_KEY"]
    example.pop("DATABASE_URL")
    Settings.from_env({**example, **env})


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("SERVER_URL", "https://abc123.ngrok.app/", "is the placeholder"),
        ("SERVER_URL", "my tunnel.ngrok.app", "contains white space"),
        ("SERVER_URL", "https://exa$mple.com", "is not a DNS name"),
        ("SERVER_URL", "https://example.com:70000", "port is not a number"),
        ("OPENAI_API_KEY", "<your key>", "looks like a placeholder"),
        ("CONNECT_API_KEY", "CHANGE-ME-PLEASE-0123", "looks like a placeholder"),
        ("OPENAI_MODEL", "gpt-4o", "is not a Realtime model"),
        ("OPENAI_MODEL", "whisper-1", "is not a Realtime model"),
        ("OPENAI_TRANSCRIPTION_LANGUAGE", "english", "e.g. 'en'"),
        ("OPENAI_TRANSCRIPTION_LANGUAGE", "en-US", "e.g. 'en'"),
        ("OPENAI_TRANSCRIPTION_LANGUAGE", "xx", "ISO-639-1"),
        ("CONNECT_API_KEY", "123", "shorter than 16 characters"),
        ("TRANSFER_NUMBER", "+14155550100", "no front door can transfer"),
    ],
)
def test_an_obvious_mistake_is_refused_naming_the_variable(
    env: dict[str, str], name: str, value: str, reason: str
) -> None:
    found = problems({**env, name: value})
    assert len(found) == 1, found
    assert found[0].startswith(name) and reason in found[0]
    if name in ("OPENAI_API_KEY", "CONNECT_API_KEY"):
        assert value not in found[0]


def test_all_mistakes_are_named_at_once(env: dict[str, str]) -> None:
    found = problems(
        {
            **env,
            "SERVER_URL": "abc123.ngrok.app",
            "OPENAI_API_KEY": "sk-...",
            "OPENAI_MODEL": "gpt-4o",
            "OPENAI_TRANSCRIPTION_LANGUAGE": "english",
            "CONNECT_API_KEY": "123",
        }
    )
    names = sorted(p.split("=", 1)[0] for p in found)
    assert names == sorted(
        [
            "SERVER_URL",
            "OPENAI_API_KEY",
            "OPENAI_MODEL",
            "OPENAI_TRANSCRIPTION_LANGUAGE",
            "CONNECT_API_KEY",
        ]
    )


@pytest.mark.parametrize(
    "model",
    [
        "gpt-realtime",
        "gpt-realtime-mini",
        "gpt-realtime-2025-08-28",
        "gpt-4o-realtime-preview",
        "gpt-4o-mini-realtime-preview-2024-12-17",
    ],
)
def test_realtime_models_start(env: dict[str, str], model: str) -> None:
    assert Settings.from_env({**env, "OPENAI_MODEL": model}).openai.model == model


def test_model_check_off_lets_a_new_name_through(env: dict[str, str]) -> None:
    assert not is_realtime_model("gpt-6-voice")
    settings = Settings.from_env(
        {**env, "OPENAI_MODEL": "gpt-6-voice", "OPENAI_MODEL_CHECK": "off"}
    )
    assert settings.openai.model == "gpt-6-voice"
    assert settings.setup.model_check is False


def test_azure_deployment_name_is_only_a_warning(env: dict[str, str]) -> None:
    settings = Settings.from_env(
        {**env, "OPENAI_MODEL": "my-voice-deployment", "OPENAI_API_VERSION": "2025-04-01"}
    )
    assert any(w.startswith("OPENAI_MODEL='my-voice-deployment'") for w in settings.warnings)


def test_a_key_not_like_openais_is_a_warning_without_the_key(env: dict[str, str]) -> None:
    settings = Settings.from_env({**env, "OPENAI_API_KEY": "local-server-key-123"})
    assert any(w.startswith("OPENAI_API_KEY=***") for w in settings.warnings)
    assert all("local-server-key-123" not in w for w in settings.warnings)


def test_valid_language_and_long_key_start(env: dict[str, str]) -> None:
    settings = Settings.from_env(
        {**env, "OPENAI_TRANSCRIPTION_LANGUAGE": "de", "CONNECT_API_KEY": "0123456789abcdef"}
    )
    assert settings.openai.transcription_language == "de"


@pytest.mark.parametrize(
    "extra",
    [
        {"OPENAI_WEBHOOK_SECRET": "whsec_dGVzdHNlY3JldA=="},  # SIP REFER
        {"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "token-0123456789"},
    ],
)
def test_transfer_number_with_a_way_to_transfer_starts(
    env: dict[str, str], extra: dict[str, str]
) -> None:
    settings = Settings.from_env({**env, "TRANSFER_NUMBER": "+14155550100", **extra})
    assert settings.call.transfer_number == "14155550100"


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("OPENAI_MODEL_CHECK", "maybe", "must be true or false"),
        ("TWILIO_PHONE_NUMBER", "12", "is not an E.164 phone number"),
    ],
)
def test_the_new_settings_name_an_invalid_value(
    env: dict[str, str], name: str, value: str, reason: str
) -> None:
    found = problems({**env, name: value})
    assert any(p.startswith(f"{name}={value!r}: {reason}") for p in found), found
