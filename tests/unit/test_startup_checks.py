"""The pure parts of start-up: tool checks, TOOLS_MODULE messages, bind-failure wording,
one-line configuration errors and the database description (never the password)."""

from __future__ import annotations

import errno
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vonage_bridge.__main__ import (
    EXIT_CONFIG,
    EXIT_FAILURE,
    bind_failure,
    config_message,
    describe_exception,
)
from vonage_bridge.errors import ConfigError
from vonage_bridge.tools import (
    END_CALL,
    Tool,
    ToolContext,
    build_registry,
    check_tool,
    transfer_tool,
)
from vonage_bridge.web.app import describe_database


async def ok(args: dict[str, Any], ctx: ToolContext) -> str:
    return "ok"


def sync(args: dict[str, Any], ctx: ToolContext) -> str:
    return "not awaitable"


class AsyncCallable:
    async def __call__(self, args: dict[str, Any], ctx: ToolContext) -> str:
        return "ok"


# --- check_tool ----------------------------------------------------------------------------


def test_check_tool_accepts_the_built_ins_and_an_async_callable_object() -> None:
    check_tool(END_CALL)
    check_tool(transfer_tool("447700900002"))
    check_tool(Tool("by-object_2", "An object with async __call__.", AsyncCallable()))
    check_tool(Tool("x" * 64, "Longest name.", ok, timeout_s=1))


@pytest.mark.parametrize(
    ("tool", "error", "words"),
    [
        ("end_call", TypeError, "is not a vonage_bridge.tools.Tool"),
        (Tool("look up", "d", ok), ValueError, "'look up'"),
        (Tool("x" * 65, "d", ok), ValueError, "1-64"),
        (Tool("", "d", ok), ValueError, "1-64"),
        (Tool("lookup", "d", sync), TypeError, "async"),  # type: ignore[arg-type]
        (Tool("lookup", "d", "not callable"), TypeError, "async"),  # type: ignore[arg-type]
        (Tool("lookup", "d", ok, {"type": "string"}), ValueError, "JSON schema"),
        (Tool("lookup", "d", ok, {"type": "object", "default": {1, 2}}), ValueError, "JSON"),
        (Tool("lookup", "d", ok, timeout_s=0), ValueError, "timeout_s"),
        (Tool("lookup", "d", ok, timeout_s=True), ValueError, "timeout_s"),
    ],
    ids=[
        "not-a-tool",
        "space-in-name",
        "name-too-long",
        "empty-name",
        "sync-handler",
        "uncallable-handler",
        "parameters-not-object",
        "parameters-not-json",
        "zero-timeout",
        "bool-timeout",
    ],
)
def test_check_tool_refuses_what_would_fail_later(
    tool: object, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        check_tool(tool)


# --- TOOLS_MODULE messages ----------------------------------------------------------------


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("vb_"):
            del sys.modules[name]


def problem_of(tools_module: str) -> str:
    with pytest.raises(ConfigError) as caught:
        build_registry(transfer_number=None, rest_configured=False, tools_module=tools_module)
    [problem] = caught.value.problems
    assert problem.startswith(f"TOOLS_MODULE={tools_module!r}: ")
    return problem


def test_tools_module_missing_differs_from_a_missing_dependency(module_dir: Path) -> None:
    (module_dir / "vb_needs_dep.py").write_text("import vb_not_installed_dep\n")

    assert "no such module" in problem_of("vb_nowhere")
    assert "no such module" in problem_of("vb_nowhere.sub")
    dep = problem_of("vb_needs_dep")
    assert "importing it raised ModuleNotFoundError" in dep and "vb_not_installed_dep" in dep


def test_tools_module_register_failure_and_nothing_to_register(module_dir: Path) -> None:
    (module_dir / "vb_reg_fails.py").write_text(
        "def register(registry):\n    raise KeyError('TOOLS_API_URL')\n"
    )
    (module_dir / "vb_empty.py").write_text("X = 1\n")
    (module_dir / "vb_not_a_tool.py").write_text(
        "def register(registry):\n    registry.add('lookup')\n"
    )

    assert "register(registry) raised KeyError: 'TOOLS_API_URL'" in problem_of("vb_reg_fails")
    assert "neither register(registry) nor a TOOLS list" in problem_of("vb_empty")
    assert "register(registry) raised AttributeError" in problem_of("vb_not_a_tool")


def test_tools_module_may_replace_a_built_in_with_a_valid_tool(module_dir: Path) -> None:
    (module_dir / "vb_override.py").write_text(
        "from vonage_bridge.tools import Tool\n"
        "async def bye(args, ctx):\n    return 'bye'\n"
        "TOOLS = [Tool('end_call', 'Our own goodbye.', bye, ends_call=True)]\n"
    )
    registry = build_registry(
        transfer_number=None, rest_configured=False, tools_module="vb_override"
    )
    tool = registry.get("end_call")
    assert tool is not None and tool.description == "Our own goodbye."


# --- bind failures and one-line messages ----------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "status", "words"),
    [
        (OSError(errno.EADDRINUSE, "in use"), EXIT_FAILURE, "PORT=3000 is already in use"),
        (OSError(errno.EADDRNOTAVAIL, "x"), EXIT_CONFIG, "HOST='h' is not an address"),
        (OSError(errno.EACCES, "x"), EXIT_CONFIG, "PORT=3000 on HOST='h' may not be bound"),
        (socket.gaierror(-2, "Name or service not known"), EXIT_CONFIG, "does not resolve"),
        (OSError(errno.EINVAL, "x"), EXIT_FAILURE, "cannot listen on HOST='h' PORT=3000"),
    ],
    ids=["in-use", "not-local", "privileged", "unresolvable", "other"],
)
def test_bind_failure_names_the_variable_and_picks_the_exit_status(
    exc: OSError, status: int, words: str
) -> None:
    failure = bind_failure(exc, "h", 3000)
    assert failure.status == status
    assert words in failure.message
    assert "\n" not in failure.message


def test_config_message_puts_every_problem_on_one_line() -> None:
    exc = ConfigError(["PORT='abc': not an integer", "DATABASE_URL: cannot open\n(detail)"])
    assert config_message(exc) == (
        "invalid configuration: PORT='abc': not an integer; DATABASE_URL: cannot open (detail)"
    )


def test_describe_exception_is_one_line_or_just_the_class() -> None:
    assert describe_exception(RuntimeError("a\n  b")) == "RuntimeError: a b"
    assert describe_exception(TimeoutError()) == "TimeoutError"


# --- the database in the start-up log --------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////srv/calls.db", "SQLite file /srv/calls.db"),
        ("sqlite:///:memory:", "SQLite in memory, lost at exit"),
        (
            "postgresql://app:pw-s3cret@db.example:6543/calls",
            "PostgreSQL database calls on db.example:6543 as user app",
        ),
        (
            "postgres://app:pw-s3cret@db.example/calls",
            "PostgreSQL database calls on db.example:5432",
        ),
        ("postgresql://app:pw-s3cret@/calls", "PostgreSQL database calls on the default host"),
    ],
)
def test_database_is_described_without_its_password(url: str, expected: str) -> None:
    text = describe_database(url)
    assert text.startswith(expected)
    assert "pw-s3cret" not in text


def test_relative_sqlite_path_is_shown_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert describe_database("sqlite:///calls.db") == f"SQLite file {tmp_path / 'calls.db'}"
