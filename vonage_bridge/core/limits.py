"""Call limits: the longest a call may last, and how much silence it may hold. Pure: time is
passed in (seconds on any one clock).

:class:`CallLimits` is checked by the call's one watch timer (``bridge.py``; the SIP sideband
too), never per frame. Each :meth:`~CallLimits.check` is told whether the line is busy now
(the caller speaking as the server VAD reports it, or assistant audio being produced or
still playing) and whether the caller was heard since the last check (speech or DTMF); it
returns what to do, each at most once (:meth:`~CallLimits.step` does the check from the
call's ``CallSession`` and queues the words for the model; both timers use it)::

    when                                         -> action            then
    max_call_s - wrap_up_s reached               -> WRAP_UP           the model is told
    max_call_s reached                           -> GOODBYE_MAX       goodbye, end: max_duration
    silence for inactivity_timeout_s             -> STILL_THERE       the model asks once
    the same silence again (no caller since)     -> GOODBYE_SILENT    goodbye, end: inactivity

Silence is time in which the line is not busy. The caller speaking resets the question:
a later silence asks again. Hold music counts as speech only when the server VAD says so
(its ``speech_started``), and the assistant's own question counts as audio, so the second
silence is measured from the end of the question.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .session import CallSession

__all__ = [
    "END_INACTIVITY",
    "END_MAX_DURATION",
    "LimitAction",
    "CallLimits",
    "GOODBYE_TIMEOUT_S",
    "WRAP_UP_S",
]

WRAP_UP_S = 30.0
"""The model is told to wrap up this long before ``max_call_s`` (at most half of it)."""
GOODBYE_TIMEOUT_S = 10.0
"""After a limit's goodbye was asked for, the call ends once it has played, or after this
long (s) whatever happens."""
END_MAX_DURATION = "max_duration"
"""The end reason (record, summary line) of a call ended at ``max_call_s``."""
END_INACTIVITY = "inactivity"
"""The end reason of a call ended for silence."""

WRAP_UP_PROMPT = (
    "The call must end in about {seconds} seconds. Wrap up now: finish the current topic "
    "briefly and do not start a new one."
)
STILL_THERE_PROMPT = (
    "The line has been silent for a while. Ask the caller, in one short sentence and in "
    "their language, whether they are still there."
)
GOODBYE_PROMPT = {
    END_MAX_DURATION: (
        "The call has reached its time limit. Say a short, polite goodbye in one sentence, "
        "in the caller's language; do not ask anything."
    ),
    END_INACTIVITY: (
        "The caller has not answered. Say a short goodbye in one sentence, in the caller's "
        "language; do not ask anything."
    ),
}


class LimitAction(Enum):
    """What the watch does when a limit is reached (the table in the module docstring)."""

    WRAP_UP = "wrap_up"
    STILL_THERE = "still_there"
    GOODBYE_MAX = END_MAX_DURATION
    GOODBYE_SILENT = END_INACTIVITY

    @property
    def ends_call(self) -> bool:
        """Whether the action is a goodbye that ends the call."""
        return self in (LimitAction.GOODBYE_MAX, LimitAction.GOODBYE_SILENT)


class CallLimits:
    """The limits of one call and where it stands against them.

    Args:
        max_call_s: the call's longest length, s (> 0).
        inactivity_timeout_s: silence allowed, s; 0 turns the silence check off.
        started_at: when the call started (the clock of every later ``now``).

    Attributes:
        ending: the end reason once a goodbye was asked for (``max_duration`` or
            ``inactivity``), else None; nothing more is returned after it.
    """

    __slots__ = (
        "max_call_s",
        "inactivity_s",
        "started_at",
        "quiet_since",
        "asked",
        "wrapped",
        "ending",
        "heard",
        "responses_at_goodbye",
    )

    def __init__(self, max_call_s: float, inactivity_timeout_s: float, started_at: float) -> None:
        if max_call_s <= 0 or inactivity_timeout_s < 0:
            raise ValueError("max_call_s must be > 0 and inactivity_timeout_s >= 0")
        self.max_call_s = max_call_s
        self.inactivity_s = inactivity_timeout_s
        self.started_at = started_at
        self.quiet_since = started_at
        self.asked = False
        self.wrapped = False
        self.ending: str | None = None
        self.heard = (0, 0)  # the caller's speech starts and DTMF keys at the last step
        self.responses_at_goodbye = 0  # responses the call had when its goodbye was asked for

    @property
    def wrap_up_s(self) -> float:
        """How long before the end the model is told to wrap up (:data:`WRAP_UP_S`, at most
        half the call)."""
        return min(WRAP_UP_S, self.max_call_s / 2)

    def tick_s(self, cap_s: float = 1.0) -> float:
        """How often to check, s: ``cap_s`` at most, a quarter of the shortest limit at
        least as often (a check late by a tick ends a call that much late)."""
        shortest = min(x for x in (self.max_call_s, self.inactivity_s or self.max_call_s))
        return min(cap_s, shortest / 4)

    def check(self, now: float, *, busy: bool, caller_heard: bool) -> LimitAction | None:
        """What to do at ``now``, if anything.

        Args:
            busy: the caller is speaking (VAD) or assistant audio is being produced or played.
            caller_heard: the caller spoke or pressed a key since the previous check.
        """
        if self.ending is not None:
            return None
        if caller_heard:
            self.asked = False
        if busy or caller_heard:
            self.quiet_since = now
        elapsed = now - self.started_at
        if elapsed >= self.max_call_s:
            self.ending = END_MAX_DURATION
            return LimitAction.GOODBYE_MAX
        if not self.wrapped and elapsed >= self.max_call_s - self.wrap_up_s:
            self.wrapped = True
            return LimitAction.WRAP_UP
        if self.inactivity_s and not busy and now - self.quiet_since >= self.inactivity_s:
            self.quiet_since = now
            if not self.asked:
                self.asked = True
                return LimitAction.STILL_THERE
            self.ending = END_INACTIVITY
            return LimitAction.GOODBYE_SILENT
        return None

    def prompt(self, action: LimitAction) -> str:
        """The instructions that go with ``action`` (to the model)."""
        if action is LimitAction.WRAP_UP:
            return WRAP_UP_PROMPT.format(seconds=round(self.wrap_up_s))
        if action is LimitAction.STILL_THERE:
            return STILL_THERE_PROMPT
        return GOODBYE_PROMPT[action.value]

    def step(self, session: CallSession, now: float, *, busy: bool) -> LimitAction | None:
        """One tick of a call's watch timer (both the media doors' and the SIP sideband's):
        :meth:`check` told whether the caller spoke or pressed a key since the last step
        (``session.stats``), then the action's words queued for the model: ``WRAP_UP`` as a
        system message (``session.tell``), the others as a reply now (``session.prompt``).
        The caller flushes the session's output; after a goodbye, :meth:`goodbye_said` says
        when it has been spoken.

        Args:
            busy: as for :meth:`check`.
        Returns:
            the action taken, if any.
        """
        stats = session.stats
        heard = (stats.speech_started, stats.dtmf)
        action = self.check(now, busy=busy, caller_heard=heard != self.heard)
        self.heard = heard
        if action is None:
            return None
        if action is LimitAction.WRAP_UP:
            session.tell(self.prompt(action))
        else:
            session.prompt(self.prompt(action))
        if action.ends_call:
            self.responses_at_goodbye = stats.responses
        return action

    def goodbye_said(self, session: CallSession) -> bool:
        """After a goodbye from :meth:`step`: a response has ended since it was asked for
        and none is active or waiting to be played out (whether the caller has heard it all
        is the door's to say)."""
        return session.stats.responses > self.responses_at_goodbye and session.reply_finished
