"""Settings.from_env: defaults, every bad variable named at once, secrets kept out of text."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import ValidationError

from vonage_bridge.config import DEFAULT_SYSTEM_MESSAGE, PublicUrl, Settings, TwilioSettings
from vonage_bridge.errors import ConfigError

API_KEY = "sk-proj-TESTKEY-0123456789abcdef"
MEDIA_SECRET = "media-secret-0123456789-abcdef"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The minimal valid environment; the system message file does not exist."""
    return {
        "SERVER_URL": "abc.ngrok.app",
        "OPENAI_API_KEY": API_KEY,
        "SYSTEM_MESSAGE_PATH": str(tmp_path / "no-such-file.txt"),
        "ALLOW_UNSIGNED_WEBHOOKS": "true",  # no signature secret: a local run
    }


def problem_names(exc: ConfigError) -> list[str]:
    """The variable each problem is about (text before ``=`` or the first space)."""
    return [p.split("=", 1)[0].split(" ", 1)[0] for p in exc.problems]


def test_settings_minimal_env_uses_documented_defaults(env: dict[str, str]) -> None:
    s = Settings.from_env(env)
    assert s.server.port == 3000
    assert s.server.host == "0.0.0.0"
    assert s.openai.api_key.get_secret_value() == API_KEY
    assert s.openai.model == "gpt-realtime"
    assert s.openai.voice == "marin"
    assert s.openai.base_url == "https://api.openai.com/v1"
    assert s.openai.realtime_url == "wss://api.openai.com/v1/realtime"
    assert s.call.resample_quality == "LQ"
    assert s.call.playout_lookahead_ms == 240
    assert s.call.realtime_append_ms == 20
    assert s.call.system_message == DEFAULT_SYSTEM_MESSAGE


def test_settings_without_media_token_secret_uses_a_random_32_byte_secret(
    env: dict[str, str],
) -> None:
    a = Settings.from_env(env)
    b = Settings.from_env(env)
    assert a.server.media_token_secret_is_random
    assert len(a.server.media_token_secret.get_secret_value()) == 32
    assert a.server.media_token_secret != b.server.media_token_secret


def test_settings_several_bad_variables_give_one_error_naming_each(env: dict[str, str]) -> None:
    del env["OPENAI_API_KEY"]
    env.update({"PORT": "abc", "OPENAI_VOICE": "nobody", "VAD_THRESHOLD": "2"})
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    names = problem_names(info.value)
    assert sorted(names) == sorted(["PORT", "OPENAI_VOICE", "VAD_THRESHOLD", "OPENAI_API_KEY"])
    text = str(info.value)
    for name in names:
        assert name in text


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "0"),
        ("PORT", "70000"),
        ("OPENAI_BASE_URL", "api.openai.com/v1"),
        ("RESAMPLE_QUALITY", "best"),
        ("PLAYOUT_LOOKAHEAD_MS", "20"),
        ("REALTIME_APPEND_MS", "30"),
        ("REALTIME_APPEND_MS", "60"),
        ("REALTIME_APPEND_MS", "0"),
        ("VAD_SILENCE_MS", "ten"),
        ("LOG_LEVEL", "LOUD"),
        ("SERVER_URL", "ftp://x"),
        ("SERVER_URL", "https://abc.ngrok.app/?a=1"),
        ("CLIENT_IP_HEADER", "Fly Client IP"),
        ("VONAGE_AUDIO_RATE", "44100"),
        ("VONAGE_AUDIO_RATE", "16k"),
        ("CLIENT_IP_HEADER", "X-Forwarded-For: 1.2.3.4"),
    ],
)
def test_settings_bad_value_names_its_variable(env: dict[str, str], name: str, value: str) -> None:
    env[name] = value
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert problem_names(info.value) == [name]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_duration_that_is_not_a_finite_number_says_so(env: dict[str, str], value: str) -> None:
    env["OPENAI_CONNECT_TIMEOUT_S"] = value
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert problem_names(info.value) == ["OPENAI_CONNECT_TIMEOUT_S"]
    assert "finite number" in str(info.value)


def test_settings_repr_hides_api_key_and_media_secret(env: dict[str, str]) -> None:
    env["MEDIA_TOKEN_SECRET"] = MEDIA_SECRET
    s = Settings.from_env(env)
    assert s.server.media_token_secret.get_secret_value() == MEDIA_SECRET.encode()
    for text in (repr(s), str(s), repr(s.openai), repr(s.server)):
        assert API_KEY not in text
        assert MEDIA_SECRET not in text
    assert "gpt-realtime" in repr(s)  # repr still shows the rest


def test_config_error_text_never_contains_the_api_key(env: dict[str, str]) -> None:
    env.update({"PORT": "abc", "MEDIA_TOKEN_SECRET": MEDIA_SECRET})
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert problem_names(info.value) == ["PORT"]
    text = str(info.value) + repr(info.value) + "".join(info.value.problems)
    assert API_KEY not in text
    assert MEDIA_SECRET not in text


@pytest.mark.parametrize(
    ("value", "http", "ws"),
    [
        ("abc.ngrok.app", "https://abc.ngrok.app", "wss://abc.ngrok.app"),
        ("  abc.ngrok.app  ", "https://abc.ngrok.app", "wss://abc.ngrok.app"),
        ("abc.ngrok.app/", "https://abc.ngrok.app", "wss://abc.ngrok.app"),
        ("https://abc.ngrok.app/", "https://abc.ngrok.app", "wss://abc.ngrok.app"),
        ("https://abc.ngrok.app/base/", "https://abc.ngrok.app/base", "wss://abc.ngrok.app/base"),
        ("http://127.0.0.1:3000", "http://127.0.0.1:3000", "ws://127.0.0.1:3000"),
        ("http://127.0.0.1:3000/", "http://127.0.0.1:3000", "ws://127.0.0.1:3000"),
        ("wss://abc.ngrok.app", "https://abc.ngrok.app", "wss://abc.ngrok.app"),
        ("ws://localhost:8080", "http://localhost:8080", "ws://localhost:8080"),
    ],
)
def test_public_url_parse_gives_http_and_ws_forms(value: str, http: str, ws: str) -> None:
    url = PublicUrl.parse(value)
    assert (url.http, url.ws) == (http, ws)


@pytest.mark.parametrize(
    "value", ["ftp://x", "https://", "https://host/path?q=1", "https://host/#frag"]
)
def test_public_url_parse_rejects_bad_values(value: str) -> None:
    with pytest.raises(ValueError):
        PublicUrl.parse(value)


def test_settings_server_url_from_env_is_parsed(env: dict[str, str]) -> None:
    env["SERVER_URL"] = "http://127.0.0.1:3000/"
    url = Settings.from_env(env).server.public_url
    assert url == PublicUrl(http="http://127.0.0.1:3000", ws="ws://127.0.0.1:3000")


@pytest.mark.parametrize(
    ("base", "realtime"),
    [
        ("http://127.0.0.1:9/v1", "ws://127.0.0.1:9/v1/realtime"),
        ("http://127.0.0.1:9/v1/", "ws://127.0.0.1:9/v1/realtime"),
        ("https://api.openai.com/v1", "wss://api.openai.com/v1/realtime"),
    ],
)
def test_openai_realtime_url_swaps_scheme_and_appends_realtime(
    env: dict[str, str], base: str, realtime: str
) -> None:
    env["OPENAI_BASE_URL"] = base
    assert Settings.from_env(env).openai.realtime_url == realtime


def test_system_message_missing_file_gives_default(env: dict[str, str]) -> None:
    assert not Path(env["SYSTEM_MESSAGE_PATH"]).exists()
    assert Settings.from_env(env).call.system_message == DEFAULT_SYSTEM_MESSAGE


def test_system_message_empty_file_gives_default(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("  \n\n", encoding="utf-8")
    env["SYSTEM_MESSAGE_PATH"] = str(path)
    assert Settings.from_env(env).call.system_message == DEFAULT_SYSTEM_MESSAGE


def test_system_message_existing_file_gives_its_stripped_text(
    env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "persona.txt"
    path.write_text("\n  You are Ada, a pirate receptionist.\nSpeak briefly.  \n\n", "utf-8")
    env["SYSTEM_MESSAGE_PATH"] = str(path)
    assert (
        Settings.from_env(env).call.system_message
        == "You are Ada, a pirate receptionist.\nSpeak briefly."
    )


def test_system_message_unreadable_file_names_its_variable(
    env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"caf\xe9 \xff\xfe")
    env["SYSTEM_MESSAGE_PATH"] = str(path)
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert problem_names(info.value) == ["SYSTEM_MESSAGE_PATH"]


@pytest.mark.parametrize(("value", "expected"), [("none", None), ("NONE", None)])
def test_settings_transcription_model_none_disables_transcription(
    env: dict[str, str], value: str, expected: str | None
) -> None:
    env["OPENAI_TRANSCRIPTION_MODEL"] = value
    assert Settings.from_env(env).openai.transcription_model is expected


def test_settings_voice_is_case_insensitive(env: dict[str, str]) -> None:
    env["OPENAI_VOICE"] = "Cedar"
    assert Settings.from_env(env).openai.voice == "cedar"


def test_settings_short_media_token_secret_names_its_variable(env: dict[str, str]) -> None:
    env["MEDIA_TOKEN_SECRET"] = "short"
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert problem_names(info.value) == ["MEDIA_TOKEN_SECRET"]


def test_settings_faq_kb_json_fills_the_placeholder(env: dict[str, str], tmp_path: Path) -> None:
    persona = tmp_path / "persona.txt"
    persona.write_text("You answer for Acme.\n\n{FAQ_KB}\n\nThe caller is {caller}.")
    kb = tmp_path / "faq.json"
    kb.write_text(
        '[{"question": "Opening hours?", "answer": "9 to 5."}, {"q": "Parking?", "a": "Yes."}]'
    )
    settings = Settings.from_env(
        {**env, "SYSTEM_MESSAGE_PATH": str(persona), "FAQ_KB_PATH": str(kb)}
    )
    text = settings.call.system_message
    assert "Q: Opening hours?\nA: 9 to 5.\n\nQ: Parking?\nA: Yes." in text
    assert "{FAQ_KB}" not in text and "{caller}" in text  # {caller} is filled per call


def test_settings_faq_kb_without_placeholder_is_appended_not_dropped(
    env: dict[str, str], tmp_path: Path
) -> None:
    kb = tmp_path / "faq.txt"
    kb.write_text("We close on Sundays.")
    settings = Settings.from_env({**env, "FAQ_KB_PATH": str(kb)})
    assert settings.call.system_message.endswith("We close on Sundays.")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "file not found"),
        ("{not json", "not valid JSON"),
        ('{"question": "x"}', "JSON list"),
        ('[{"question": "x"}]', "entry 0"),
    ],
)
def test_settings_bad_faq_kb_names_the_variable(
    env: dict[str, str], tmp_path: Path, content: str | None, problem: str
) -> None:
    kb = tmp_path / "faq.json"
    if content is not None:
        kb.write_text(content)
    with pytest.raises(ConfigError) as info:
        Settings.from_env({**env, "FAQ_KB_PATH": str(kb)})
    assert any(p.startswith("FAQ_KB_PATH") and problem in p for p in info.value.problems)


# --- Twilio ------------------------------------------------------------------------------------

TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "twilio-auth-token-0123456789abcdef"


def test_settings_without_twilio_variables_leave_the_front_door_off(env: dict[str, str]) -> None:
    twilio = Settings.from_env(env).twilio
    assert twilio == TwilioSettings()
    assert not twilio.enabled and not twilio.verify
    assert twilio.api_url == "https://api.twilio.com"


def test_settings_twilio_sid_and_token_turn_the_front_door_and_verification_on(
    env: dict[str, str],
) -> None:
    env.update(
        {
            "TWILIO_ACCOUNT_SID": f"  {TWILIO_SID} ",
            "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "TWILIO_API_URL": "http://127.0.0.1:8123/",
            "TWILIO_API_TIMEOUT_S": "2.5",
        }
    )
    twilio = Settings.from_env(env).twilio
    assert twilio.account_sid == TWILIO_SID
    assert twilio.auth_token is not None
    assert twilio.auth_token.get_secret_value() == TWILIO_TOKEN
    assert twilio.api_url == "http://127.0.0.1:8123"
    assert twilio.api_timeout_s == 2.5
    assert twilio.enabled and twilio.verify


def test_settings_twilio_sid_without_token_mounts_without_verification(
    env: dict[str, str],
) -> None:
    env["TWILIO_ACCOUNT_SID"] = TWILIO_SID
    twilio = Settings.from_env(env).twilio
    assert twilio.enabled and not twilio.verify


def test_settings_twilio_token_without_sid_names_the_account_sid(env: dict[str, str]) -> None:
    env["TWILIO_AUTH_TOKEN"] = TWILIO_TOKEN
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert problem_names(info.value) == ["TWILIO_ACCOUNT_SID"]
    assert TWILIO_TOKEN not in str(info.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TWILIO_ACCOUNT_SID", "AC123"),
        ("TWILIO_ACCOUNT_SID", "CA" + "0" * 32),
        ("TWILIO_ACCOUNT_SID", "AC" + "g" * 32),
        ("TWILIO_AUTH_TOKEN", "   "),
        ("TWILIO_API_URL", "api.twilio.com"),
        ("TWILIO_API_TIMEOUT_S", "0"),
    ],
)
def test_settings_bad_twilio_value_names_its_variable(
    env: dict[str, str], name: str, value: str
) -> None:
    env.update({"TWILIO_ACCOUNT_SID": TWILIO_SID, "TWILIO_AUTH_TOKEN": TWILIO_TOKEN})
    env[name] = value
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert problem_names(info.value) == [name]


def test_settings_twilio_auth_token_stays_out_of_repr_and_errors(env: dict[str, str]) -> None:
    env.update({"TWILIO_ACCOUNT_SID": TWILIO_SID, "TWILIO_AUTH_TOKEN": TWILIO_TOKEN})
    s = Settings.from_env(env)
    for text in (repr(s), str(s), repr(s.twilio)):
        assert TWILIO_TOKEN not in text
    assert TWILIO_SID in repr(s.twilio)  # the rest is still shown
    env.update({"TWILIO_AUTH_TOKEN": " \t ", "PORT": "abc"})
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert "TWILIO_AUTH_TOKEN=***" in str(info.value)


# --- webhook verification is the default --------------------------------------------------

SIGNATURE_SECRET = "vonage-signature-SECRET-0123456789"


def test_settings_without_a_signature_secret_need_the_opt_out(env: dict[str, str]) -> None:
    del env["ALLOW_UNSIGNED_WEBHOOKS"]
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert problem_names(info.value) == ["VONAGE_SIGNATURE_SECRET"]
    assert "ALLOW_UNSIGNED_WEBHOOKS=true" in info.value.problems[0]
    signed = Settings.from_env({**env, "VONAGE_SIGNATURE_SECRET": SIGNATURE_SECRET})
    assert not signed.webhooks.allow_unsigned
    assert signed.webhooks.unsigned_calls_per_minute == 60


def test_settings_twilio_without_auth_token_needs_the_opt_out(env: dict[str, str]) -> None:
    env.update({"ALLOW_UNSIGNED_WEBHOOKS": "false", "TWILIO_ACCOUNT_SID": TWILIO_SID})
    env["VONAGE_SIGNATURE_SECRET"] = SIGNATURE_SECRET
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert problem_names(info.value) == ["TWILIO_AUTH_TOKEN"]
    env["TWILIO_AUTH_TOKEN"] = TWILIO_TOKEN
    assert Settings.from_env(env).twilio.verify


@pytest.mark.parametrize("value", ["true", "TRUE", "1", "yes", "on"])
def test_settings_opt_out_values(env: dict[str, str], value: str) -> None:
    env.update({"ALLOW_UNSIGNED_WEBHOOKS": value, "UNSIGNED_CALLS_PER_MINUTE": "5"})
    s = Settings.from_env(env)
    assert s.webhooks.allow_unsigned and s.webhooks.unsigned_calls_per_minute == 5


def test_settings_bad_opt_out_is_named_with_the_missing_secret(env: dict[str, str]) -> None:
    env.update({"ALLOW_UNSIGNED_WEBHOOKS": "maybe", "UNSIGNED_CALLS_PER_MINUTE": "0"})
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert sorted(problem_names(info.value)) == [
        "ALLOW_UNSIGNED_WEBHOOKS",
        "UNSIGNED_CALLS_PER_MINUTE",
        "VONAGE_SIGNATURE_SECRET",  # an invalid opt-out is no opt-out
    ]
    assert SIGNATURE_SECRET not in str(info.value)


# --- one message naming every problem; secrets hidden, paths shown ---------------------------


def test_settings_every_bad_variable_is_one_line_with_its_value(
    env: dict[str, str], tmp_path: Path
) -> None:
    missing_key = str(tmp_path / "missing.key")
    env.update(
        {
            "PORT": "abc",
            "VAD_THRESHOLD": "2",
            "OPENAI_VOICE": "nobody",
            "MEDIA_TOKEN_SECRET": "short",
            "VONAGE_PRIVATE_KEY_PATH": missing_key,
            "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "DTMF_TO_MODEL": "maybe",
            "DATABASE_URL": "postgresql://bridge:hunter2@db.internal/",
        }
    )
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    problems = info.value.problems
    assert sorted(problem_names(info.value)) == sorted(
        [
            "PORT",
            "VAD_THRESHOLD",
            "OPENAI_VOICE",
            "MEDIA_TOKEN_SECRET",
            "VONAGE_PRIVATE_KEY_PATH",
            "TWILIO_ACCOUNT_SID",
            "DTMF_TO_MODEL",
            "DATABASE_URL",
        ]
    )
    assert "PORT='abc': is not an integer" in problems
    assert "VAD_THRESHOLD='2': must be between 0.0 and 1.0" in problems
    assert "MEDIA_TOKEN_SECRET=***: must be at least 16 bytes long" in problems
    assert "DTMF_TO_MODEL='maybe': must be true or false" in problems
    assert f"VONAGE_PRIVATE_KEY_PATH={missing_key!r}: cannot be read (FileNotFoundError)" in (
        problems
    )
    assert any(p.startswith("OPENAI_VOICE='nobody': must be one of alloy") for p in problems)
    # a URL is shown with its password masked
    assert any(
        p.startswith("DATABASE_URL='postgresql://bridge:***@db.internal/'") for p in problems
    )
    text = str(info.value)
    assert "hunter2" not in text and TWILIO_TOKEN not in text
    assert "Input should be" not in text  # our words, not pydantic's


SECRET_VALUES = {
    "OPENAI_API_KEY": "   ",  # blank: an error, shown as ***
    "MEDIA_TOKEN_SECRET": "secret-15-bytes",
    "VONAGE_PRIVATE_KEY": "not-a-pem-SECRET-0123456789",
    "TWILIO_AUTH_TOKEN": " \t ",
    "OPENAI_WEBHOOK_SECRET": "whsec_!!SECRET-not-base64",
}


def test_settings_secret_values_never_appear_in_problems(env: dict[str, str]) -> None:
    env.update(SECRET_VALUES)
    env["TWILIO_ACCOUNT_SID"] = TWILIO_SID
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert sorted(problem_names(info.value)) == sorted(SECRET_VALUES)
    for name in SECRET_VALUES:
        assert any(p.startswith(f"{name}=***: ") for p in info.value.problems), name
    text = str(info.value) + repr(info.value)
    for value in SECRET_VALUES.values():
        if value.strip():
            assert value not in text


def test_settings_secret_values_never_appear_in_repr(env: dict[str, str]) -> None:
    secrets = {
        "MEDIA_TOKEN_SECRET": MEDIA_SECRET,
        "CONNECT_API_KEY": "connect-key-SECRET-0123",
        "VONAGE_SIGNATURE_SECRET": "signature-SECRET-0123",
        "TWILIO_ACCOUNT_SID": TWILIO_SID,
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "OPENAI_WEBHOOK_SECRET": "whsec_" + "c2VjcmV0LWtleS1ieXRlcw==",
    }
    settings = Settings.from_env({**env, **secrets})
    text = repr(settings) + str(settings) + "".join(repr(getattr(settings, g)) for g in GROUPS)
    for name, value in [*secrets.items(), ("OPENAI_API_KEY", API_KEY)]:
        if name != "TWILIO_ACCOUNT_SID":
            assert value not in text, name
    assert TWILIO_SID in text  # the rest is still shown
    assert settings.sip.webhook_secret is not None and settings.vonage.connect_api_key is not None
    assert settings.vonage.connect_api_key.get_secret_value() == "connect-key-SECRET-0123"


GROUPS = ("server", "openai", "call", "log", "vonage", "store", "sip", "twilio", "webhooks")


def test_settings_bad_paths_are_shown(env: dict[str, str], tmp_path: Path) -> None:
    kb = str(tmp_path / "no-faq.json")
    db = f"sqlite:///{tmp_path}/no-dir/calls.db"
    with pytest.raises(ConfigError) as info:
        Settings.from_env({**env, "FAQ_KB_PATH": kb, "DATABASE_URL": db})
    assert f"FAQ_KB_PATH={kb!r}: file not found" in info.value.problems
    assert any(p.startswith(f"DATABASE_URL={db!r}: directory") for p in info.value.problems)


def test_settings_read_only_the_given_mapping(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORT", "abc")
    monkeypatch.setenv("OPENAI_MODEL", "from-os-environ")
    settings = Settings.from_env(env)
    assert settings.server.port == 3000
    assert settings.openai.model == "gpt-realtime"


def test_settings_are_frozen(env: dict[str, str]) -> None:
    settings = Settings.from_env(env)
    with pytest.raises(ValidationError):
        settings.server.port = 1  # type: ignore[misc]
    with pytest.raises(ValidationError):
        settings.openai = settings.openai  # type: ignore[misc]


# --- the persona file: missing is a warning, the knowledge base stays an error ----------------


def test_missing_persona_file_is_a_warning_naming_it_not_an_error(env: dict[str, str]) -> None:
    path = env["SYSTEM_MESSAGE_PATH"]
    settings = Settings.from_env(env)
    assert settings.call.system_message == DEFAULT_SYSTEM_MESSAGE
    assert len(settings.warnings) == 1
    assert repr(path) in settings.warnings[0] and "SYSTEM_MESSAGE_PATH" in settings.warnings[0]


def test_existing_persona_file_gives_no_warning(env: dict[str, str], tmp_path: Path) -> None:
    persona = tmp_path / "persona.txt"
    persona.write_text("You are Ada.", encoding="utf-8")
    settings = Settings.from_env({**env, "SYSTEM_MESSAGE_PATH": str(persona)})
    assert settings.warnings == ()
    assert settings.call.system_message == "You are Ada."


def test_missing_persona_file_is_logged_once_at_start_up(
    env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    from vonage_bridge.web.app import make_app

    settings = Settings.from_env(env)
    with caplog.at_level(logging.WARNING, logger="vonage_bridge"):
        make_app(settings)
    persona = [r for r in caplog.records if "SYSTEM_MESSAGE_PATH" in r.getMessage()]
    assert len(persona) == 1
    assert persona[0].levelno == logging.WARNING
    assert env["SYSTEM_MESSAGE_PATH"] in persona[0].getMessage()


def test_missing_faq_kb_file_stays_an_error_with_a_missing_persona(
    env: dict[str, str], tmp_path: Path
) -> None:
    kb = str(tmp_path / "faq.txt")
    with pytest.raises(ConfigError) as info:
        Settings.from_env({**env, "FAQ_KB_PATH": kb})
    assert info.value.problems == [f"FAQ_KB_PATH={kb!r}: file not found"]


# --- outbound: CALLBACK_SECRET and TWILIO_OUTBOUND_FROM ----------------------------------------


def test_outbound_settings_are_optional(env: dict[str, str]) -> None:
    outbound = Settings.from_env(env).outbound
    assert outbound.callback_secret is None and outbound.twilio_from is None


def test_outbound_settings_are_read_and_the_secret_stays_out_of_repr(env: dict[str, str]) -> None:
    secret = "whsec_" + "Y2FsbGJhY2stc2VjcmV0LWJ5dGVz"
    settings = Settings.from_env(
        {**env, "CALLBACK_SECRET": secret, "TWILIO_OUTBOUND_FROM": "+14155550100"}
    )
    assert settings.outbound.callback_secret is not None
    assert settings.outbound.callback_secret.get_secret_value() == secret
    assert settings.outbound.twilio_from == "14155550100"
    assert secret not in repr(settings)


@pytest.mark.parametrize("secret", ["Y2FsbGJhY2stc2VjcmV0LWJ5dGVz", "whsec_!!not-base64", "whsec_"])
def test_bad_callback_secret_is_a_config_error_naming_it_without_its_value(
    env: dict[str, str], secret: str
) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({**env, "CALLBACK_SECRET": secret, "TWILIO_OUTBOUND_FROM": "Twilio"})
    assert problem_names(info.value) == ["CALLBACK_SECRET", "TWILIO_OUTBOUND_FROM"]
    assert "CALLBACK_SECRET=***: must be whsec_" in info.value.message
    if len(secret) > len("whsec_"):
        assert secret not in info.value.message
