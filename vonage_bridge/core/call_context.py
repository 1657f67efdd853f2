"""What ``POST /connect`` says about one outbound call, for its Realtime session and its
record. Pure: data only, no I/O.

:class:`ConnectContext` travels from ``/connect`` to the call's answer URL and media socket,
keyed by the carrier's call id (``outbound.OutboundCalls``). There it becomes the call's
:class:`~.assistant.CallContext` (``OutboundCalls.context_for``): the named assistant (else
the one bound to our number), the per-call ``instructions`` appended to the assistant's, and
``{name}`` placeholders filled from ``variables``
(:func:`~.assistant.call_instructions_for`).

Sources: Realtime ``session.update`` ``instructions``
(https://platform.openai.com/docs/api-reference/realtime-client-events/session/update).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["ConnectContext", "MachineDetection", "RESERVED_VARIABLES"]

RESERVED_VARIABLES = frozenset({"caller", "FAQ_KB"})
"""Placeholders the instructions already resolve (the caller's number, the knowledge base)."""


@dataclass(frozen=True, slots=True)
class MachineDetection:
    """Voicemail handling of one outbound call.

    Attributes:
        on_machine: ``hangup`` (end the call when a machine answers) or ``leave_message``
            (wait for the beep, speak :attr:`message`, then end the call).
        message: what to say after the beep (``leave_message`` only).
    """

    on_machine: Literal["hangup", "leave_message"]
    message: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectContext:
    """The per-call fields of one ``POST /connect``.

    Attributes:
        assistant: the assistant's name (None: the one bound to our number, else the default).
        instructions: appended to the assistant's instructions, after a blank line.
        variables: values for ``{name}`` placeholders in the instructions.
        metadata: the caller's JSON object, stored on the record and sent with each outcome.
    """

    assistant: str | None = None
    instructions: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, object] | None = None
