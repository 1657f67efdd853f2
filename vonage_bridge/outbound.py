"""The outbound calls of one app, from ``POST /connect`` to their last outcome. Shell.

``POST /connect`` registers each call it placed (:meth:`OutboundCalls.add`), keyed by the
carrier's call id (Vonage call UUID, Twilio call SID), with its
:class:`~.core.call_context.ConnectContext`, ``status_url`` and voicemail handling. Then:

- the answer URL and the media socket take the call's context and parts from here
  (:meth:`OutboundCalls.context_for`, :meth:`OutboundCalls.deps_for`): its assistant with the
  per-call instructions and variables, and a store that writes the call's ``metadata`` and
  ``amd`` into its record;
- the carrier's status webhooks (Vonage event URL, Twilio status callback) come here
  (:func:`note_vonage_event`, :meth:`OutboundCalls.note`): each outcome is posted once to
  ``status_url`` (:mod:`.callbacks`), a machine is hung up on or left a message, and a call that
  ends without a record of its own (never answered, or answered but never bridged) gets one;
- voicemail (``on_machine: leave_message``): when the call's media socket is live on this
  instance (``CALLS``), the assistant keeps quiet while the machine's greeting plays
  (``LiveCall.hold_replies`` on Vonage's ``machine``), says the message itself at the beep
  (``LiveCall.leave_message`` on Vonage's ``machine`` with ``sub_state: beep_start``, or
  Twilio's ``AnsweredBy: machine_end_*`` from ``MachineDetection=DetectMessageEnd``), and the
  call is hung up over REST once it has been heard (end reason :data:`VOICEMAIL_REASON`).
  Without a live socket here the carrier says it instead (Vonage: a ``talk`` NCCO transfer;
  Twilio: a ``<Say>`` then ``<Hangup>`` TwiML update);
- an entry ends with its call's last outcome (``completed`` or a failure), or after
  :data:`ENTRY_TTL_S`; at most :data:`MAX_ENTRIES` are kept (the oldest go first).

Several instances (PostgreSQL shared): the entry is also written to the database before
``POST /connect`` answers (:meth:`OutboundCalls.remember`, ``outbound_store``), and an
instance that does not know a call reads it there (:meth:`OutboundCalls.find`) when the
call's answer URL, media socket or status webhook lands on it; it then acts on it as the
instance that placed it would. The last outcome deletes the row. An instance that finishes a
call whose media socket is on another instance waits for that call to end there (the
registry stops listing it) and takes its record's end reason and duration.

A call's ``completed`` waits (in the background) for its media call to finish, so it carries
the record's ``end_reason`` and ``duration_s``; nothing here blocks a webhook or a call. Every
background task is tracked and cancelled at shutdown.

Sources: https://developer.vonage.com/en/voice/voice-api/webhook-reference#event-webhook,
https://www.twilio.com/docs/voice/api/call-resource#statuscallback,
https://www.twilio.com/docs/voice/answering-machine-detection (``DetectMessageEnd``,
``AnsweredBy``), https://developer.vonage.com/en/voice/voice-api/ncco-reference (``talk``),
https://www.twilio.com/docs/voice/twiml/say.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .callbacks import CallbackSender
from .calls import CallDeps
from .core.assistant import CallContext
from .core.call_context import ConnectContext, MachineDetection
from .core.outcomes import (
    ANSWERED,
    COMPLETED,
    FAILURES,
    HUMAN,
    MACHINE,
    outcome_payload,
    twilio_amd,
    twilio_outcome,
    vonage_outcome,
)
from .errors import BridgeError, NotFound, StoreUnavailable
from .logs import call_context
from .outbound_store import (
    SharedOutbound,
    context_of,
    context_text,
    machine_of,
    machine_text,
)
from .records import store_record
from .store import FRONT_DOOR_TWILIO, CallFilter, CallPage, CallRecord, CallStore, SqlCallStore
from .twilio.twiml import say_hangup_twiml
from .web.keys import CALLS, HTTP, REGISTRY, SETTINGS, STORE, TWILIO_API, VOICE_API

if TYPE_CHECKING:
    from .assistants.book import Assistants

log = logging.getLogger(__name__)

ENTRY_TTL_S = 6 * 3600.0
"""An outbound call is forgotten this long (s) after ``POST /connect`` placed it, if no last
outcome came before."""
MAX_ENTRIES = 10_000
"""Outbound calls remembered at most per instance; past this the oldest is forgotten."""
MEDIA_WAIT_S = 30.0
"""``completed`` waits at most this long (s) for the call's media socket to finish."""
ELSEWHERE_POLL_S = 0.5
"""How often ``completed`` looks whether a media call held by another instance has ended
(the registry, another process: no event to wait on), s."""
BEEP_START = "beep_start"
"""Vonage's ``sub_state`` of the ``machine`` event sent at the beep (Twilio's
``machine_end_*`` verdicts are noted as this too: the greeting has ended)."""
VOICEMAIL_REASON = "voicemail: message left"
"""The end reason (record, summary line, ``completed`` callback) of a call whose voicemail
message the assistant said; metrics count it as ``end="assistant"``."""


@dataclass(slots=True)
class OutboundCall:
    """One call ``POST /connect`` placed, and what is known of it so far.

    Attributes:
        call_id: the carrier's call id.
        front_door: ``vonage`` or ``twilio`` (``store.FRONT_DOORS``).
        to_number / from_number: as the carrier writes them (Vonage digits, Twilio ``+``).
        context: the per-call context.
        status_url: where outcomes go, or None.
        machine_detection: voicemail handling, or None.
        placed_at: when ``/connect`` placed it (aware UTC); placed_mono: the same, monotonic.
        reported: the outcomes already posted (each at most once).
        answered: the carrier said it was answered.
        amd: ``human``, ``machine`` or None.
        left_message: the voicemail message was started (at most once).
        recorded: ``(end_reason, duration_s)`` of the record its media call wrote, if any.
        finished: its last outcome came; nothing more is done for it.
    """

    call_id: str
    front_door: str
    to_number: str
    from_number: str
    context: ConnectContext
    status_url: str | None = None
    machine_detection: MachineDetection | None = None
    placed_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    placed_mono: float = field(default_factory=time.monotonic)
    reported: set[str] = field(default_factory=set)
    answered: bool = False
    amd: str | None = None
    left_message: bool = False
    recorded: tuple[str, float] | None = None
    finished: bool = False
    last_callback: asyncio.Task[bool] | None = None


class RecordExtras:
    """A :class:`~.store.CallStore` for one outbound call's media call: adds its
    ``metadata`` and ``amd`` to the record and notes the end reason and duration for the
    ``completed`` callback, then writes through to the app's store (None: records off).
    With ``shared`` (several instances), the ``amd`` verdict another instance noted (the
    carrier's event reached it) is read back first; ``machine`` from either side wins."""

    def __init__(
        self, inner: CallStore | None, call: OutboundCall, shared: SharedOutbound | None = None
    ) -> None:
        self._inner = inner
        self._call = call
        self._shared = shared

    async def add(self, record: CallRecord) -> bool:
        """See :meth:`CallStore.add`: notes the end reason and duration (s), adds ``metadata``
        and ``amd``; False without a store."""
        call = self._call
        call.recorded = (record.end_reason, record.duration_s)
        if self._inner is None:
            return False
        if self._shared is not None and call.amd != MACHINE:
            call.amd = await self._shared.amd(call.call_id) or call.amd
        extra = dataclasses.replace(record, metadata=call.context.metadata, amd=call.amd)
        return await self._inner.add(extra)

    async def get(self, call_uuid: str) -> CallRecord | None:
        """See :meth:`CallStore.get`; None without a store."""
        return None if self._inner is None else await self._inner.get(call_uuid)

    async def page(
        self,
        *,
        limit: int,
        offset: int,
        front_door: str | None = None,
        where: CallFilter | None = None,
        min_cost: float | None = None,
    ) -> CallPage:
        """See :meth:`CallStore.page`; an empty page without a store."""
        if self._inner is None:
            return CallPage([], offset, limit, None)
        return await self._inner.page(
            limit=limit, offset=offset, front_door=front_door, where=where, min_cost=min_cost
        )

    async def close(self) -> None:
        """Nothing: the app owns the store."""


class OutboundCalls:
    """The outbound calls of one app (``OUTBOUND``).

    Args:
        app: the application (its settings, store, live calls and REST clients are read
            when needed).
    Attributes:
        sender: the callback sender, from start-up on, when ``CALLBACK_SECRET`` is set.
    """

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._calls: dict[str, OutboundCall] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loading: dict[str, asyncio.Task[OutboundCall | None]] = {}
        self.sender: CallbackSender | None = None
        self.shared: SharedOutbound | None = None
        """The entries shared with the other instances (PostgreSQL), from start-up on."""

    def __len__(self) -> int:
        return len(self._calls)

    def get(self, call_id: str) -> OutboundCall | None:
        """The outbound call ``call_id`` while it is remembered."""
        return self._calls.get(call_id)

    def add(self, call: OutboundCall) -> None:
        """Remember a call ``/connect`` placed; forgets expired ones and, past
        :data:`MAX_ENTRIES`, the oldest."""
        now = time.monotonic()
        calls = self._calls
        while calls:
            oldest = next(iter(calls.values()))
            if oldest.placed_mono > now - ENTRY_TTL_S and len(calls) < MAX_ENTRIES:
                break
            del calls[oldest.call_id]
        calls[call.call_id] = call

    async def remember(self, call: OutboundCall) -> None:
        """:meth:`add`, and with several instances the entry written to the database (so
        that the carrier's requests for it may land on any instance); a database that
        fails is logged, the call stays known here."""
        self.add(call)
        if self.shared is not None:
            row = {
                "call_id": call.call_id[:128],
                "front_door": call.front_door,
                "to_number": call.to_number[:32],
                "from_number": call.from_number[:32],
                "context": context_text(call.context),
                "status_url": call.status_url,
                "machine_detection": machine_text(call.machine_detection),
                "placed_at": call.placed_at,
            }
            await self.shared.put(row, ENTRY_TTL_S)

    async def find(self, call_id: str) -> OutboundCall | None:
        """The outbound call ``call_id``: from memory, else (several instances) from the
        database, then kept in memory; None for a call no instance placed (or expired)."""
        call = self._calls.get(call_id)
        if call is not None or self.shared is None:
            return call
        loading = self._loading.get(call_id)
        if loading is None:  # one read per call, whatever the requests waiting for it
            loading = asyncio.get_running_loop().create_task(self._load(call_id))
            self._loading[call_id] = loading
            loading.add_done_callback(lambda _t: self._loading.pop(call_id, None))
        return await asyncio.shield(loading)

    async def _load(self, call_id: str) -> OutboundCall | None:
        assert self.shared is not None
        row = await self.shared.get(call_id)
        if row is None:
            return None
        try:
            call = OutboundCall(
                call_id=row.call_id,
                front_door=row.front_door,
                to_number=row.to_number,
                from_number=row.from_number,
                context=context_of(row.context),
                status_url=row.status_url,
                machine_detection=machine_of(row.machine_detection),
                placed_at=row.placed_at,
                amd=row.amd if isinstance(row.amd, str) else None,
            )
        except (ValueError, TypeError, AttributeError):
            log.warning("outbound call %s: unreadable shared entry (ignored)", call_id[:64])
            return None
        with call_context(call_id[:64]):
            log.info("outbound call placed by another instance: its entry read from the database")
        return self._calls.setdefault(call_id, call)

    # --- the call's settings ---------------------------------------------------------------

    async def context_for(
        self, call_id: str, assistants: Assistants, our_number: str | None
    ) -> CallContext:
        """The call's assistant and what ``POST /connect`` added to it (instructions,
        variables, metadata); for a call not placed here, the assistant bound to
        ``our_number``. An assistant named at ``/connect`` that is gone by now, or a database
        that is down, gives the call the assistant of ``our_number`` (one WARNING line), never
        an error: the callee has already answered."""
        call = await self.find(call_id)
        if call is None:
            return await assistants.context(our_number)
        asked = call.context
        try:
            assistant = await assistants.resolve(asked.assistant, our_number)
        except (NotFound, StoreUnavailable) as exc:
            log.warning("assistant %s not available (%s): using our number's", asked.assistant, exc)
            assistant = (await assistants.context(our_number)).assistant
        return CallContext(
            assistant,
            instructions=asked.instructions,
            variables=asked.variables,
            metadata=asked.metadata or {},
        )

    async def deps_for(self, call_id: str, deps: CallDeps, *, outbound: bool = True) -> CallDeps:
        """``deps`` for the media call ``call_id``: a store adding its metadata and ``amd``
        (:class:`RecordExtras`); ``deps`` itself for an inbound call (``outbound`` False:
        the database is not asked)."""
        call = await self.find(call_id) if outbound else self._calls.get(call_id)
        if call is None:
            return deps
        return dataclasses.replace(deps, store=RecordExtras(deps.store, call, self.shared))

    # --- outcomes ------------------------------------------------------------------------------

    def note(
        self,
        call_id: str,
        outcome: str | None,
        *,
        amd: str | None = None,
        sub_state: str | None = None,
        detail: str | None = None,
        duration_s: float | None = None,
    ) -> None:
        """What a carrier said of ``call_id``: an ``outcome`` (``core.outcomes.OUTCOMES``), or
        only an AMD verdict (``amd``: ``human`` / ``machine``). Acts in the background;
        unknown calls and anything after the last outcome are ignored."""
        call = self._calls.get(call_id)
        if call is None or call.finished:
            return
        with call_context(call_id[:64]):
            was = call.amd
            machine = outcome == MACHINE or amd == MACHINE
            if machine:
                call.amd = MACHINE
            elif amd is not None and call.amd != MACHINE:
                call.amd = amd
            if call.amd != was and call.amd is not None and self.shared is not None:
                # the media call, and its record, may be on another instance
                self._spawn(self.shared.set_amd(call_id, call.amd), call_id)
            if machine:
                self._report(call, MACHINE)
                self._on_machine(call, sub_state)
            if outcome is None or outcome == MACHINE:
                return
            if outcome in FAILURES:
                if call.answered:
                    log.info("outbound call: %s after it was answered (ignored)", outcome)
                    return
                self._finish(call, outcome, detail, None)
            elif outcome == COMPLETED:
                self._finish(call, outcome, detail, duration_s)
            else:
                if outcome == ANSWERED:
                    call.answered = True
                self._report(call, outcome)

    def note_soon(self, call_id: str, outcome: str | None, **fields: Any) -> None:
        """:meth:`note` for a call this instance may not know yet: with several instances,
        its entry is read from the database first (in the background, in arrival order);
        calls no instance placed are ignored."""
        if call_id in self._calls or self.shared is None:
            self.note(call_id, outcome, **fields)
            return

        async def found_then_note() -> None:
            """Note the outcome once the call's entry was found in the database; ignore it
            otherwise."""
            if await self.find(call_id) is not None:
                self.note(call_id, outcome, **fields)

        self._spawn(found_then_note(), call_id)

    def _report(self, call: OutboundCall, outcome: str, **completed: Any) -> None:
        """Post ``outcome`` to the call's ``status_url`` (once per outcome)."""
        if outcome in call.reported:
            return
        call.reported.add(outcome)
        log.info("outbound call outcome: %s", outcome)
        if call.status_url is None or self.sender is None:
            return
        payload = outcome_payload(
            call.call_id, outcome, datetime.now(UTC), call.context.metadata, **completed
        )
        call.last_callback = self.sender.send(
            call.call_id, call.status_url, payload, after=call.last_callback
        )

    def _finish(
        self, call: OutboundCall, outcome: str, detail: str | None, duration_s: float | None
    ) -> None:
        """The last outcome: the record (if the call has none) and the callback, once the
        media call (if any) has finished; then the call is forgotten."""
        call.finished = True
        self._spawn(self._close(call, outcome, detail, duration_s), call.call_id)

    async def _close(
        self, call: OutboundCall, outcome: str, detail: str | None, duration_s: float | None
    ) -> None:
        with call_context(call.call_id[:64]):
            live = self._app[CALLS].get(call.call_id)
            if live is not None:  # its record is written when it ends
                await asyncio.wait({live.task}, timeout=MEDIA_WAIT_S)
            elif self.shared is not None:
                await self._ended_elsewhere(call)
            store = self._app.get(STORE)
            if call.recorded is None:
                reason = outcome if detail is None else f"{outcome} ({detail})"
                if call.amd == MACHINE and outcome == COMPLETED:
                    reason = "machine"
                duration = (duration_s or 0.0) if outcome == COMPLETED else 0.0
                written = store is not None and await store_record(
                    store, self._record(call, reason, duration)
                )
                end_reason = reason
            else:
                written = store is not None
                end_reason, duration = call.recorded
            if outcome == COMPLETED:
                base = self._app[SETTINGS].server.public_url.http
                record_url = f"{base}/calls/{call.call_id}" if written else None
                self._report(
                    call,
                    outcome,
                    duration_s=duration,
                    end_reason=end_reason,
                    record_url=record_url,
                )
            else:
                self._report(call, outcome)
            self._calls.pop(call.call_id, None)
            if self.shared is not None:
                await self.shared.remove(call.call_id)

    async def _ended_elsewhere(self, call: OutboundCall) -> None:
        """The call's media socket is on another instance: wait (at most
        :data:`MEDIA_WAIT_S`) until no instance lists it live, then take the end reason and
        duration of the record it wrote, if any (``call.recorded``)."""
        registry = self._app.get(REGISTRY)
        store = self._app.get(STORE)
        if registry is None or store is None:
            return
        deadline = time.monotonic() + MEDIA_WAIT_S
        try:
            while await registry.holder(call.call_id) is not None:
                if time.monotonic() > deadline:
                    return
                await asyncio.sleep(ELSEWHERE_POLL_S)
            record = await store.get(call.call_id)
        except StoreUnavailable:
            return
        if record is not None and call.recorded is None:
            call.recorded = (record.end_reason, record.duration_s)

    def _record(self, call: OutboundCall, end_reason: str, duration_s: float) -> CallRecord:
        """The record of a call whose media never came: ``duration_s`` is the carrier's
        (0 for a call never answered)."""
        ended = datetime.now(UTC)
        return CallRecord(
            call_uuid=call.call_id,
            direction="outbound",
            started_at=call.placed_at,
            ended_at=ended,
            duration_s=duration_s,
            end_reason=end_reason,
            front_door=call.front_door,
            from_number=call.from_number,
            to_number=call.to_number,
            metadata=call.context.metadata,
            amd=call.amd,
        )

    def _on_machine(self, call: OutboundCall, sub_state: str | None) -> None:
        """A machine answered: hang up at once, or hold the assistant's replies until the
        beep and then have it say the message (the carrier says it when the call's media
        socket is not live on this instance)."""
        md = call.machine_detection
        if md is None or call.left_message:
            return
        if md.on_machine == "hangup":
            call.left_message = True  # one hang-up
            self._spawn(self._hang_up(call), call.call_id)
            return
        if not md.message:
            return
        live = self._app[CALLS].get(call.call_id)
        if sub_state != BEEP_START:
            if live is not None:
                live.hold_replies()
            return
        call.left_message = True
        if live is not None:
            live.leave_message(md.message, VOICEMAIL_REASON)
            log.info("voicemail: the assistant leaves the message after the beep")
        else:
            self._spawn(self._leave_message(call, md.message), call.call_id)

    async def _hang_up(self, call: OutboundCall) -> None:
        with call_context(call.call_id[:64]):
            try:
                if call.front_door == FRONT_DOOR_TWILIO:
                    twilio = self._app.get(TWILIO_API)
                    if twilio is not None:
                        await twilio.hang_up(call.call_id)
                else:
                    vonage = self._app.get(VOICE_API)
                    if vonage is not None:
                        await vonage.hang_up(call.call_id)
                log.info("voicemail: hung up on the machine")
            except BridgeError as exc:
                log.warning("voicemail: hang-up failed: %s", exc.message)

    async def _leave_message(self, call: OutboundCall, message: str) -> None:
        """The carrier says ``message`` (no media socket of the call is live here): Vonage
        transfers the call to a ``talk`` NCCO, Twilio updates it with ``<Say>`` then
        ``<Hangup>``; the call ends when it has been said."""
        language = self._app[SETTINGS].call.greeting_language
        with call_context(call.call_id[:64]):
            try:
                if call.front_door == FRONT_DOOR_TWILIO:
                    twilio = self._app.get(TWILIO_API)
                    if twilio is None:
                        return
                    await twilio.update_twiml(call.call_id, say_hangup_twiml(message, language))
                else:
                    vonage = self._app.get(VOICE_API)
                    if vonage is None:
                        return
                    ncco = [{"action": "talk", "text": message, "language": language}]
                    await vonage.transfer(call.call_id, ncco)
                log.info("voicemail: the carrier leaves the message after the beep")
            except BridgeError as exc:
                log.warning("voicemail: leaving the message failed: %s", exc.message)

    def _spawn(self, coro: Coroutine[Any, Any, None], call_id: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"outbound-{call_id[:64]}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the background work started so far (tests)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def close(self) -> None:
        """Shutdown: cancel the background work, then the pending callbacks."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        if self.sender is not None:
            await self.sender.close()


OUTBOUND = web.AppKey("outbound_calls", OutboundCalls)
"""The app's :class:`OutboundCalls`."""


def note_vonage_event(app: web.Application, fields: dict[str, Any]) -> None:
    """A verified Vonage event URL request, for the outbound call it names (``uuid``, or
    ``call_uuid`` for ``machine`` / ``human``); nothing for other calls."""
    calls = app.get(OUTBOUND)
    if calls is None:
        return
    call_id = fields.get("uuid") or fields.get("call_uuid")
    if not isinstance(call_id, str) or not call_id:
        return
    status = fields.get("status")
    detail = fields.get("detail") or fields.get("reason")
    sub_state = fields.get("sub_state")
    calls.note_soon(
        call_id,
        vonage_outcome(status),
        amd=HUMAN if status == HUMAN else None,
        sub_state=sub_state if isinstance(sub_state, str) else None,
        detail=detail[:64] if isinstance(detail, str) else None,
        duration_s=_seconds(fields.get("duration")),
    )


def note_twilio_status(app: web.Application, fields: dict[str, str]) -> None:
    """A verified Twilio status callback (``CallStatus``) or asynchronous AMD callback
    (``AnsweredBy``), for the outbound call it names (``CallSid``)."""
    calls = app.get(OUTBOUND)
    call_id = fields.get("CallSid")
    if calls is None or not call_id:
        return
    outcome = twilio_outcome(fields.get("CallStatus"))
    answered_by = fields.get("AnsweredBy")
    amd = twilio_amd(answered_by)
    if answered_by is not None:
        outcome = None  # the AMD callback repeats CallStatus: in-progress
    greeting_over = answered_by is not None and answered_by.startswith("machine_end_")
    calls.note_soon(
        call_id,
        outcome,
        amd=amd,
        sub_state=BEEP_START if greeting_over else None,
        detail=fields.get("SipResponseCode"),
        duration_s=_seconds(fields.get("CallDuration")),
    )


def _seconds(value: object) -> float | None:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def setup_outbound(app: web.Application) -> None:
    """Keep the app's :class:`OutboundCalls` and mount the Twilio status callback (with
    ``TWILIO_ACCOUNT_SID``). Call after the HTTP client's and the store's cleanup contexts are
    appended: the callbacks and the records of failed calls use them, and the background work
    is cancelled before they close."""
    from .twilio import status  # the route imports this module

    calls = app[OUTBOUND] = OutboundCalls(app)
    if app[SETTINGS].twilio.enabled:
        app.router.add_routes(status.routes)

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        """Cleanup context: the callback sender and, on PostgreSQL, the shared table; at exit,
        :meth:`OutboundCalls.close`."""
        secret = app[SETTINGS].outbound.callback_secret
        if secret is not None:
            calls.sender = CallbackSender(app[HTTP], secret.get_secret_value())
        store = app.get(STORE)
        if isinstance(store, SqlCallStore) and store.dialect == "postgresql":
            calls.shared = SharedOutbound(store)  # several instances may share it
        yield
        await calls.close()

    app.cleanup_ctx.append(lifetime)


__all__ = [
    "OUTBOUND",
    "VOICEMAIL_REASON",
    "OutboundCall",
    "OutboundCalls",
    "RecordExtras",
    "note_twilio_status",
    "note_vonage_event",
    "setup_outbound",
]
