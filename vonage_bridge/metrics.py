"""Prometheus metrics: every metric object of the service, and the small functions the call
sites use to move them. Shell (no I/O of its own: ``web.metrics_site`` serves them).

The metrics live in a :class:`Metrics` holding a registry of its own (not
``prometheus_client``'s global one, which any imported library may fill), with the library's
process, platform and garbage-collector collectors; :data:`METRICS` is the service's. Names
(dashboards depend on them) and labels::

    vonage_bridge_calls_active{front_door}                    gauge
    vonage_bridge_calls_total{front_door,direction,end}       counter
    vonage_bridge_call_duration_seconds{front_door}           histogram
    vonage_bridge_realtime_connect_seconds                    histogram
    vonage_bridge_reply_latency_seconds{front_door}           histogram
    vonage_bridge_playout_underruns_total{front_door}         counter
    vonage_bridge_barge_ins_total{front_door}                 counter
    vonage_bridge_dtmf_total                                  counter
    vonage_bridge_tool_calls_total{tool,outcome}              counter
    vonage_bridge_webhooks_rejected_total{route,reason}       counter
    vonage_bridge_realtime_errors_total{code}                 counter

Every label takes a value from a closed set, never a phone number, call id or free text:
``front_door`` one of ``store.FRONT_DOORS``; ``direction`` ``inbound``/``outbound``; ``end``
one of :data:`ENDS` (:func:`end_label` is the one map from our end reasons); ``tool`` a
registered tool's name, else ``other``; ``outcome`` one of :data:`TOOL_OUTCOMES`; ``route``
one of :data:`WEBHOOK_ROUTES`; ``reason`` one of :data:`REJECT_REASONS`; ``code`` one of
:data:`KNOWN_REALTIME_ERRORS`, ``none`` (an error without a code) or ``other``.

Nothing here is touched per audio frame: a call's counters move once, when it ends, from its
summary and counters (:func:`call_ended`); reply latency once per reply; the Realtime connect
time once per session; tool calls and rejected webhooks as they happen (a few a call).

Sources: Prometheus naming and instrumentation practice
(https://prometheus.io/docs/practices/naming/, https://prometheus.io/docs/practices/instrumentation/),
the Python client (https://prometheus.github.io/client_python/).
"""

from __future__ import annotations

import logging
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from .core.call_data import CallStats
from .errors import BridgeError
from .records import CallSummary
from .store import FRONT_DOORS

__all__ = [
    "ENDS",
    "KNOWN_REALTIME_ERRORS",
    "METRICS",
    "Metrics",
    "REJECT_REASONS",
    "TOOL_OUTCOMES",
    "WEBHOOK_ROUTES",
    "end_label",
]

log = logging.getLogger(__name__)

DIRECTIONS: Final = ("inbound", "outbound")

END_CALLER: Final = "caller"
END_ASSISTANT: Final = "assistant"
END_ERROR: Final = "error"
END_SHUTDOWN: Final = "shutdown"
END_TRANSFER: Final = "transfer"
END_TIMEOUT: Final = "timeout"
ENDS: Final = (END_CALLER, END_ASSISTANT, END_ERROR, END_SHUTDOWN, END_TRANSFER, END_TIMEOUT)
"""Values of ``vonage_bridge_calls_total``'s ``end`` label."""

_END_PREFIXES: Final[tuple[tuple[str, str], ...]] = (
    # media calls (bridge.run_call, media_call.serve_media_call)
    ("caller hung up", END_CALLER),
    ("socket closed while sending", END_CALLER),
    ("the assistant ended the call", END_ASSISTANT),
    ("voicemail: message left", END_ASSISTANT),  # outbound.VOICEMAIL_REASON
    ("server shutting down", END_SHUTDOWN),
    ("server draining", END_SHUTDOWN),  # calls.DRAIN_REASON: still live when the drain ended
    ("Realtime stalled", END_TIMEOUT),
    # call limits (core.limits), on every front door
    ("max_duration", END_TIMEOUT),
    ("inactivity", END_TIMEOUT),
    ("openai-sip: max_duration", END_TIMEOUT),
    ("openai-sip: inactivity", END_TIMEOUT),
    # OpenAI SIP calls (openai_sip.sideband: "openai-sip: <why>")
    ("openai-sip: transferred", END_TRANSFER),
    ("openai-sip: server shutting down", END_SHUTDOWN),
    ("openai-sip: sideband closed", END_CALLER),
)
"""Our end reasons, by how they start, and their ``end`` label; first match wins."""


def end_label(end_reason: str, *, transferred: bool = False) -> str:
    """The ``end`` label of a call that ended with ``end_reason`` (the record's and summary
    line's ``end_reason``): the one map from our end reasons to :data:`ENDS`.

    ======================================================  ============
    end reason (how it starts)                              ``end``
    ======================================================  ============
    ``caller hung up`` (socket closed, stream stopped),     ``caller``
    ``socket closed while sending``, SIP ``sideband
    closed`` (the caller hung up: OpenAI closes it)
    ``the assistant ended the call``; SIP ``<tool> tool``   ``assistant``
    (a call-ending tool such as ``end_call``);
    ``voicemail: message left`` (outbound voicemail)
    ``server shutting down`` (media and SIP), ``server      ``shutdown``
    draining`` (still live when the drain timed out)
    SIP ``transferred``; or the caller's side closing       ``transfer``
    after a successful transfer (``transferred``)
    ``Realtime stalled: no event for N s``; the call        ``timeout``
    limits ``max_duration`` and ``inactivity``
    anything else: Realtime refused, failed or closed,      ``error``
    internal errors, audio faster than real time, a
    cancelled call task, a SIP sideband that failed
    ======================================================  ============

    Args:
        end_reason: the call's end reason.
        transferred: a tool transferred the call (``ToolRunner.transferred``): the
            carrier then ends our leg, which we see as the caller's side closing.
    """
    for prefix, end in _END_PREFIXES:
        if end_reason.startswith(prefix):
            if end == END_CALLER and transferred:
                return END_TRANSFER
            return end
    if end_reason.startswith("openai-sip: ") and end_reason.endswith(" tool"):
        return END_ASSISTANT
    return END_ERROR


TOOL_OK: Final = "ok"
TOOL_ERROR: Final = "error"
TOOL_TIMEOUT: Final = "timeout"
TOOL_UNKNOWN: Final = "unknown"
TOOL_CANCELLED: Final = "cancelled"
TOOL_OUTCOMES: Final = (TOOL_OK, TOOL_ERROR, TOOL_TIMEOUT, TOOL_UNKNOWN, TOOL_CANCELLED)
"""``ok``: the handler returned; ``error``: it raised or its arguments were not a JSON
object; ``timeout``: it ran past its ``timeout_s``; ``unknown``: the model named a tool that
is not registered (``tool="other"``); ``cancelled``: the call ended while it ran."""
OTHER: Final = "other"

WEBHOOK_ROUTES: Final = frozenset(
    {
        "/incoming-call",
        "/answer",
        "/event",
        "/vonage/ws",
        "/twilio/incoming-call",
        "/twilio/media-stream",
        "/openai/webhook",
        "/webhook",
    }
)
"""The routes whose refusals ``vonage_bridge_webhooks_rejected_total`` counts (the ``route``
label): the front doors' webhooks and media sockets, not the API (``/connect``, ``/calls``)."""

REJECT_SIGNATURE: Final = "bad_signature"
REJECT_TOKEN: Final = "bad_token"
REJECT_INPUT: Final = "bad_input"
REJECT_RATE: Final = "rate_limited"
REJECT_REASONS: Final = (REJECT_SIGNATURE, REJECT_TOKEN, REJECT_INPUT, REJECT_RATE)
"""``bad_signature``: a Vonage JWT, Twilio signature or Standard Webhooks signature missing,
invalid or replayed; ``bad_token``: a media token missing, invalid, expired or spent, or a
second media socket for a call; ``bad_input``: a body or query that cannot be used (400,
413); ``rate_limited``: over ``UNSIGNED_CALLS_PER_MINUTE`` (429)."""

KNOWN_REALTIME_ERRORS: Final = frozenset(
    {
        "beta_api_shape_disabled",
        "conversation_already_has_active_response",
        "decimal_above_max_value",
        "decimal_below_min_value",
        "input_audio_buffer_commit_empty",
        "insufficient_quota",
        "integer_above_max_value",
        "integer_below_min_value",
        "invalid_api_key",
        "invalid_type",
        "invalid_value",
        "item_truncate_invalid_item_id",
        "missing_required_parameter",
        "rate_limit_exceeded",
        "server_error",
        "session_expired",
        "string_above_max_length",
        "unknown_parameter",
    }
)
"""Realtime ``error.code`` values kept as their own label value; any other is ``other``
and an error without a code ``none``.
Source: https://platform.openai.com/docs/api-reference/realtime-server-events/error"""

CALL_DURATION_BUCKETS: Final = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)
CONNECT_BUCKETS: Final = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
REPLY_LATENCY_BUCKETS: Final = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 5.0, 10.0)


def reject_reason(exc: BridgeError) -> str:
    """The ``reason`` label of a request refused with ``exc`` (one of
    :data:`REJECT_REASONS`)."""
    code = exc.code
    if "signature" in code:
        return REJECT_SIGNATURE
    if code.startswith("media_token") or code == "media_busy":
        return REJECT_TOKEN
    if exc.http_status == 429:
        return REJECT_RATE
    return REJECT_INPUT


class Metrics:
    """Every metric of the service, in one registry.

    Args:
        registry: where they are registered; None makes a new one with the process,
            platform (``python_info``) and gc collectors (tests may build their own).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        if registry is None:
            registry = CollectorRegistry(auto_describe=True)
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            GCCollector(registry=registry)
        self.registry = registry
        r = registry
        self.calls_active = Gauge(
            "vonage_bridge_calls_active", "Calls in progress.", ["front_door"], registry=r
        )
        self.calls = Counter(
            "vonage_bridge_calls_total",
            "Calls ended, by how they ended (end: caller, assistant, error, shutdown, "
            "transfer, timeout).",
            ["front_door", "direction", "end"],
            registry=r,
        )
        self.call_duration = Histogram(
            "vonage_bridge_call_duration_seconds",
            "Length of ended calls, media socket (or SIP accept) to end.",
            ["front_door"],
            buckets=CALL_DURATION_BUCKETS,
            registry=r,
        )
        self.realtime_connect = Histogram(
            "vonage_bridge_realtime_connect_seconds",
            "Opening a Realtime session: start of the socket upgrade to session.updated.",
            buckets=CONNECT_BUCKETS,
            registry=r,
        )
        self.reply_latency = Histogram(
            "vonage_bridge_reply_latency_seconds",
            "Caller's end of speech (server VAD speech_stopped) to the first reply frame "
            "handed to the caller.",
            ["front_door"],
            buckets=REPLY_LATENCY_BUCKETS,
            registry=r,
        )
        self.underruns = Counter(
            "vonage_bridge_playout_underruns",
            "Reply playout underruns (the caller's audio ran dry mid-reply).",
            ["front_door"],
            registry=r,
        )
        self.barge_ins = Counter(
            "vonage_bridge_barge_ins",
            "Barge-ins: the caller spoke over the assistant and its reply was cut.",
            ["front_door"],
            registry=r,
        )
        self.dtmf = Counter("vonage_bridge_dtmf", "DTMF key presses received.", registry=r)
        self.tool_calls = Counter(
            "vonage_bridge_tool_calls",
            "Tool calls by the model (tool: a registered name, else other).",
            ["tool", "outcome"],
            registry=r,
        )
        self.webhooks_rejected = Counter(
            "vonage_bridge_webhooks_rejected",
            "Webhooks and media sockets refused (bad signature, bad token, bad input, "
            "rate limited).",
            ["route", "reason"],
            registry=r,
        )
        self.realtime_errors = Counter(
            "vonage_bridge_realtime_errors",
            "Realtime error events (code: known codes, none, else other).",
            ["code"],
            registry=r,
        )
        # Every series a dashboard plots exists from the start, at 0.
        for door in FRONT_DOORS:
            self.calls_active.labels(door)
            self.call_duration.labels(door)
            self.reply_latency.labels(door)
            self.underruns.labels(door)
            self.barge_ins.labels(door)
            for direction in DIRECTIONS:
                for end in ENDS:
                    self.calls.labels(door, direction, end)

    # -------------------------------------------------------------- calls

    def call_started(self, front_door: str) -> None:
        """A call of ``front_door`` is live (pair with :meth:`call_finished`)."""
        self.calls_active.labels(front_door).inc()

    def call_finished(self, front_door: str) -> None:
        """The call counted by :meth:`call_started` is over."""
        self.calls_active.labels(front_door).dec()

    def call_ended(
        self,
        front_door: str,
        direction: str,
        end_reason: str,
        summary: CallSummary | None,
        stats: CallStats,
    ) -> None:
        """Count an ended call, once: from its summary (duration, underruns, barge-ins,
        DTMF) and its session's counters (Realtime error codes, a transfer).

        Args:
            front_door: one of ``store.FRONT_DOORS``.
            direction: ``inbound`` or ``outbound`` (anything else counts as ``inbound``).
            end_reason: the record's end reason (mapped by :func:`end_label`).
            summary: the call's summary; None when the call task was cancelled before one
                was made (then the figures below come from nowhere: only the call counts).
            stats: the session's counters.
        """
        if direction not in DIRECTIONS:
            direction = DIRECTIONS[0]
        end = end_label(end_reason, transferred=stats.transferred)
        self.calls.labels(front_door, direction, end).inc()
        if summary is not None:
            self.call_duration.labels(front_door).observe(summary.duration_s)
            if summary.underruns:
                self.underruns.labels(front_door).inc(summary.underruns)
            if summary.barge_ins:
                self.barge_ins.labels(front_door).inc(summary.barge_ins)
            if summary.dtmf:
                self.dtmf.inc(summary.dtmf)
        for code, n in stats.realtime_error_codes.items():
            self.realtime_errors.labels(realtime_error_label(code)).inc(n)

    # -------------------------------------------------------------- as they happen

    def reply_latency_for(self, front_door: str) -> Histogram:
        """The reply-latency histogram of ``front_door``, bound once per call: the call
        observes each reply's latency (s) on it."""
        return self.reply_latency.labels(front_door)

    def realtime_connected(self, seconds: float) -> None:
        """A Realtime session answered ``session.updated``, ``seconds`` after its upgrade
        began. Observed where ``session.updated`` is read as it arrives: by the call
        (``bridge``) for a session it opened, by the opener of a warm session
        (``realtime.prewarm.read_until_updated``) for one opened at the answer URL, whether
        or not its media socket has come yet."""
        self.realtime_connect.observe(seconds)

    def tool_called(self, tool: str, outcome: str, registered: bool) -> None:
        """A tool call ended with ``outcome`` (one of :data:`TOOL_OUTCOMES`); ``tool`` is the
        name the model gave, kept only when ``registered``."""
        self.tool_calls.labels(tool if registered else OTHER, outcome).inc()

    def webhook_rejected(self, route: str | None, reason: str) -> None:
        """A request to ``route`` (its canonical path) was refused for ``reason`` (one of
        :data:`REJECT_REASONS`); routes not in :data:`WEBHOOK_ROUTES` are not counted."""
        if route in WEBHOOK_ROUTES:
            self.webhooks_rejected.labels(route, reason).inc()


def realtime_error_label(code: str | None) -> str:
    """The ``code`` label of a Realtime error: a known code, ``none`` or ``other``."""
    if code is None or code == "":
        return "none"
    return code if code in KNOWN_REALTIME_ERRORS else OTHER


METRICS = Metrics()
"""The service's metrics (``web.metrics_site`` serves :attr:`Metrics.registry`)."""
