"""What ``POST /connect`` says about one outbound call, for its Realtime session and its
record. Pure: data only, no I/O.

:class:`CallContext` travels from ``/connect`` (``outbound.request``) to the call's media
socket, keyed by the carrier's call id (``outbound.registry``), and changes only the persona
the session is given (:meth:`CallContext.persona`): the per-call ``instructions`` are appended
to the deployer's, and ``{name}`` placeholders are filled from ``variables``.

Sources: Realtime ``session.update`` ``instructions``
(https://platform.openai.com/docs/api-reference/realtime-client-events/session/update).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["CallContext", "MachineDetection", "fill_placeholders"]

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]{0,63})\}")
RESERVED_VARIABLES = frozenset({"caller", "FAQ_KB"})
"""Placeholders the persona already resolves (the caller's number, the knowledge base)."""


def fill_placeholders(text: str, variables: Mapping[str, str]) -> str:
    """``text`` with each ``{name}`` whose ``name`` is in ``variables`` replaced by its value;
    unknown placeholders (and ``{caller}``, filled later) are left as they are. Values are
    inserted once: a value that itself contains ``{name}`` is not expanded again."""
    if not variables:
        return text

    def sub(match: re.Match[str]) -> str:
        value = variables.get(match.group(1))
        return match.group(0) if value is None else value

    return _PLACEHOLDER.sub(sub, text)


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
class CallContext:
    """The per-call context of an outbound call.

    Attributes:
        assistant: the assistant's name, carried for the assistants feature to resolve
            (None: the default assistant).
        instructions: appended to the persona, after a blank line.
        variables: values for ``{name}`` placeholders in the persona and ``instructions``.
        metadata: the caller's JSON object, stored on the record and sent with each outcome.
    """

    assistant: str | None = None
    instructions: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, object] | None = None

    @property
    def changes_persona(self) -> bool:
        """Whether :meth:`persona` differs from the persona it is given."""
        return bool(self.instructions or self.variables)

    def persona(self, system_message: str) -> str:
        """The persona for this call: ``system_message`` plus :attr:`instructions`, with the
        :attr:`variables` filled in (unknown placeholders and ``{caller}`` left as is)."""
        text = system_message
        if self.instructions:
            text = f"{text.rstrip()}\n\n{self.instructions.strip()}"
        return fill_placeholders(text, self.variables)
