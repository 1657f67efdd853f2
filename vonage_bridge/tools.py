"""Function calling: a registry of async tools the model may call, and the built-in ones.

A tool is an async function ``handler(args, ctx)`` with a JSON-schema ``parameters`` object.
The registry's declarations go into ``session.update`` (``tools``, ``tool_choice: auto``); the
pure session emits a :class:`RunTool` for each completed ``function_call`` item, the shell
(``bridge.py``) runs the handler as a task of the call and hands the result back.

Deployers add their own tools without editing the bridge: ``TOOLS_MODULE=mypkg.tools`` is
imported at start-up and must expose ``register(registry)`` or a ``TOOLS`` list of
:class:`Tool`.

Built-ins: ``end_call`` (always) and ``transfer_call`` (with ``TRANSFER_NUMBER`` and the REST
API of a front door configured: Vonage, or Twilio; OpenAI SIP refers the call instead).
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .core.events import RunTool
from .errors import ConfigError

if TYPE_CHECKING:
    pass

__all__ = [
    "END_CALL",
    "RunTool",
    "Tool",
    "ToolContext",
    "ToolHandler",
    "ToolRegistry",
    "TOOL_NAME_RE",
    "build_registry",
    "check_tool",
    "load_tools_module",
    "transfer_tool",
]


@dataclass(slots=True)
class ToolContext:
    """What a tool may know and use about its call.

    Attributes:
        call_uuid: the front door's call id (Vonage call UUID, Twilio call SID).
        caller: the caller's number, if known (untrusted).
        transfer: connects this call to an E.164 number (digits) over its front door's
            REST API; None when that is not configured.
        front_door: one of ``store.FRONT_DOORS`` (``"vonage"``, ``"twilio"``,
            ``"browser"``...).
        called: the number the caller dialled (ours), if known; the caller id a Vonage
            transfer shows to its target.
    """

    call_uuid: str
    caller: str | None = None
    transfer: Callable[[str], Awaitable[None]] | None = None
    front_door: str = "vonage"
    called: str | None = None


ToolHandler = Callable[[dict[str, Any], ToolContext], Awaitable[Any]]
"""``handler(arguments, context)``: the result is sent to the model (a ``str`` as is,
anything else as JSON); an exception is sent as ``{"error": ...}``."""


@dataclass(frozen=True, slots=True)
class Tool:
    """One function the model may call.

    Attributes:
        name: ``^[a-zA-Z0-9_-]{1,64}$``.
        description: tells the model when to call it.
        parameters: JSON schema of the arguments object.
        handler: the async function to run.
        ends_call: once it returns, the call ends after the current reply has been heard
            (no new response is requested).
        timeout_s: bound on one run.
    """

    name: str
    description: str
    handler: ToolHandler
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    ends_call: bool = False
    timeout_s: float = 20.0

    def declaration(self) -> dict[str, Any]:
        """The ``session.tools`` entry."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
        }


class ToolRegistry:
    """Tools by name; later registrations replace earlier ones of the same name."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.add(t)

    def add(self, tool: Tool) -> None:
        """Register ``tool``; a tool of the same name is replaced (so a deployer's
        ``TOOLS_MODULE`` can override a built-in on purpose)."""
        self._tools[tool.name] = tool

    def tool(
        self,
        name: str,
        description: str,
        parameters: dict[str, Any] | None = None,
        *,
        timeout_s: float = 20.0,
    ) -> Callable[[ToolHandler], ToolHandler]:
        """Decorator form of :meth:`add`."""

        def register(handler: ToolHandler) -> ToolHandler:
            """Register ``handler`` as the tool and return it unchanged."""
            params = parameters or {"type": "object", "properties": {}}
            self.add(Tool(name, description, handler, params, timeout_s=timeout_s))
            return handler

        return register

    def get(self, name: str) -> Tool | None:
        """The tool called ``name``, or None (the model asked for an unknown function)."""
        return self._tools.get(name)

    @property
    def names(self) -> list[str]:
        """Registered tool names, in registration order."""
        return list(self._tools)

    def declarations(self) -> list[dict[str, Any]]:
        """Every tool's ``session.tools`` entry."""
        return [t.declaration() for t in self._tools.values()]

    def __len__(self) -> int:
        return len(self._tools)


# ---------------------------------------------------------------- built-ins


async def _end_call(args: dict[str, Any], ctx: ToolContext) -> str:
    return "The call will end once your goodbye has been heard. Do not say anything more."


END_CALL = Tool(
    "end_call",
    "End the phone call. Say a short goodbye first, in the same turn, then call this.",
    _end_call,
    ends_call=True,
)


def transfer_tool(number: str) -> Tool:
    """``transfer_call``: connects the caller to ``number`` (E.164 digits) through the call's
    front door (:attr:`ToolContext.transfer`: Twilio ``<Dial>`` update, Vonage ``transfer``),
    or else the Vonage Voice API ``transfer`` action with an inline NCCO
    (:func:`.vonage.ncco.transfer_ncco`: ``from`` is the number the caller dialled); our media
    leg ends with it."""

    async def transfer(args: dict[str, Any], ctx: ToolContext) -> str:
        """The tool's handler. Raises ``RuntimeError`` when the call has no transfer (no REST
        API)."""
        if ctx.transfer is not None:
            await ctx.transfer(number)
        else:
            raise RuntimeError("transfers are not configured")
        return "The caller is being transferred."

    return Tool(
        "transfer_call",
        "Transfer the caller to a human agent. Tell the caller first that you are "
        "transferring them.",
        transfer,
        {
            "type": "object",
            "properties": {"reason": {"type": "string", "description": "why, in a few words"}},
        },
    )


TOOL_NAME_RE = re.compile(r"[a-zA-Z0-9_-]{1,64}")
"""A function name OpenAI accepts: "a-z, A-Z, 0-9, or contain underscores and dashes, with a
maximum length of 64" (``FunctionObject.name``).
Source: https://platform.openai.com/docs/api-reference/chat/create"""


def check_tool(tool: object) -> None:
    """Refuse a tool that would only fail later, at ``session.update`` or when called.

    Raises:
        TypeError: ``tool`` is not a :class:`Tool`, or its handler is a plain (not ``async``)
            function or not callable.
        ValueError: its name breaks :data:`TOOL_NAME_RE`, its ``parameters`` is not a JSON
            object schema (``{"type": "object", ...}``, JSON-serializable), or its
            ``timeout_s`` is not a positive number.
    """
    if not isinstance(tool, Tool):
        raise TypeError(f"{tool!r} is not a vonage_bridge.tools.Tool")
    name = tool.name
    if not isinstance(name, str) or not TOOL_NAME_RE.fullmatch(name):
        raise ValueError(f"tool name {name!r} must be 1-64 letters, digits, _ or -")
    handler = tool.handler
    plain = inspect.isfunction(handler) or inspect.ismethod(handler)
    if not callable(handler) or (plain and not inspect.iscoroutinefunction(handler)):
        raise TypeError(f"tool {name!r}: handler must be an async function")
    params = tool.parameters
    if not isinstance(params, dict) or params.get("type") != "object":
        raise ValueError(f'tool {name!r}: parameters must be a {{"type": "object"}} JSON schema')
    try:
        json.dumps(params)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"tool {name!r}: parameters are not JSON ({exc})") from exc
    timeout = tool.timeout_s
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ValueError(f"tool {name!r}: timeout_s must be a positive number of seconds")


def _register_module(module: ModuleType, registry: ToolRegistry) -> None:
    """Register ``module``'s tools: ``register(registry)`` if it has one, else its ``TOOLS``.

    Raises:
        TypeError: it has neither ``register`` nor a ``TOOLS`` list of :class:`Tool`.
        Exception: whatever ``register(registry)`` raises.
    """
    register = getattr(module, "register", None)
    if callable(register):
        register(registry)
        return
    tools = getattr(module, "TOOLS", None)
    if not isinstance(tools, list | tuple) or not all(isinstance(t, Tool) for t in tools):
        raise TypeError("it has neither register(registry) nor a TOOLS list of Tool")
    for t in tools:
        registry.add(t)


def _check_all(registry: ToolRegistry) -> None:
    """:func:`check_tool` on every registered tool (same errors)."""
    for name in registry.names:
        check_tool(registry.get(name))


def load_tools_module(module_name: str, registry: ToolRegistry) -> None:
    """Import a deployer's module and register its tools: ``register(registry)`` if it has
    one, else every :class:`Tool` in its ``TOOLS`` list; every tool is then checked
    (:func:`check_tool`).

    Raises:
        ImportError: the module cannot be imported (``ModuleNotFoundError`` if it is missing).
        TypeError / ValueError: it has neither ``register`` nor a ``TOOLS`` list of tools, or
            it registers a bad tool.
        Exception: whatever the module raises on import or in ``register(registry)``.
    """
    _register_module(importlib.import_module(module_name), registry)
    _check_all(registry)


def _is_missing(exc: ModuleNotFoundError, module_name: str) -> bool:
    """Whether ``exc`` says ``module_name`` itself (or a parent package) does not exist, as
    opposed to a module it imports."""
    missing = exc.name or ""
    return bool(missing) and (module_name == missing or module_name.startswith(missing + "."))


def _problem(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


def build_registry(
    *, transfer_number: str | None, rest_configured: bool, tools_module: str | None
) -> ToolRegistry:
    """The tools of every call: built-ins, then the deployer's module (which may replace
    them by name).

    Raises:
        ConfigError: naming ``TOOLS_MODULE`` and the module when it is not importable, its
            import raises, it has nothing to register, its ``register(registry)`` raises, or
            it registers a bad tool (:func:`check_tool`).
    """
    registry = ToolRegistry([END_CALL])
    if transfer_number and rest_configured:
        registry.add(transfer_tool(transfer_number))
    if not tools_module:
        return registry
    where = f"TOOLS_MODULE={tools_module!r}"
    try:
        module = importlib.import_module(tools_module)
    except ModuleNotFoundError as exc:
        if not _is_missing(exc, tools_module):
            raise ConfigError([f"{where}: importing it raised {_problem(exc)}"]) from exc
        raise ConfigError([f"{where}: no such module on the import path ({exc})"]) from exc
    except Exception as exc:
        raise ConfigError([f"{where}: importing it raised {_problem(exc)}"]) from exc
    has_register = callable(getattr(module, "register", None))
    try:
        _register_module(module, registry)
    except Exception as exc:
        what = f"register(registry) raised {_problem(exc)}" if has_register else str(exc)
        raise ConfigError([f"{where}: {what}"]) from exc
    try:
        _check_all(registry)
    except (TypeError, ValueError) as exc:
        raise ConfigError([f"{where}: {exc}"]) from exc
    return registry
