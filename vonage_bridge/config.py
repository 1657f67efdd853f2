"""Settings, read once at start-up from a mapping (the environment), on pydantic-settings.
Pure apart from reading the files the variables name (persona, knowledge base, private key).

Each group declares its variables as field aliases with their defaults, bounds and parsers
(``config_values``: they raise ``ValueError`` in our words). ``Settings.from_env(env)`` is the
only source: never ``os.environ`` itself nor a ``.env`` file (python-dotenv runs in
``__main__``). It raises one :class:`ConfigError` with a line per problem naming the variable
and its value (``config_problems``: secrets as ``***``, URL passwords masked). Secrets are
``SecretStr``/``SecretBytes`` or out of ``repr``. The obvious mistakes of a first set-up
(``.env.example`` placeholders, a model that is not a Realtime one...) are refused with the
rest, and its guesses become ``warnings`` (``config_sanity``).
Source: the README's variables table; https://docs.pydantic.dev/latest/concepts/pydantic_settings/
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretBytes,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from . import config_values as cv
from .config_problems import describe, env_problems
from .config_sanity import sanity_problems, transfer_problem
from .errors import ConfigError
from .persona import DEFAULT_SYSTEM_MESSAGE as DEFAULT_SYSTEM_MESSAGE
from .persona import read_faq_kb, read_system_message, with_faq_kb
from .prices import DEFAULT_TABLE, PriceTable, load_prices

DEFAULT_SYSTEM_MESSAGE_PATH = "system-message.txt"
DEFAULT_GREETING = "Hello! You are connected to our assistant. Please go ahead."
DEFAULT_DATABASE_URL = "sqlite:///calls.db"


class _Group(BaseModel):
    """A frozen group of settings, from the variables (the aliases) or built by field name."""

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        populate_by_name=True,
        arbitrary_types_allowed=True,
        str_strip_whitespace=True,
        allow_inf_nan=False,  # "nan" is not a timeout: "Input should be a finite number"
    )


class PublicUrl(_Group):
    """The public base URL Vonage reaches us on, as ``http(s)`` and ``ws(s)`` forms.

    A bare host (``abc.ngrok.app``) means https/wss; a value with a scheme is taken as given,
    so ``http://127.0.0.1:3000`` gives ``ws://127.0.0.1:3000`` (local fakes and tests).
    """

    http: str
    ws: str

    @classmethod
    def parse(cls, value: str) -> PublicUrl:
        """Parse ``SERVER_URL``.

        Raises:
            ValueError: if the value has an unknown scheme, no host, a query or a fragment.
        """
        http, ws = cv.public_url(value)
        return cls(http=http, ws=ws)


class ServerSettings(_Group):
    """Where we listen, our public URL, the media-token secret and TTL (s), the event loop
    (``auto``: uvloop when importable, else asyncio's; ``asyncio``; ``uvloop``), and the
    header a trusted reverse proxy puts the client's address in (``web.client_ip``; None: the
    TCP peer's address). Without ``MEDIA_TOKEN_SECRET``, ``from_env`` draws 32 random bytes,
    valid on this process only."""

    host: str = Field("0.0.0.0", alias="HOST")
    port: int = Field(3000, alias="PORT", ge=1, le=65535)
    public_url: Annotated[PublicUrl, cv.parse(PublicUrl.parse)] = Field(alias="SERVER_URL")
    media_token_secret: SecretBytes = Field(alias="MEDIA_TOKEN_SECRET", min_length=16, repr=False)
    media_token_ttl_s: int = Field(300, alias="MEDIA_TOKEN_TTL_S", ge=10, le=86400)
    media_token_secret_is_random: bool = False
    event_loop: Annotated[str, cv.choice("auto", "asyncio", "uvloop")] = Field(
        "auto", alias="EVENT_LOOP"
    )
    client_ip_header: Annotated[
        str | None,
        cv.check(
            lambda v: re.fullmatch(r"[A-Za-z0-9-]{1,64}", v.strip()),
            "a header name (letters, digits and -), e.g. Fly-Client-IP",
            None,
        ),
    ] = Field(None, alias="CLIENT_IP_HEADER")


class OpenAISettings(_Group):
    """OpenAI Realtime: key, model, voice, base URL (no trailing slash), transcription (None:
    off), VAD (threshold 0-1, silence ms), connect timeout (s) and stall timeout (s: how long
    a session may send no event while a response is expected before the call ends)."""

    api_key: Annotated[SecretStr, cv.NOT_BLANK] = Field(alias="OPENAI_API_KEY", repr=False)
    model: cv.Text = Field("gpt-realtime", alias="OPENAI_MODEL")
    voice: Annotated[str, cv.parse(cv.voice)] = Field("marin", alias="OPENAI_VOICE")
    base_url: cv.Url = Field("https://api.openai.com/v1", alias="OPENAI_BASE_URL")
    api_version: cv.OptText = Field(None, alias="OPENAI_API_VERSION")
    transcription_model: Annotated[
        str | None, cv.parse(lambda v: None if v.lower() == "none" else v)
    ] = Field("gpt-4o-mini-transcribe", alias="OPENAI_TRANSCRIPTION_MODEL")
    transcription_language: cv.OptText = Field(None, alias="OPENAI_TRANSCRIPTION_LANGUAGE")
    vad_threshold: float = Field(0.5, alias="VAD_THRESHOLD", ge=0.0, le=1.0)
    vad_silence_ms: int = Field(500, alias="VAD_SILENCE_MS", ge=100, le=5000)
    connect_timeout_s: float = Field(10.0, alias="OPENAI_CONNECT_TIMEOUT_S", ge=0.5, le=120.0)
    stall_timeout_s: float = Field(15.0, alias="REALTIME_STALL_TIMEOUT_S", ge=0.1, le=600.0)

    @property
    def realtime_url(self) -> str:
        """``<base with ws/wss scheme>/realtime`` (the connection adds the query).
        Source: https://platform.openai.com/docs/guides/realtime-websocket"""
        parts = urlsplit(self.base_url)
        scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
        return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/realtime", "", ""))


class CallSettings(_Group):
    """Per-call behaviour. ``system_message``: the persona read from ``SYSTEM_MESSAGE_PATH``
    (a path in, the text out) with the knowledge base ``faq_kb`` (from ``FAQ_KB_PATH``) in
    it, placeholders resolved except ``{caller}``. Then the greeting (empty: none), the
    resampling quality (``audio.resampler``), playout look-ahead (ms), caller audio per
    ``input_audio_buffer.append`` (20 or 40 ms) and conversation features."""

    faq_kb: Annotated[str, cv.parse(read_faq_kb, "")] = Field("", alias="FAQ_KB_PATH", repr=False)
    system_message: str = Field(
        DEFAULT_SYSTEM_MESSAGE_PATH, alias="SYSTEM_MESSAGE_PATH", validate_default=True
    )
    greeting_text: str = Field(DEFAULT_GREETING, alias="GREETING_TEXT", max_length=1500)
    greeting_language: cv.Text = Field("en-US", alias="GREETING_LANGUAGE")
    resample_quality: Annotated[str, cv.choice(*cv.RESAMPLE_QUALITIES)] = Field(
        "LQ", alias="RESAMPLE_QUALITY"
    )
    playout_lookahead_ms: int = Field(240, alias="PLAYOUT_LOOKAHEAD_MS", ge=40, le=2000)
    realtime_append_ms: int = Field(20, alias="REALTIME_APPEND_MS", ge=20, le=40, multiple_of=20)
    dtmf_to_model: bool = Field(True, alias="DTMF_TO_MODEL")
    transfer_number: cv.Phone = Field(None, alias="TRANSFER_NUMBER")
    tools_module: cv.OptText = Field(None, alias="TOOLS_MODULE")

    @field_validator("system_message", mode="before")
    @classmethod
    def _persona(cls, path: Any, info: ValidationInfo) -> Any:
        text = read_system_message(path) if isinstance(path, str) else path
        return with_faq_kb(text, info.data.get("faq_kb", ""))


class VonageSettings(_Group):
    """Vonage REST credentials and webhook security, all optional: inbound calls work without
    them; what is missing turns off the features that need it (``missing_for_*``). The key is
    parsed once, here; ``api_url`` has no trailing slash (``http://`` for local fakes);
    ``outbound_from`` (E.164 digits) and ``connect_api_key`` (``X-API-Key``) serve
    ``POST /connect``; with ``signature_secret``, webhooks and the media handshake must carry
    a Vonage-signed JWT. ``audio_rate_hz`` is the L16 rate the NCCO asks for (Hz): 16000
    resampled to and from Realtime's 24 kHz, 24000 passed through with no resampling.
    Source: https://developer.vonage.com/en/voice/voice-api/overview"""

    application_id: cv.OptText = Field(None, alias="VONAGE_APPLICATION_ID")
    key_from_pem: cv.Key = Field(None, alias="VONAGE_PRIVATE_KEY", repr=False)
    key_from_path: cv.KeyFile = Field(None, alias="VONAGE_PRIVATE_KEY_PATH", repr=False)
    api_url: cv.Url = Field("https://api.nexmo.com", alias="VONAGE_API_URL")
    outbound_from: cv.Phone = Field(None, alias="VONAGE_OUTBOUND_FROM")
    connect_api_key: cv.OptSecret = Field(None, alias="CONNECT_API_KEY", repr=False)
    signature_secret: cv.OptSecret = Field(None, alias="VONAGE_SIGNATURE_SECRET", repr=False)
    api_timeout_s: float = Field(10.0, alias="VONAGE_API_TIMEOUT_S", ge=0.1, le=120.0)
    audio_rate_hz: Annotated[int, cv.choice("8000", "16000", "24000")] = Field(
        16_000, alias="VONAGE_AUDIO_RATE"
    )

    @property
    def private_key(self) -> RSAPrivateKey | None:
        """The application's RSA key, from PEM text or a file (set only one)."""
        return self.key_from_pem if self.key_from_pem is not None else self.key_from_path

    @property
    def missing_for_rest(self) -> list[str]:
        """Variables still needed for Voice REST calls (dial, hang-up); empty when ready."""
        missing = [] if self.application_id else ["VONAGE_APPLICATION_ID"]
        key = [] if self.private_key else ["VONAGE_PRIVATE_KEY or VONAGE_PRIVATE_KEY_PATH"]
        return missing + key

    @property
    def missing_for_connect(self) -> list[str]:
        """Variables still needed for ``POST /connect``; empty when it is on."""
        return ([] if self.connect_api_key else ["CONNECT_API_KEY"]) + self.missing_for_rest


class WebhookSettings(_Group):
    """Whether a front door may run with unsigned webhooks, and what that may cost.

    Verification is the default: the Vonage front door (always mounted) without
    ``VONAGE_SIGNATURE_SECRET``, or the Twilio one (``TWILIO_ACCOUNT_SID``) without
    ``TWILIO_AUTH_TOKEN``, is a start-up error unless ``allow_unsigned``
    (``ALLOW_UNSIGNED_WEBHOOKS=true``, for local runs and the simulation). Then the answer URLs
    of unsigned doors mint at most ``unsigned_calls_per_minute`` media tokens in any 60 s,
    all doors together, per instance (more: 429).
    Sources: https://developer.nexmo.com/voice/voice-api/guides/signed-webhooks,
    https://www.twilio.com/docs/usage/webhooks/webhooks-security
    """

    allow_unsigned: bool = Field(False, alias="ALLOW_UNSIGNED_WEBHOOKS")
    unsigned_calls_per_minute: int = Field(60, alias="UNSIGNED_CALLS_PER_MINUTE", ge=1, le=100_000)


class SipSettings(_Group):
    """The OpenAI SIP connector front door, off while ``webhook_secret`` is None.
    ``project_id`` is only shown in the start-up log; ``allow_from``/``deny_from``: E.164
    digits (no ``+``) of callers to accept only / refuse; calls beyond ``max_calls`` get 486
    Busy Here. Source: https://platform.openai.com/docs/guides/realtime-sip"""

    webhook_secret: Annotated[
        SecretStr | None,
        cv.check(
            cv.is_webhook_secret, "must be whsec_ followed by base64 (as OpenAI shows it)", None
        ),
    ] = Field(None, alias="OPENAI_WEBHOOK_SECRET", repr=False)
    project_id: cv.OptText = Field(None, alias="OPENAI_PROJECT_ID")
    allow_from: cv.Numbers = Field((), alias="SIP_ALLOW_FROM")
    deny_from: cv.Numbers = Field((), alias="SIP_DENY_FROM")
    max_calls: Annotated[int | None, cv.parse(str, None)] = Field(
        None, alias="SIP_MAX_CALLS", ge=1, le=10_000
    )


class TwilioSettings(_Group):
    """The Twilio Media Streams front door (on with ``account_sid``) and Twilio's REST API.
    With ``auth_token``, requests must carry a valid ``X-Twilio-Signature``, and REST hang-up
    and transfer work; ``api_url`` has no trailing slash (``http://`` for local fakes).
    Source: https://www.twilio.com/docs/usage/security#validating-requests"""

    account_sid: Annotated[
        str | None,
        cv.check(
            cv.TWILIO_ACCOUNT_SID_RE.fullmatch,
            "must be AC followed by 32 hex digits (Twilio console, Account Info)",
            None,
        ),
    ] = Field(None, alias="TWILIO_ACCOUNT_SID")
    auth_token: Annotated[SecretStr | None, cv.NOT_BLANK] = Field(
        None, alias="TWILIO_AUTH_TOKEN", repr=False
    )
    api_url: cv.Url = Field("https://api.twilio.com", alias="TWILIO_API_URL")
    api_timeout_s: float = Field(10.0, alias="TWILIO_API_TIMEOUT_S", ge=0.1, le=120.0)

    @property
    def enabled(self) -> bool:
        """Whether the Twilio front door is mounted (``TWILIO_ACCOUNT_SID`` is set)."""
        return self.account_sid is not None

    @property
    def verify(self) -> bool:
        """Whether requests are signature-checked and REST works (``TWILIO_AUTH_TOKEN``)."""
        return self.auth_token is not None


class OutboundSettings(_Group):
    """Outbound calls beyond dialling (``POST /connect``): ``callback_secret`` signs the
    ``status_url`` callbacks (Standard Webhooks, ``whsec_`` + base64; required by any call
    that sets ``status_url``), ``twilio_from`` is the caller id of ``"via": "twilio"`` calls
    without ``from`` (E.164 digits). Source: https://www.standardwebhooks.com/"""

    callback_secret: Annotated[
        SecretStr | None,
        cv.check(
            lambda v: v.startswith("whsec_") and cv.is_webhook_secret(v),
            "must be whsec_ followed by base64 (e.g. whsec_ + 32 random bytes in base64)",
            None,
        ),
    ] = Field(None, alias="CALLBACK_SECRET", repr=False)
    twilio_from: cv.Phone = Field(None, alias="TWILIO_OUTBOUND_FROM")


class StoreSettings(_Group):
    """Where call records go: ``sqlite:///<path>`` (relative to the working directory;
    ``sqlite:////abs/path`` for an absolute one) or ``postgresql://...``; out of ``repr``."""

    database_url: Annotated[str, cv.parse(cv.database_url)] = Field(
        DEFAULT_DATABASE_URL, alias="DATABASE_URL", repr=False
    )

    @property
    def is_postgresql(self) -> bool:
        """Whether ``DATABASE_URL``'s scheme is ``postgresql`` or ``postgres`` (any ``+driver``)."""
        return self.database_url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


# ------------------------------------------------------------------ assistants and call limits


def _assistants_file(path: str) -> tuple[Any, ...]:
    """The assistants of ``ASSISTANTS_FILE`` (``.toml``: TOML, else JSON), parsed here so that
    a bad file stops start-up with one line naming the file and the field.

    Raises:
        ValueError: the file is missing, unreadable, or holds a bad assistant.
    """
    from .core.assistant import parse_assistants  # core.assistant imports realtime -> config

    p = Path(path)
    if not p.is_file():
        raise ValueError("file not found")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot be read ({exc})") from exc
    return parse_assistants(text, toml=p.suffix.lower() == ".toml")


class AssistantSettings(_Group):
    """Assistants and call limits. ``assistants``: those of ``ASSISTANTS_FILE`` (TOML or
    JSON), upserted into the database at start-up; ``max_call_s`` and
    ``inactivity_timeout_s`` (0: off) are the default assistant's limits, s."""

    assistants: Annotated[tuple[Any, ...], cv.parse(_assistants_file, ())] = Field(
        (), alias="ASSISTANTS_FILE", repr=False
    )
    assistants_file: cv.OptText = Field(None, alias="ASSISTANTS_FILE")
    max_call_s: float = Field(1800.0, alias="MAX_CALL_S", ge=0.1, le=86_400.0)
    inactivity_timeout_s: float = Field(60.0, alias="INACTIVITY_TIMEOUT_S", ge=0.0, le=86_400.0)


class ScaleSettings(_Group):
    """Several instances and rolling deploys (README "Scaling").

    ``drain_timeout_s``: after SIGTERM, how long (s) live calls may run to their end before
    they are ended politely (``web.lifecycle``); keep it under the platform's kill timeout
    (fly.toml: 300 s) minus about 20 s. ``instance_count``: how many instances serve this
    service (with PostgreSQL above 1, ``MEDIA_TOKEN_SECRET`` is required; with SQLite above 1,
    a start-up warning). ``workers``: processes of this instance sharing its port
    (``SO_REUSEPORT``), each an instance of its own. ``fly_machine_id``: Fly's machine id.
    """

    drain_timeout_s: float = Field(240.0, alias="DRAIN_TIMEOUT_S", ge=0, le=3600)
    instance_count: int = Field(1, alias="INSTANCE_COUNT", ge=1, le=1000)
    workers: int = Field(1, alias="WORKERS", ge=1, le=64)
    fly_machine_id: str | None = Field(None, alias="FLY_MACHINE_ID", max_length=64)
    """Set by Fly.io on its machines: names this instance (``cluster.new_instance_id``)."""


class LogSettings(_Group):
    """Log level name and format (``auto``: text on a terminal, else ``json``; or ``text``)."""

    level: Annotated[str, cv.choice("DEBUG", "INFO", "WARNING", "ERROR")] = Field(
        "INFO", alias="LOG_LEVEL"
    )
    format: Annotated[str, cv.choice("auto", "text", "json")] = Field("auto", alias="LOG_FORMAT")


class MetricsSettings(_Group):
    """Prometheus metrics (``metrics``), served at ``/metrics`` on a port of their own
    (``METRICS_PORT``), off the public service; ``0`` serves nothing. ``host``: the address
    it listens on (``METRICS_HOST``; None: ``HOST``'s), e.g. ``127.0.0.1`` for a scraper on
    the same machine only. Source: https://prometheus.io/docs/instrumenting/exposition_formats/"""

    port: int = Field(9091, alias="METRICS_PORT", ge=0, le=65535)
    host: cv.OptText = Field(None, alias="METRICS_HOST")

    @property
    def enabled(self) -> bool:
        """Whether ``/metrics`` is served (``METRICS_PORT`` is not 0)."""
        return self.port != 0


class SetupSettings(_Group):
    """Start-up checks and the set-up tools (``vonage-bridge doctor``, ``change_url.py
    twilio``): ``model_check`` off lets ``OPENAI_MODEL`` be a name the Realtime check does
    not know (``config_sanity``); ``twilio_phone_number`` (E.164 digits) is the Twilio number
    whose Voice URL they check and set.
    Source: https://www.twilio.com/docs/phone-numbers/api/incomingphonenumber-resource"""

    model_check: bool = Field(True, alias="OPENAI_MODEL_CHECK")
    twilio_phone_number: cv.Phone = Field(None, alias="TWILIO_PHONE_NUMBER")


# ------------------------------------------------------------------ operator console


class ConsoleSettings(_Group):
    """The operator console (``/console``): how long a login lasts, in hours (default 12;
    0.05 to 720). Operators themselves are accounts in the database (``vonage-bridge
    operator add``), not settings."""

    session_hours: float = Field(12.0, alias="CONSOLE_SESSION_HOURS", ge=0.05, le=720.0)


# ------------------------------------------------------------------ recording and cost


class RecordingSettings(_Group):
    """Call recording (``recording/``): ``record_calls`` records every media call (an
    assistant can also ask for it per call); one stereo WAV per call in ``recordings_dir``
    (relative to the working directory), deleted ``retention_days`` days after it was written
    (0: never). Source: the README's Recording section."""

    record_calls: bool = Field(False, alias="RECORD_CALLS")
    recordings_dir: Path = Field(Path("recordings"), alias="RECORDINGS_DIR")
    retention_days: int = Field(30, alias="RECORDING_RETENTION_DAYS", ge=0, le=36500)


class CostSettings(_Group):
    """Token prices for the calls' ``cost_usd``: the built-in table (``prices``), with
    ``PRICES_FILE`` (JSON or TOML) adding or replacing models. Source:
    https://platform.openai.com/docs/pricing"""

    prices: Annotated[PriceTable, cv.parse(load_prices, DEFAULT_TABLE)] = Field(
        DEFAULT_TABLE, alias="PRICES_FILE"
    )


class Settings(BaseSettings):
    """Every setting of the service; build with :meth:`from_env`. ``warnings``: what does not
    stop start-up but the start-up log must say (a missing persona file)."""

    model_config = SettingsConfigDict(frozen=True)

    server: ServerSettings
    openai: OpenAISettings
    call: CallSettings
    log: LogSettings
    vonage: VonageSettings = VonageSettings.model_validate({})
    store: StoreSettings = StoreSettings.model_validate({})
    sip: SipSettings = SipSettings.model_validate({})
    twilio: TwilioSettings = TwilioSettings.model_validate({})
    webhooks: WebhookSettings = WebhookSettings.model_validate({})
    outbound: OutboundSettings = OutboundSettings.model_validate({})
    metrics: MetricsSettings = MetricsSettings.model_validate({})
    assistants: AssistantSettings = AssistantSettings.model_validate({})
    setup: SetupSettings = SetupSettings.model_validate({})
    console: ConsoleSettings = ConsoleSettings.model_validate({})
    scale: ScaleSettings = ScaleSettings.model_validate({})
    recording: RecordingSettings = RecordingSettings.model_validate({})
    cost: CostSettings = CostSettings.model_validate({})
    warnings: tuple[str, ...] = ()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        *_: Any,
        **__: Any,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only what :meth:`from_env` passes: never ``os.environ``, a dotenv or secrets dir."""
        return (init_settings,)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read settings from ``env`` (usually ``os.environ`` after python-dotenv). An empty
        variable means its default, except ``GREETING_TEXT`` (empty: no greeting).

        Raises:
            ConfigError: naming every missing or invalid variable at once.
        """
        given = {k: v for k, v in env.items() if k in _FIELDS and (v or k == "GREETING_TEXT")}
        problems = env_problems(given)
        sanity, guesses = sanity_problems(given)
        problems += sanity
        values: dict[str, Any] = {name: given for name in cls.model_fields if name != "warnings"}
        if "MEDIA_TOKEN_SECRET" not in given:
            random = {"media_token_secret": secrets.token_bytes(32)}
            values["server"] = {**given, **random, "media_token_secret_is_random": True}
        persona = given.get("SYSTEM_MESSAGE_PATH", DEFAULT_SYSTEM_MESSAGE_PATH)
        if not Path(persona).is_file():
            values["warnings"] = (
                f"SYSTEM_MESSAGE_PATH={persona!r}: no such file, using the built-in persona",
            )
        if guesses:
            values["warnings"] = (*values.get("warnings", ()), *guesses)
        try:
            settings = cls(**values)
        except ValidationError as exc:
            raise ConfigError([describe(e, _FIELDS) for e in exc.errors()] + problems) from None
        if settings.metrics.port == settings.server.port:
            problems.append(
                f"METRICS_PORT={settings.metrics.port}: the same as PORT; the metrics need a "
                "port of their own (or 0: off)"
            )
        transfer = transfer_problem(
            settings.call.transfer_number,
            vonage_rest=not settings.vonage.missing_for_rest,
            twilio_rest=settings.twilio.enabled and settings.twilio.verify,
            sip=settings.sip.webhook_secret is not None,
        )
        problems += [transfer] if transfer else []
        problems += scale_problems(settings)
        if problems:
            raise ConfigError(problems)
        scale_warnings = scale_notes(settings)
        if scale_warnings:
            settings = settings.model_copy(update={"warnings": settings.warnings + scale_warnings})
        return settings


def several_instances(settings: Settings) -> bool:
    """Whether more than one process serves this service (``INSTANCE_COUNT`` or ``WORKERS``
    above 1)."""
    return settings.scale.instance_count > 1 or settings.scale.workers > 1


def scale_problems(settings: Settings) -> list[str]:
    """With PostgreSQL, a random per-process ``MEDIA_TOKEN_SECRET`` is refused when several
    instances serve the service (``INSTANCE_COUNT``/``WORKERS`` above 1) or on Fly.io
    (``FLY_MACHINE_ID`` set: a rolling deploy starts the new machine while the old one still
    answers calls, and a media socket may reach either, so a token must verify on both).
    Source: https://fly.io/docs/machines/runtime-environment/ (``FLY_MACHINE_ID``)."""
    if not settings.store.is_postgresql or not settings.server.media_token_secret_is_random:
        return []
    if several_instances(settings):
        why = f"INSTANCE_COUNT={settings.scale.instance_count}, WORKERS={settings.scale.workers}"
    elif settings.scale.fly_machine_id:
        why = "on Fly.io (FLY_MACHINE_ID is set), where a deploy runs two machines at once"
    else:
        return []
    return [
        f"MEDIA_TOKEN_SECRET is required with PostgreSQL and several instances ({why}): a "
        "random per-process secret makes a media token minted by one instance fail on "
        "another (set the same 32+ random bytes on every instance)"
    ]


def scale_notes(settings: Settings) -> tuple[str, ...]:
    """Start-up warnings of the scaling settings: SQLite with several instances."""
    if settings.store.is_postgresql or not several_instances(settings):
        return ()
    return (
        f"INSTANCE_COUNT={settings.scale.instance_count}, WORKERS={settings.scale.workers} "
        "with SQLite: each instance has its own file, so call records, live calls, hang-ups "
        "and the webhook and media-token replay guards are not shared; use PostgreSQL "
        "(DATABASE_URL=postgresql://...) for several instances",
    )


_GROUPS: tuple[type[_Group], ...] = (ServerSettings, OpenAISettings, CallSettings, LogSettings)
_GROUPS += (VonageSettings, StoreSettings, SipSettings, TwilioSettings, WebhookSettings)
_GROUPS += (OutboundSettings,)
_GROUPS += (MetricsSettings,)
_GROUPS += (AssistantSettings,)
_GROUPS += (SetupSettings,)
_GROUPS += (ConsoleSettings,)
_GROUPS += (ScaleSettings,)
_GROUPS += (RecordingSettings, CostSettings)
_FIELDS = {f.alias: f for g in _GROUPS for f in g.model_fields.values() if f.alias}
"""Every variable the settings read, and its field."""
