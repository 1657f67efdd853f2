"""Core modules import nothing from the shell or entry rings (style.md 7.1), checked with ast."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "vonage_bridge"
PACKAGE_DIR = Path(__file__).resolve().parents[2] / PACKAGE

CORE_FILES = [
    "config.py",
    "errors.py",
    "events.py",
    "session.py",
    "media_token.py",
    "app_jwt.py",
    "webhook_auth.py",
    "twilio_auth.py",
    "sip/webhook.py",
]
CORE_DIRS = ["audio", "telephony"]
CORE_EXTRA = ["realtime/protocol.py", "realtime/instructions.py"]

# Forbidden absolute module prefixes: a module is forbidden if it equals one of these or
# starts with "<prefix>.". ``vonage`` is the umbrella SDK; ``vonage_voice`` (pure pydantic NCCO
# models) does not match it.
FORBIDDEN = (
    "asyncio",
    "aiohttp",
    "websockets",
    "openai",
    "vonage",
    "vonage_http_client",
    "requests",
    "time",
    f"{PACKAGE}.web",
    f"{PACKAGE}.bridge",
    f"{PACKAGE}.sim",
    f"{PACKAGE}.realtime.connection",
)


def core_modules() -> list[Path]:
    paths = [PACKAGE_DIR / name for name in CORE_FILES + CORE_EXTRA]
    for d in CORE_DIRS:
        paths.extend(sorted((PACKAGE_DIR / d).glob("*.py")))
    return paths


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(source: str, modname: str, is_package: bool) -> list[str]:
    """Every absolute module name an import statement in ``source`` could load.

    ``from X import y`` yields both ``X`` and ``X.y`` (``y`` may be a submodule).
    """
    package = modname if is_package else modname.rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[: -(node.level - 1)]
                base = ".".join(base_parts)
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            names.append(base)
            names.extend(f"{base}.{alias.name}" for alias in node.names)
    return names


def forbidden_imports(source: str, modname: str, is_package: bool = False) -> list[str]:
    bad = []
    for name in imported_names(source, modname, is_package):
        for prefix in FORBIDDEN:
            if name == prefix or name.startswith(prefix + "."):
                bad.append(name)
    return sorted(set(bad))


def test_layering_core_module_list_matches_files_on_disk() -> None:
    paths = core_modules()
    missing = [str(p) for p in paths if not p.is_file()]
    assert not missing
    # audio/* and telephony/* really contributed their modules.
    names = {module_name(p) for p in paths}
    assert {f"{PACKAGE}.audio.resampler", f"{PACKAGE}.telephony.ncco"} <= names


@pytest.mark.parametrize(
    "path", core_modules(), ids=lambda p: str(p.relative_to(PACKAGE_DIR)).replace("/", ".")
)
def test_layering_core_module_imports_nothing_forbidden(path: Path) -> None:
    modname = module_name(path)
    bad = forbidden_imports(path.read_text(encoding="utf-8"), modname, path.stem == "__init__")
    assert bad == [], f"{modname} imports {bad}, which the core ring may not (style.md 7.1)"


@pytest.mark.parametrize(
    ("source", "modname", "expected"),
    [
        ("import asyncio", "vonage_bridge.session", ["asyncio"]),
        ("import time", "vonage_bridge.session", ["time"]),
        ("from time import monotonic", "vonage_bridge.session", ["time", "time.monotonic"]),
        ("import aiohttp.web", "vonage_bridge.session", ["aiohttp.web"]),
        ("import vonage", "vonage_bridge.telephony.ncco", ["vonage"]),
        ("from vonage import Vonage", "vonage_bridge.telephony.ncco", ["vonage", "vonage.Vonage"]),
        ("import vonage_http_client", "vonage_bridge.config", ["vonage_http_client"]),
        ("from .bridge import run_call", "vonage_bridge.session", ["vonage_bridge.bridge"]),
        ("from .. import web", "vonage_bridge.audio.playout", ["vonage_bridge.web"]),
        (
            "from ..realtime import connection",
            "vonage_bridge.telephony.vonage",
            ["vonage_bridge.realtime.connection"],
        ),
        ("from .connection import open_", "vonage_bridge.realtime.protocol", None),
        ("from vonage_bridge.sim.vonage import X", "vonage_bridge.events", None),
    ],
)
def test_layering_checker_flags_forbidden_imports(
    source: str, modname: str, expected: list[str] | None
) -> None:
    """The scanner itself catches absolute, ``from`` and relative forms."""
    bad = forbidden_imports(source, modname)
    if expected is None:
        assert bad, f"{source!r} in {modname} was not flagged"
    else:
        assert set(expected) <= set(bad)


@pytest.mark.parametrize(
    "source",
    [
        "from vonage_voice import Connect, Talk, WebsocketEndpoint",
        "import numpy as np",
        "import soxr",
        "import datetime",
        "from ..realtime.protocol import input_audio_append",
        "from .realtime.instructions import session_update",
        "import timeit",
    ],
)
def test_layering_checker_allows_core_dependencies(source: str) -> None:
    assert forbidden_imports(source, "vonage_bridge.telephony.ncco") == []
