"""Core modules import nothing from the shell or entry rings, checked with ast.

The package has three rings: the pure core (no I/O, time passed in), the I/O shell around it,
and the entry points (``web/``, ``sim/``, ``__main__``); imports point inward only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "vonage_bridge"
PACKAGE_DIR = Path(__file__).resolve().parents[2] / PACKAGE

# The ring of every module follows from where it lives, never from a hand-kept
# list of files: a folder is pure, I/O (shell) or entry; inside a provider folder the file's
# role says its ring (``wire``, ``ncco``, ``twiml``, ``signing``... are pure; ``routes``,
# ``voice_api``, ``rest``, ``control``... do I/O).
PURE_FOLDERS = {"core", "audio"}
ENTRY_FOLDERS = {"web", "sim", "console"}
SHELL_FOLDERS = {"migrations"}  # Alembic revisions: DDL on a database connection
PROVIDER_FOLDERS = {"vonage", "twilio", "openai_sip", "realtime", "assistants", "browser"}
PROVIDER_FOLDERS |= {"recording"}
PURE_ROLES = {
    "__init__",
    "wire",
    "ncco",
    "twiml",
    "signing",
    "signature",
    "app_jwt",
    "webhook",
    "protocol",
    "instructions",
    "wav",
}
PURE_TOP = {"__init__", "config", "config_problems", "config_values", "config_sanity", "errors"}
PURE_TOP |= {"persona", "phone", "prices"}
ENTRY_TOP = {"__main__", "doctor"}
FRONT_DOORS = {"vonage", "twilio", "openai_sip", "browser"}

# Forbidden absolute module prefixes for pure modules, besides every I/O and entry module of
# the package itself: a module is forbidden if it equals one of these or starts with
# "<prefix>.". ``vonage`` is the umbrella SDK; ``vonage_voice`` (pure pydantic NCCO models)
# does not match it.
FORBIDDEN_LIBS = (
    "asyncio",
    "aiohttp",
    "websockets",
    "openai",
    "vonage",
    "vonage_http_client",
    "requests",
    "time",
)

# Names a pure module may import from a forbidden library: data, no I/O. ``WSCloseCode`` is an
# ``IntEnum`` of the RFC 6455 close codes, so that no module spells them as integers.
ALLOWED_NAMES = frozenset({"aiohttp.WSCloseCode"})


def ring(path: Path) -> str:
    """``pure``, ``shell`` or ``entry`` for a module of the package, by folder and role."""
    rel = path.relative_to(PACKAGE_DIR)
    if len(rel.parts) == 1:
        if rel.stem in PURE_TOP:
            return "pure"
        return "entry" if rel.stem in ENTRY_TOP else "shell"
    folder = rel.parts[0]
    if folder in PURE_FOLDERS:
        return "pure"
    if folder in ENTRY_FOLDERS:
        return "entry"
    if folder in SHELL_FOLDERS:
        return "shell"
    if folder in PROVIDER_FOLDERS:
        return "pure" if rel.stem in PURE_ROLES else "shell"
    raise AssertionError(f"{rel}: folder {folder!r} has no ring; add it to test_layering.py")


def all_modules() -> list[Path]:
    return sorted(p for p in PACKAGE_DIR.rglob("*.py") if "data" not in p.parts)


def core_modules() -> list[Path]:
    return [p for p in all_modules() if ring(p) == "pure"]


def impure_module_names() -> tuple[str, ...]:
    return tuple(module_name(p) for p in all_modules() if ring(p) != "pure")


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


FORBIDDEN = FORBIDDEN_LIBS + impure_module_names()


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
            imported = [f"{base}.{alias.name}" for alias in node.names]
            if not all(name in ALLOWED_NAMES for name in imported):
                names.append(base)
            names.extend(imported)
    return names


def forbidden_imports(source: str, modname: str, is_package: bool = False) -> list[str]:
    bad = []
    for name in imported_names(source, modname, is_package):
        if name in ALLOWED_NAMES:
            continue
        for prefix in FORBIDDEN:
            if name == prefix or name.startswith(prefix + "."):
                bad.append(name)
    return sorted(set(bad))


def test_layering_every_module_has_a_ring_and_pure_modules_exist() -> None:
    rings = {module_name(p): ring(p) for p in all_modules()}
    assert rings[f"{PACKAGE}.core.session"] == "pure"
    assert rings[f"{PACKAGE}.vonage.ncco"] == "pure"
    assert rings[f"{PACKAGE}.vonage.routes"] == "shell"
    assert rings[f"{PACKAGE}.web.app"] == "entry"
    assert rings[f"{PACKAGE}.browser.wire"] == "pure"
    assert rings[f"{PACKAGE}.console.phone"] == "entry"
    assert f"{PACKAGE}.audio.resampler" in rings


def test_layering_ring_of_an_unknown_folder_is_an_error() -> None:
    with pytest.raises(AssertionError, match="has no ring"):
        ring(PACKAGE_DIR / "plivo_new" / "wire.py")


@pytest.mark.parametrize(
    "path",
    [p for p in all_modules() if p.relative_to(PACKAGE_DIR).parts[0] in FRONT_DOORS],
    ids=lambda p: str(p.relative_to(PACKAGE_DIR)).replace("/", "."),
)
def test_layering_a_front_door_imports_no_other_front_door(path: Path) -> None:
    """A provider's code lives in its folder: ``vonage/`` never reaches into ``twilio/``."""
    own = path.relative_to(PACKAGE_DIR).parts[0]
    others = tuple(f"{PACKAGE}.{d}" for d in FRONT_DOORS - {own})
    names = imported_names(path.read_text(encoding="utf-8"), module_name(path), False)
    bad = sorted({n for n in names if n.startswith(others)})
    assert bad == [], f"{module_name(path)} imports {bad} from another front door"


@pytest.mark.parametrize(
    "path", core_modules(), ids=lambda p: str(p.relative_to(PACKAGE_DIR)).replace("/", ".")
)
def test_layering_core_module_imports_nothing_forbidden(path: Path) -> None:
    modname = module_name(path)
    bad = forbidden_imports(path.read_text(encoding="utf-8"), modname, path.stem == "__init__")
    assert bad == [], f"{modname} imports {bad}, which the core ring may not"


@pytest.mark.parametrize(
    ("source", "modname", "expected"),
    [
        ("import asyncio", "vonage_bridge.core.session", ["asyncio"]),
        ("import time", "vonage_bridge.core.session", ["time"]),
        ("from time import monotonic", "vonage_bridge.core.session", ["time", "time.monotonic"]),
        ("import aiohttp.web", "vonage_bridge.core.session", ["aiohttp.web"]),
        ("import vonage", "vonage_bridge.vonage.ncco", ["vonage"]),
        ("from vonage import Vonage", "vonage_bridge.vonage.ncco", ["vonage", "vonage.Vonage"]),
        ("import vonage_http_client", "vonage_bridge.config", ["vonage_http_client"]),
        ("from ..bridge import run_call", "vonage_bridge.core.session", ["vonage_bridge.bridge"]),
        ("from .. import web", "vonage_bridge.audio.playout", ["vonage_bridge.web"]),
        (
            "from ..realtime import connection",
            "vonage_bridge.vonage.wire",
            ["vonage_bridge.realtime.connection"],
        ),
        ("from .connection import open_", "vonage_bridge.realtime.protocol", None),
        ("from vonage_bridge.sim.vonage import X", "vonage_bridge.core.events", None),
        ("import aiohttp", "vonage_bridge.errors", ["aiohttp"]),
        ("from aiohttp import WSCloseCode, web", "vonage_bridge.errors", ["aiohttp.web"]),
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
        "from .realtime.instructions import caller_label",
        "import timeit",
        "from aiohttp import WSCloseCode",
    ],
)
def test_layering_checker_allows_core_dependencies(source: str) -> None:
    assert forbidden_imports(source, "vonage_bridge.vonage.ncco") == []
