"""The metrics' label maps (end reasons, refusals, Realtime error codes) and the figures a call
adds at its end, on a registry of the test's own."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from vonage_bridge.bridge import TOO_FAST_REASON
from vonage_bridge.calls import DRAIN_REASON, SHUTDOWN_REASON
from vonage_bridge.config import Settings
from vonage_bridge.core.call_data import CallStats
from vonage_bridge.errors import (
    ConfigError,
    Forbidden,
    InvalidRequest,
    JsonTooDeep,
    TooManyRequests,
    Unauthorized,
)
from vonage_bridge.metrics import (
    ENDS,
    REJECT_REASONS,
    Metrics,
    end_label,
    realtime_error_label,
    reject_reason,
)
from vonage_bridge.records import CallSummary


@pytest.mark.parametrize(
    ("reason", "end"),
    [
        ("caller hung up (close 1000)", "caller"),
        ("caller hung up (twilio stream stopped)", "caller"),
        ("socket closed while sending (playout-pump)", "caller"),
        ("the assistant ended the call", "assistant"),
        ("voicemail: message left", "assistant"),
        (SHUTDOWN_REASON, "shutdown"),
        (DRAIN_REASON, "shutdown"),
        ("Realtime stalled: no event for 15 s", "timeout"),
        ("max_duration", "timeout"),
        ("inactivity", "timeout"),
        ("openai-sip: max_duration", "timeout"),
        ("openai-sip: inactivity", "timeout"),
        ("Realtime closed the session (close 1011)", "error"),
        ("Realtime socket error: boom", "error"),
        ("Realtime handshake refused: HTTP 401 Unauthorized", "error"),
        ("internal error in caller-pump: KeyError()", "error"),
        (TOO_FAST_REASON, "error"),
        ("call task cancelled", "error"),
        ("call handler stopped", "error"),
        ("openai-sip: sideband closed (1000)", "caller"),
        ("openai-sip: end_call tool", "assistant"),
        ("openai-sip: transferred", "transfer"),
        ("openai-sip: server shutting down", "shutdown"),
        ("openai-sip: sideband failed", "error"),
        ("openai-sip: sideband error: ClientError()", "error"),
    ],
)
def test_end_reasons_map_to_one_end_label(reason: str, end: str) -> None:
    assert end_label(reason) == end
    assert end in ENDS


def test_a_transferred_call_that_the_carrier_ends_is_a_transfer() -> None:
    assert end_label("caller hung up (close 1000)", transferred=True) == "transfer"
    assert end_label("openai-sip: sideband closed (1000)", transferred=True) == "transfer"
    # a transfer does not hide a fault or a shutdown
    assert end_label("Realtime socket error: x", transferred=True) == "error"
    assert end_label(SHUTDOWN_REASON, transferred=True) == "shutdown"


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (Unauthorized("x", code="signature_missing"), "bad_signature"),
        (Unauthorized("x", code="signature_replayed"), "bad_signature"),
        (Unauthorized("x", code="invalid_signature"), "bad_signature"),
        (Forbidden("x", code="twilio_signature_invalid"), "bad_signature"),
        (Forbidden("x", code="media_token_expired"), "bad_token"),
        (Forbidden("x", code="media_busy"), "bad_token"),
        (InvalidRequest("x", code="invalid_json"), "bad_input"),
        (JsonTooDeep(64), "bad_input"),
        (TooManyRequests("x", code="too_many_calls"), "rate_limited"),
    ],
)
def test_refusals_map_to_a_few_reasons(exc: InvalidRequest, reason: str) -> None:
    assert reject_reason(exc) == reason
    assert reason in REJECT_REASONS


def test_realtime_error_codes_are_bounded() -> None:
    assert realtime_error_label("session_expired") == "session_expired"
    assert realtime_error_label(None) == "none"
    assert realtime_error_label("") == "none"
    assert realtime_error_label("x" * 500) == "other"
    assert realtime_error_label("rtc_123e4567") == "other"


def value(m: Metrics, name: str, **labels: str) -> float:
    got = m.registry.get_sample_value(name, labels)
    return 0.0 if got is None else got


def summary(**fields: object) -> CallSummary:
    base: dict[str, object] = dict(
        call_uuid="c-1",
        front_door="twilio",
        duration_s=42.0,
        end_reason="caller hung up (twilio stream stopped)",
        frames_in=100,
        frames_out=90,
        bad_frames=0,
        underruns=3,
        responses=2,
        held_ms=0.0,
        ms_to_realtime=2000.0,
        ms_from_realtime=1800.0,
        barge_ins=2,
        dtmf=4,
    )
    base.update(fields)
    return CallSummary(**base)  # type: ignore[arg-type]


def test_a_call_adds_its_figures_once_at_its_end() -> None:
    m = Metrics(CollectorRegistry())
    stats = CallStats(realtime_error_codes={"session_expired": 1, None: 2, "made_up": 1})
    s = summary()
    m.call_started("twilio")
    assert value(m, "vonage_bridge_calls_active", front_door="twilio") == 1
    m.call_finished("twilio")
    m.call_ended("twilio", "outbound", s.end_reason, s, stats)

    assert value(m, "vonage_bridge_calls_active", front_door="twilio") == 0
    labels = {"front_door": "twilio", "direction": "outbound"}
    assert value(m, "vonage_bridge_calls_total", **labels, end="caller") == 1
    assert value(m, "vonage_bridge_call_duration_seconds_count", front_door="twilio") == 1
    assert value(m, "vonage_bridge_call_duration_seconds_sum", front_door="twilio") == 42.0
    assert value(m, "vonage_bridge_playout_underruns_total", front_door="twilio") == 3
    assert value(m, "vonage_bridge_barge_ins_total", front_door="twilio") == 2
    assert value(m, "vonage_bridge_dtmf_total") == 4
    assert value(m, "vonage_bridge_realtime_errors_total", code="session_expired") == 1
    assert value(m, "vonage_bridge_realtime_errors_total", code="none") == 2
    assert value(m, "vonage_bridge_realtime_errors_total", code="other") == 1
    # every dashboard series exists before any call, at 0
    assert value(m, "vonage_bridge_calls_total", **labels, end="timeout") == 0
    assert (
        m.registry.get_sample_value(
            "vonage_bridge_calls_total",
            {"front_door": "openai-sip", "direction": "inbound", "end": "shutdown"},
        )
        == 0.0
    )


def test_a_call_without_a_summary_is_still_counted() -> None:
    m = Metrics(CollectorRegistry())
    m.call_ended("vonage", "sideways", SHUTDOWN_REASON, None, CallStats(transferred=True))
    labels = {"front_door": "vonage", "direction": "inbound", "end": "shutdown"}
    assert value(m, "vonage_bridge_calls_total", **labels) == 1
    assert value(m, "vonage_bridge_call_duration_seconds_count", front_door="vonage") == 0


def test_tool_labels_take_registered_names_only() -> None:
    m = Metrics(CollectorRegistry())
    m.tool_called("lookup_order", "ok", registered=True)
    m.tool_called("+447700900000", "unknown", registered=False)
    assert value(m, "vonage_bridge_tool_calls_total", tool="lookup_order", outcome="ok") == 1
    assert value(m, "vonage_bridge_tool_calls_total", tool="other", outcome="unknown") == 1
    tools = {
        s.labels["tool"] for f in m.registry.collect() for s in f.samples if "tool" in s.labels
    }
    assert tools == {"lookup_order", "other"}


def test_rejections_count_on_webhook_routes_only() -> None:
    m = Metrics(CollectorRegistry())
    m.webhook_rejected("/twilio/incoming-call", "bad_signature")
    m.webhook_rejected("/connect", "bad_signature")
    m.webhook_rejected(None, "bad_input")
    name = "vonage_bridge_webhooks_rejected_total"
    assert value(m, name, route="/twilio/incoming-call", reason="bad_signature") == 1
    routes = {
        s.labels["route"] for f in m.registry.collect() for s in f.samples if "route" in s.labels
    }
    assert routes == {"/twilio/incoming-call"}


def test_metrics_port_must_not_be_the_service_port() -> None:
    env = {"OPENAI_API_KEY": "sk-x", "SERVER_URL": "http://x", "ALLOW_UNSIGNED_WEBHOOKS": "true"}
    assert Settings.from_env(env).metrics.port == 9091
    assert Settings.from_env({**env, "METRICS_PORT": "0"}).metrics.enabled is False
    with pytest.raises(ConfigError) as info:
        Settings.from_env({**env, "PORT": "3000", "METRICS_PORT": "3000"})
    (problem,) = info.value.problems
    assert problem.startswith("METRICS_PORT=3000: the same as PORT")
    with pytest.raises(ConfigError) as info:
        Settings.from_env({**env, "METRICS_PORT": "nine"})
    assert "METRICS_PORT='nine'" in info.value.problems[0]
