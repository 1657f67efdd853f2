"""One exception tree: every exception class of the service derives from ``BridgeError``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types

import pytest
from aiohttp import WSCloseCode

import vonage_bridge
from vonage_bridge import errors
from vonage_bridge.errors import (
    ApplicationApiError,
    BridgeError,
    CallGone,
    FeatureDisabled,
    RequestError,
    StoreUnavailable,
    TwilioApiError,
    UpstreamError,
    WebhookRejected,
)

# The fakes (``sim/``) raise their own errors on purpose: a fake's complaint about the bridge
# must never satisfy a test that expects the bridge to raise a BridgeError.
EXEMPT_PACKAGES = ("vonage_bridge.sim",)


def service_modules() -> list[types.ModuleType]:
    """Every module of the package outside ``sim/``, imported."""
    names = [
        info.name
        for info in pkgutil.walk_packages(vonage_bridge.__path__, "vonage_bridge.")
        if not info.name.startswith(EXEMPT_PACKAGES) and not info.name.endswith("__main__")
    ]
    return [vonage_bridge, *(importlib.import_module(n) for n in names)]


def stray_exceptions(modules: list[types.ModuleType]) -> list[str]:
    """``module.Class`` of every exception class defined in ``modules`` that is not a
    :class:`BridgeError`."""
    stray = []
    for module in modules:
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__ or not issubclass(cls, BaseException):
                continue
            if not issubclass(cls, BridgeError):
                stray.append(f"{module.__name__}.{name}")
    return stray


def test_every_exception_class_of_the_service_is_a_bridge_error() -> None:
    modules = service_modules()
    assert len(modules) > 30  # the walk found the package, not an empty list
    assert stray_exceptions(modules) == []


def test_the_scan_finds_a_stray_exception() -> None:
    module = types.ModuleType("vonage_bridge.fake_module")
    exec(  # a module defining one stray and one proper error, and importing a third
        "from vonage_bridge.errors import UpstreamError\n"
        "class Stray(ValueError): pass\n"
        "class Fine(UpstreamError): pass\n",
        module.__dict__,
    )
    assert stray_exceptions([module]) == ["vonage_bridge.fake_module.Stray"]


def test_every_error_class_lives_in_errors_py() -> None:
    """The tree is drawn in one docstring, so every class of it is defined in one module."""
    defined = {
        cls.__name__
        for module in service_modules()
        if module is not errors
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if cls.__module__ == module.__name__ and issubclass(cls, BaseException)
    }
    assert defined == set()
    for name, cls in inspect.getmembers(errors, inspect.isclass):
        if issubclass(cls, BridgeError):
            assert name in (errors.__doc__ or ""), f"{name} is missing from the drawn tree"


@pytest.mark.parametrize(
    ("error", "parent", "code", "http_status"),
    [
        (TwilioApiError("x"), UpstreamError, "twilio_api_error", 502),
        (ApplicationApiError("x"), UpstreamError, "vonage_application_api_error", 502),
        (StoreUnavailable("x"), FeatureDisabled, "call_records_unavailable", 503),
        (WebhookRejected("x"), RequestError, "webhook_rejected", 400),
        (CallGone("x"), BridgeError, "call_gone", 500),
    ],
)
def test_moved_errors_keep_their_place_code_and_status(
    error: BridgeError, parent: type[BridgeError], code: str, http_status: int
) -> None:
    assert isinstance(error, parent)
    assert (error.code, error.http_status) == (code, http_status)


def test_call_gone_is_not_an_upstream_error() -> None:
    """``except UpstreamError`` around a SIP control call must not swallow a 404."""
    assert not issubclass(CallGone, UpstreamError)


def test_webhook_rejected_keeps_its_reason() -> None:
    assert WebhookRejected("stale timestamp").reason == "stale timestamp"


def test_close_codes_are_ws_close_code_members() -> None:
    for _, cls in inspect.getmembers(errors, inspect.isclass):
        if issubclass(cls, BridgeError):
            assert isinstance(cls.close_code, WSCloseCode), cls.__name__
