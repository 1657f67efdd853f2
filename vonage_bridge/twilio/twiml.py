"""TwiML for the Twilio front door: answer (greeting, then the media stream), transfer, hang-up.
Pure.

Built with the ``twilio`` package's ``VoiceResponse`` (ElementTree underneath), which escapes
every attribute and text value; caller-controlled values are also bounded and restricted to a
small safe character set first (:func:`bounded_parameters`). Nothing follows ``<Connect>``:
``<Connect><Stream>`` is bidirectional and blocks the rest of the TwiML until the stream ends.

Sources: https://www.twilio.com/docs/voice/twiml/stream; twilio-python's
``twilio.twiml.voice_response`` (https://github.com/twilio/twilio-python).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from twilio.twiml.voice_response import VoiceResponse

from ..errors import LocalProtocolError
from ..phone import bounded_headers, e164_digits

PARAMETER_FIELDS = {"CallSid": "call_sid", "From": "from", "To": "to", "Direction": "direction"}
"""Voice webhook form fields passed to the stream as ``<Parameter>``s, by parameter name."""
_LANGUAGE = re.compile(r"([a-zA-Z]{2,3})(?:[-_]([a-zA-Z]{2})(?:[-_]([a-zA-Z]{3}))?)?")
# XML 1.0 forbids most control characters even when escaped; ElementTree writes them raw.
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def bounded_parameters(fields: Mapping[str, object]) -> dict[str, str]:
    """The stream ``<Parameter>``s from Twilio's Voice webhook form fields (untrusted).

    Picks ``CallSid``, ``From``, ``To`` and ``Direction`` (string values only) as ``call_sid``,
    ``from``, ``to`` and ``direction``; each value is cut to 64 characters from a small safe
    set, and empty values are left out, as :func:`.ncco.bounded_headers` does.
    """
    picked = {
        name: value
        for field, name in PARAMETER_FIELDS.items()
        if isinstance(value := fields.get(field), str)
    }
    return bounded_headers(picked)


def say_language(language: str | None) -> str | None:
    """``language`` in a form ``<Say>`` accepts (``en-US``, ``cmn-CN``, ``en-GB-WLS``,
    ``en``), normalised in case and ``_``; ``None`` if it is not such a tag.
    """
    if not language:
        return None
    match = _LANGUAGE.fullmatch(language.strip())
    if match is None:
        return None
    lang, region, variant = match.groups()
    parts = [lang.lower()]
    if region:
        parts.append(region.upper())
    if variant:
        parts.append(variant.upper())
    return "-".join(parts)


def answer_twiml(
    *,
    stream_url: str,
    parameters: Mapping[str, str],
    greeting_text: str | None,
    greeting_language: str | None = None,
) -> str:
    """The TwiML returned from the Voice webhook (``POST /twilio/incoming-call``).

    Args:
        stream_url: ``wss://`` (or ``ws://`` for local fakes) URL of our media socket, query
            already URL-encoded.
        parameters: ``<Parameter>`` names and values, e.g. from :func:`bounded_parameters`;
            they come back in the ``start`` message's ``customParameters``.
        greeting_text: spoken first with ``<Say>``; ``None`` or blank means no ``<Say>``.
        greeting_language: BCP-47 tag for the ``<Say>``; left out when ``None`` or not in a
            form Twilio accepts (:func:`say_language`), so Twilio uses its default voice.
    Returns:
        The TwiML document, with XML declaration.
    Raises:
        LocalProtocolError: if ``stream_url`` is not a ``ws://`` or ``wss://`` URL (a bug or
            bad configuration that ``config.py`` should have caught).
    """
    if not stream_url.startswith(("wss://", "ws://")):
        raise LocalProtocolError(f"stream url is not a WebSocket URL: {stream_url!r}")
    response = VoiceResponse()
    greeting = _xml_safe(greeting_text or "").strip()
    if greeting:
        response.say(greeting, language=say_language(greeting_language))
    stream = response.connect().stream(url=_xml_safe(stream_url))
    for name, value in parameters.items():
        stream.parameter(name=_xml_safe(name), value=_xml_safe(value))
    return str(response.to_xml())


def dial_twiml(number: str) -> str:
    """``<Response><Dial>+number</Dial></Response>``: the call update for a transfer.

    Args:
        number: E.164, with or without ``+`` (``TRANSFER_NUMBER`` holds digits only).
    Raises:
        LocalProtocolError: if ``number`` is not an E.164 phone number.
    """
    try:
        digits = e164_digits(number)
    except ValueError:
        raise LocalProtocolError(f"transfer number {number!r} is not E.164") from None
    response = VoiceResponse()
    response.dial("+" + digits)
    return str(response.to_xml())


def say_hangup_twiml(text: str, language: str | None = None) -> str:
    """``<Response><Say>text</Say><Hangup/></Response>``: the call update that leaves a
    voicemail message when no media socket of the call is live here.

    Args:
        text: what to say (escaped; characters XML 1.0 forbids are dropped).
        language: BCP-47 tag for the ``<Say>`` (:func:`say_language`; left out when not one).
    Source: https://www.twilio.com/docs/voice/twiml/say
    """
    response = VoiceResponse()
    response.say(_xml_safe(text).strip(), language=say_language(language))
    response.hangup()
    return str(response.to_xml())


def hangup_twiml() -> str:
    """``<Response><Hangup/></Response>``."""
    response = VoiceResponse()
    response.hangup()
    return str(response.to_xml())


def _xml_safe(text: str) -> str:
    return _XML_INVALID.sub("", text)
