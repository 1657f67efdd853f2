"""Settings, read once at start-up from a mapping (the environment). Pure apart from reading
the system-message file and the Vonage private key file (``VONAGE_PRIVATE_KEY_PATH``).

The Vonage variables are optional (:class:`VonageSettings`): the private key is parsed here,
once, into a key object, so no request ever re-parses the PEM. So are the Twilio ones
(:class:`TwilioSettings`): the Twilio front door is mounted only when they are set.

``Settings.from_env(env)`` collects every problem before raising one :class:`ConfigError`
that names each bad variable, so a deployer fixes them all in one go. Secrets are kept out of
``repr``. ``.env`` loading (python-dotenv) happens in ``__main__`` only.

Source: the variables table in README.md; DEVELOPERS.md "config errors that say which variable
is wrong"; protocols.md C "Signature" (Twilio).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from .errors import ConfigError
from .phone import e164_digits
from .vonage.app_jwt import load_private_key

DEFAULT_SYSTEM_MESSAGE = (
    "You are a friendly, concise voice assistant speaking with a caller on the telephone. "
    "Keep answers short and natural, one or two sentences, and ask a question when you need "
    "more information."
)
DEFAULT_GREETING = "Hello! You are connected to our assistant. Please go ahead."
RESAMPLE_QUALITIES = ("QQ", "LQ", "MQ", "HQ", "VHQ")
VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PublicUrl:
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
        raw = value.strip()
        if "://" not in raw:
            raw = "https://" + raw
        parts = urlsplit(raw)
        ws_scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
        if ws_scheme is None:
            raise ValueError(f"scheme {parts.scheme!r} is not http, https, ws or wss")
        if not parts.hostname:
            raise ValueError("has no host")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or fragment")
        http_scheme = "https" if ws_scheme == "wss" else "http"
        path = parts.path.rstrip("/")
        return cls(
            http=urlunsplit((http_scheme, parts.netloc, path, "", "")),
            ws=urlunsplit((ws_scheme, parts.netloc, path, "", "")),
        )


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Where we listen, our public URL, and the media-token secret (bytes) and TTL (s)."""

    host: str
    port: int
    public_url: PublicUrl
    media_token_secret: bytes = field(repr=False)
    media_token_ttl_s: int
    media_token_secret_is_random: bool


@dataclass(frozen=True, slots=True)
class OpenAISettings:
    """OpenAI Realtime: key (never in repr), model, voice, base URL, VAD (threshold 0-1,
    silence ms), transcription and connect timeout (s)."""

    api_key: str = field(repr=False)
    model: str
    voice: str
    base_url: str
    api_version: str | None
    transcription_model: str | None
    transcription_language: str | None
    vad_threshold: float
    vad_silence_ms: int
    connect_timeout_s: float

    @property
    def realtime_url(self) -> str:
        """``<base with ws/wss scheme>/realtime`` (query added by the connection). [OAI-PY]"""
        parts = urlsplit(self.base_url)
        scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
        return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/realtime", "", ""))


@dataclass(frozen=True, slots=True)
class CallSettings:
    """Per-call behaviour: persona text (placeholders resolved except ``{caller}``),
    greeting, soxr quality, playout look-ahead (ms) and conversation features."""

    system_message: str
    greeting_text: str
    greeting_language: str
    resample_quality: str
    playout_lookahead_ms: int
    dtmf_to_model: bool = True
    transfer_number: str | None = None
    tools_module: str | None = None


@dataclass(frozen=True, slots=True)
class VonageSettings:
    """Vonage REST credentials and webhook security. Every field is optional: inbound calls
    work without any of them; what is missing turns the features that need it off.

    Attributes:
        application_id: ``VONAGE_APPLICATION_ID``.
        private_key: the application's RSA key, parsed once from ``VONAGE_PRIVATE_KEY`` (PEM
            text) or ``VONAGE_PRIVATE_KEY_PATH``.
        api_url: Voice REST base, no trailing slash (``VONAGE_API_URL``; ``http://`` allowed
            for local fakes).
        outbound_from: default caller id for ``POST /connect``, E.164 digits.
        connect_api_key: ``CONNECT_API_KEY``, the ``X-API-Key`` of ``POST /connect``.
        signature_secret: ``VONAGE_SIGNATURE_SECRET``: when set, webhooks and the media
            socket handshake must carry a valid Vonage-signed JWT.
        api_timeout_s: bound on every Vonage REST request, s.
    """

    application_id: str | None = None
    private_key: RSAPrivateKey | None = field(default=None, repr=False)
    api_url: str = "https://api.nexmo.com"
    outbound_from: str | None = None
    connect_api_key: str | None = field(default=None, repr=False)
    signature_secret: str | None = field(default=None, repr=False)
    api_timeout_s: float = 10.0

    @property
    def missing_for_rest(self) -> list[str]:
        """Variables still needed for Voice REST calls (dial, hang-up); empty when ready."""
        missing = []
        if self.application_id is None:
            missing.append("VONAGE_APPLICATION_ID")
        if self.private_key is None:
            missing.append("VONAGE_PRIVATE_KEY or VONAGE_PRIVATE_KEY_PATH")
        return missing

    @property
    def missing_for_connect(self) -> list[str]:
        """Variables still needed for ``POST /connect``; empty when it is on."""
        missing = [] if self.connect_api_key else ["CONNECT_API_KEY"]
        return missing + self.missing_for_rest


@dataclass(frozen=True, slots=True)
class SipSettings:
    """The OpenAI SIP connector front door (``sip/``). Off while ``webhook_secret`` is None.

    Attributes:
        webhook_secret: ``OPENAI_WEBHOOK_SECRET`` (``whsec_...``): verifies OpenAI's webhooks.
        project_id: ``OPENAI_PROJECT_ID`` (``proj_...``), only shown in the start-up log.
        allow_from / deny_from: E.164 digits (no ``+``) of callers to accept only / refuse.
        max_calls: concurrent SIP calls; more are rejected with 486 Busy Here.
    """

    webhook_secret: str | None = field(default=None, repr=False)
    project_id: str | None = None
    allow_from: tuple[str, ...] = ()
    deny_from: tuple[str, ...] = ()
    max_calls: int | None = None


TWILIO_ACCOUNT_SID_RE = re.compile(r"AC[0-9a-fA-F]{32}")
"""A Twilio account SID: ``AC`` then 32 hex digits."""


@dataclass(frozen=True, slots=True)
class TwilioSettings:
    """The Twilio Media Streams front door (``twilio/routes.py``) and Twilio's REST API.

    Attributes:
        account_sid: ``TWILIO_ACCOUNT_SID`` (``AC`` + 32 hex): when set, the front door is on.
        auth_token: ``TWILIO_AUTH_TOKEN``: when set, the webhook and the media socket upgrade
            must carry a valid ``X-Twilio-Signature``, and REST hang-up and transfer work.
        api_url: REST base, no trailing slash (``TWILIO_API_URL``; ``http://`` allowed for
            local fakes).
        api_timeout_s: bound on every Twilio REST request, s (``TWILIO_API_TIMEOUT_S``).
    """

    account_sid: str | None = None
    auth_token: str | None = field(default=None, repr=False)
    api_url: str = "https://api.twilio.com"
    api_timeout_s: float = 10.0

    @property
    def enabled(self) -> bool:
        """Whether the Twilio front door is mounted (``TWILIO_ACCOUNT_SID`` is set)."""
        return self.account_sid is not None

    @property
    def verify(self) -> bool:
        """Whether Twilio requests are signature-checked and REST hang-up/transfer work
        (``TWILIO_AUTH_TOKEN`` is set)."""
        return self.auth_token is not None


DEFAULT_DATABASE_URL = "sqlite:///calls.db"


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """Where call records go (``store.py``).

    Attributes:
        database_url: ``DATABASE_URL``: ``sqlite:///<path>`` (relative to the working
            directory; ``sqlite:////abs/path`` for an absolute one) or ``postgresql://...``.
            Kept out of ``repr``: it may hold a password.
    """

    database_url: str = field(default=DEFAULT_DATABASE_URL, repr=False)

    @property
    def is_postgresql(self) -> bool:
        return self.database_url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


@dataclass(frozen=True, slots=True)
class LogSettings:
    """Log level name and format (``auto``, ``text`` or ``json``)."""

    level: str
    format: str  # "auto" | "text" | "json"


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of the service; build with :meth:`from_env`."""

    server: ServerSettings
    openai: OpenAISettings
    call: CallSettings
    log: LogSettings
    vonage: VonageSettings = field(default_factory=VonageSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    sip: SipSettings = field(default_factory=SipSettings)
    twilio: TwilioSettings = field(default_factory=TwilioSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read settings from ``env`` (usually ``os.environ`` after python-dotenv).

        Raises:
            ConfigError: naming every missing or invalid variable at once.
        """
        r = _Reader(env)
        port = r.get("PORT", "3000", _int_range(1, 65535))
        host = r.get("HOST", "0.0.0.0", str)
        public_url = r.require("SERVER_URL", PublicUrl.parse)
        secret_text = r.get("MEDIA_TOKEN_SECRET", "", _secret_min_bytes(16))
        ttl = r.get("MEDIA_TOKEN_TTL_S", "300", _int_range(10, 86400))
        api_key = r.require("OPENAI_API_KEY", _nonblank)
        model = r.get("OPENAI_MODEL", "gpt-realtime", _nonblank)
        voice = r.get("OPENAI_VOICE", "marin", _voice)
        base_url = r.get("OPENAI_BASE_URL", "https://api.openai.com/v1", _http_url)
        api_version = r.get("OPENAI_API_VERSION", "", str) or None
        tr_model = r.get("OPENAI_TRANSCRIPTION_MODEL", "gpt-4o-mini-transcribe", str)
        tr_lang = r.get("OPENAI_TRANSCRIPTION_LANGUAGE", "", str) or None
        vad_threshold = r.get("VAD_THRESHOLD", "0.5", _float_range(0.0, 1.0))
        vad_silence = r.get("VAD_SILENCE_MS", "500", _int_range(100, 5000))
        timeout = r.get("OPENAI_CONNECT_TIMEOUT_S", "10", _float_range(0.5, 120.0))
        sm_path = r.get("SYSTEM_MESSAGE_PATH", "system-message.txt", str)
        # Set but empty means "no greeting", so this one does not fall back to its default.
        greeting = r.check(
            "GREETING_TEXT", env.get("GREETING_TEXT", DEFAULT_GREETING), _max_len(1500)
        )
        language = r.get("GREETING_LANGUAGE", "en-US", _nonblank)
        quality = r.get("RESAMPLE_QUALITY", "LQ", _choice(RESAMPLE_QUALITIES))
        lookahead = r.get("PLAYOUT_LOOKAHEAD_MS", "100", _int_range(40, 2000))
        dtmf_to_model = r.get("DTMF_TO_MODEL", "true", _flag)
        transfer_text = r.get("TRANSFER_NUMBER", "", str).strip()
        transfer = r.check("TRANSFER_NUMBER", transfer_text, e164_digits) if transfer_text else None
        tools_module = r.get("TOOLS_MODULE", "", str).strip() or None
        log_level = r.get("LOG_LEVEL", "INFO", _choice(("DEBUG", "INFO", "WARNING", "ERROR")))
        log_format = r.get("LOG_FORMAT", "auto", _choice(("auto", "text", "json")))
        system_message = r.check("SYSTEM_MESSAGE_PATH", sm_path, read_system_message)
        kb_path = r.get("FAQ_KB_PATH", "", str).strip()
        faq_kb = r.check("FAQ_KB_PATH", kb_path, read_faq_kb) if kb_path else ""
        vonage = _read_vonage(r)
        database_url = r.get("DATABASE_URL", DEFAULT_DATABASE_URL, _database_url)
        sip = _read_sip(r)
        twilio = _read_twilio(r)
        r.raise_if_problems()
        random_secret = not secret_text
        return cls(
            server=ServerSettings(
                host=host,
                port=port,
                public_url=public_url,
                media_token_secret=(
                    secrets.token_bytes(32) if random_secret else secret_text.encode()
                ),
                media_token_ttl_s=ttl,
                media_token_secret_is_random=random_secret,
            ),
            openai=OpenAISettings(
                api_key=api_key,
                model=model,
                voice=voice,
                base_url=base_url.rstrip("/"),
                api_version=api_version,
                transcription_model=None if tr_model.lower() in ("", "none") else tr_model,
                transcription_language=tr_lang,
                vad_threshold=vad_threshold,
                vad_silence_ms=vad_silence,
                connect_timeout_s=timeout,
            ),
            call=CallSettings(
                system_message=with_faq_kb(system_message, faq_kb),
                greeting_text=greeting.strip(),
                greeting_language=language,
                resample_quality=quality,
                playout_lookahead_ms=lookahead,
                dtmf_to_model=dtmf_to_model,
                transfer_number=transfer,
                tools_module=tools_module,
            ),
            log=LogSettings(level=log_level, format=log_format),
            vonage=vonage,
            store=StoreSettings(database_url=database_url),
            sip=sip,
            twilio=twilio,
        )


def _read_sip(r: _Reader) -> SipSettings:
    """The optional ``OPENAI_WEBHOOK_SECRET`` / ``SIP_*`` variables (problems go to ``r``)."""
    secret = r.get("OPENAI_WEBHOOK_SECRET", "", _webhook_secret) or None
    max_text = r.get("SIP_MAX_CALLS", "", str).strip()
    return SipSettings(
        webhook_secret=secret,
        project_id=r.get("OPENAI_PROJECT_ID", "", str).strip() or None,
        allow_from=r.get("SIP_ALLOW_FROM", "", _number_list),
        deny_from=r.get("SIP_DENY_FROM", "", _number_list),
        max_calls=r.check("SIP_MAX_CALLS", max_text, _int_range(1, 10_000)) if max_text else None,
    )


def _read_twilio(r: _Reader) -> TwilioSettings:
    """The optional ``TWILIO_*`` variables (problems go to ``r``)."""
    sid_text = r.get("TWILIO_ACCOUNT_SID", "", str).strip()
    account_sid = r.check("TWILIO_ACCOUNT_SID", sid_text, _twilio_account_sid) if sid_text else None
    auth_token = r.get("TWILIO_AUTH_TOKEN", "", str)
    if auth_token:
        auth_token = r.check("TWILIO_AUTH_TOKEN", auth_token, _nonblank)
    if auth_token and not sid_text:
        r.problems.append(
            "TWILIO_ACCOUNT_SID is required when TWILIO_AUTH_TOKEN is set "
            "(the account the token belongs to, AC...)"
        )
    api_url = r.get("TWILIO_API_URL", "https://api.twilio.com", _http_url)
    return TwilioSettings(
        account_sid=account_sid,
        auth_token=auth_token or None,
        api_url=api_url.rstrip("/") if api_url else "",
        api_timeout_s=r.get("TWILIO_API_TIMEOUT_S", "10", _float_range(0.1, 120.0)),
    )


def _twilio_account_sid(value: str) -> str:
    """``AC`` then 32 hex digits, as the Twilio console shows it."""
    v = value.strip()
    if not TWILIO_ACCOUNT_SID_RE.fullmatch(v):
        raise ValueError("must be AC followed by 32 hex digits (Twilio console, Account Info)")
    return v


def _webhook_secret(value: str) -> str:
    """A Standard Webhooks secret: ``whsec_`` then non-empty base64 [protocols.md B5]."""
    v = value.strip()
    if not v:
        return v
    body = v.removeprefix("whsec_")
    try:
        key = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (ValueError, binascii.Error):
        raise ValueError("must be whsec_ followed by base64 (as OpenAI shows it)") from None
    if not key:
        raise ValueError("must be whsec_ followed by base64 (as OpenAI shows it)")
    return v


def _number_list(value: str) -> tuple[str, ...]:
    """Comma-separated E.164 numbers as digits without ``+``."""
    return tuple(e164_digits(part.strip()) for part in value.split(",") if part.strip())


def _read_vonage(r: _Reader) -> VonageSettings:
    """The optional ``VONAGE_*`` / ``CONNECT_API_KEY`` variables (problems go to ``r``)."""
    app_id = r.get("VONAGE_APPLICATION_ID", "", str).strip() or None
    pem = r.get("VONAGE_PRIVATE_KEY", "", str)
    key_path = r.get("VONAGE_PRIVATE_KEY_PATH", "", str).strip()
    private_key: RSAPrivateKey | None = None
    if pem.strip() and key_path:
        r.problems.append("VONAGE_PRIVATE_KEY and VONAGE_PRIVATE_KEY_PATH: set only one")
    elif pem.strip():
        private_key = r.check("VONAGE_PRIVATE_KEY", pem, load_private_key)
    elif key_path:
        private_key = r.check("VONAGE_PRIVATE_KEY_PATH", key_path, read_private_key)
    # An application id without a key (or the reverse) is not an error: change_url.py needs
    # VONAGE_APPLICATION_ID alone. REST stays off; the start-up log and /connect name what
    # is missing (VonageSettings.missing_for_rest).
    api_url = r.get("VONAGE_API_URL", "https://api.nexmo.com", _http_url)
    from_text = r.get("VONAGE_OUTBOUND_FROM", "", str).strip()
    outbound_from = r.check("VONAGE_OUTBOUND_FROM", from_text, e164_digits) if from_text else None
    return VonageSettings(
        application_id=app_id,
        private_key=private_key,
        api_url=api_url.rstrip("/") if api_url else "",
        outbound_from=outbound_from,
        connect_api_key=r.get("CONNECT_API_KEY", "", str).strip() or None,
        signature_secret=r.get("VONAGE_SIGNATURE_SECRET", "", str).strip() or None,
        api_timeout_s=r.get("VONAGE_API_TIMEOUT_S", "10", _float_range(0.1, 120.0)),
    )


def read_private_key(path: str) -> RSAPrivateKey:
    """The RSA private key in the PEM file at ``path`` (PKCS#8 or PKCS#1).

    Raises:
        ValueError: if the file cannot be read or does not hold a PEM RSA private key.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot be read ({exc.__class__.__name__})") from None
    return load_private_key(text)


def read_system_message(path: str) -> str:
    """The persona text at ``path``; a missing or empty file gives the built-in default.

    Raises:
        ValueError: if the file exists but cannot be read as UTF-8.
    """
    p = Path(path)
    if not p.is_file():
        return DEFAULT_SYSTEM_MESSAGE
    try:
        text = p.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot be read ({exc})") from exc
    return text or DEFAULT_SYSTEM_MESSAGE


MAX_FAQ_KB_BYTES = 200_000
"""A knowledge file larger than this is refused: it all goes into every session's instructions."""


def read_faq_kb(path: str) -> str:
    """The knowledge base at ``path`` as instruction text.

    A ``.json`` file is a list of ``{"question": …, "answer": …}`` objects (``q``/``a`` also
    accepted), rendered as ``Q: …`` / ``A: …`` pairs; any other file is used as plain text.

    Raises:
        ValueError: if the file is missing, unreadable, over 200 kB, or malformed JSON.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError("file not found")
    if p.stat().st_size > MAX_FAQ_KB_BYTES:
        raise ValueError(f"is larger than {MAX_FAQ_KB_BYTES} bytes")
    try:
        text = p.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot be read ({exc})") from exc
    if p.suffix.lower() != ".json":
        return text
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"is not valid JSON ({exc})") from None
    if not isinstance(doc, list):
        raise ValueError("must be a JSON list of question/answer objects")
    pairs: list[str] = []
    for i, entry in enumerate(doc):
        if not isinstance(entry, dict):
            raise ValueError(f"entry {i} is not an object")
        question = entry.get("question", entry.get("q"))
        answer = entry.get("answer", entry.get("a"))
        if not isinstance(question, str) or not isinstance(answer, str):
            raise ValueError(f"entry {i} needs string 'question' and 'answer'")
        pairs.append(f"Q: {question.strip()}\nA: {answer.strip()}")
    return "\n\n".join(pairs)


def with_faq_kb(system_message: str, faq_kb: str) -> str:
    """The persona with ``{FAQ_KB}`` replaced by the knowledge base; a knowledge base with no
    placeholder to go in is appended under a heading rather than silently dropped."""
    if "{FAQ_KB}" in system_message:
        return system_message.replace("{FAQ_KB}", faq_kb).strip()
    if faq_kb:
        return f"{system_message}\n\nKnowledge base (answer from it when it applies):\n{faq_kb}"
    return system_message


class _Reader:
    """Collects problems instead of stopping at the first one."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def get(self, name: str, default: str, conv: Callable[[str], T]) -> T:
        value = self.env.get(name)
        if value is None or value == "":
            value = default
        return self.check(name, value, conv)

    def require(self, name: str, conv: Callable[[str], T]) -> T:
        value = self.env.get(name, "")
        if not value.strip():
            self.problems.append(f"{name} is required but not set")
            return None  # type: ignore[return-value]  # raise_if_problems() stops use
        return self.check(name, value, conv)

    def check(self, name: str, value: str, conv: Callable[[str], T]) -> T:
        try:
            return conv(value)
        except ValueError as exc:
            hidden = (  # secrets, and passwords in DATABASE_URL
                "KEY" in name
                or "SECRET" in name
                or name.endswith("AUTH_TOKEN")
                or name == "DATABASE_URL"
            )
            shown = "<hidden>" if hidden else repr(value)
            self.problems.append(f"{name}={shown}: {exc}")
            return None  # type: ignore[return-value]

    def problems_about(self, name: str) -> bool:
        """Whether a problem was already recorded for a variable starting with ``name``."""
        return any(p.startswith(name) for p in self.problems)

    def raise_if_problems(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)


def _int_range(lo: int, hi: int) -> Callable[[str], int]:
    def conv(value: str) -> int:
        try:
            n = int(value.strip())
        except ValueError:
            raise ValueError("is not an integer") from None
        if not lo <= n <= hi:
            raise ValueError(f"must be between {lo} and {hi}")
        return n

    return conv


def _float_range(lo: float, hi: float) -> Callable[[str], float]:
    def conv(value: str) -> float:
        try:
            x = float(value.strip())
        except ValueError:
            raise ValueError("is not a number") from None
        if not lo <= x <= hi:
            raise ValueError(f"must be between {lo} and {hi}")
        return x

    return conv


def _flag(value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def conv(value: str) -> str:
        v = value.strip()
        for option in options:
            if v.upper() == option.upper():
                return option
        raise ValueError(f"must be one of {', '.join(options)}")

    return conv


def _secret_min_bytes(n: int) -> Callable[[str], str]:
    def conv(value: str) -> str:
        if value and len(value.encode()) < n:
            raise ValueError(f"must be at least {n} bytes long")
        return value

    return conv


def _nonblank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value.strip()


def _voice(value: str) -> str:
    v = value.strip()
    if v.lower() in VOICES or v.startswith("voice_"):
        return v.lower() if v.lower() in VOICES else v
    raise ValueError(f"must be one of {', '.join(VOICES)} or a custom voice id voice_...")


def _database_url(value: str) -> str:
    """``sqlite:///<path>`` whose directory exists, or ``postgresql://`` with a database."""
    v = value.strip()
    scheme, sep, rest = v.partition("://")
    base = scheme.split("+", 1)[0].lower()
    if not sep or base not in ("sqlite", "postgresql", "postgres"):
        raise ValueError("must be a sqlite:///<path> or postgresql://user@host/db URL")
    if base == "sqlite":
        if not rest.startswith("/"):
            raise ValueError("sqlite URLs have three slashes: sqlite:///calls.db")
        path = rest[1:].split("?", 1)[0]
        if path in ("", ":memory:"):
            return v
        parent = Path(path).parent
        if not parent.is_dir():
            raise ValueError(f"directory {str(parent)!r} of the SQLite file does not exist")
        if Path(path).is_dir():
            raise ValueError(f"{path!r} is a directory, not a SQLite file")
        target = path if Path(path).exists() else str(parent)
        if not os.access(target, os.W_OK):
            raise ValueError(f"{target!r} is not writable (call records are written there)")
        return v
    if not urlsplit(v).path.strip("/"):
        raise ValueError("names no database (postgresql://user:password@host:5432/dbname)")
    return v


def _http_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL")
    return value.strip()


def _max_len(n: int) -> Callable[[str], str]:
    def conv(value: str) -> str:
        if len(value) > n:
            raise ValueError(f"is longer than {n} characters")
        return value

    return conv
