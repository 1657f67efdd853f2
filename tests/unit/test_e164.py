"""E.164 numbers for Vonage's ``number`` fields: digits only, ``+`` optional.

Source: https://developer.vonage.com/en/voice/voice-api/ncco-reference (``phone`` endpoint)."""

from __future__ import annotations

import pytest

from vonage_bridge.phone import e164_digits


@pytest.mark.parametrize(
    ("value", "digits"),
    [
        ("+818012345678", "818012345678"),
        ("818012345678", "818012345678"),
        ("+14155550100", "14155550100"),
        ("+1234567", "1234567"),  # 7 digits: the shortest the SDK accepts
        ("+123456789012345", "123456789012345"),  # 15 digits: the E.164 maximum
    ],
)
def test_e164_digits_accepts_numbers_with_or_without_plus(value: str, digits: str) -> None:
    assert e164_digits(value) == digits


@pytest.mark.parametrize(
    "value",
    [
        "",
        "+",
        "+0818012345678",  # no country code starts with 0
        "08012345678",
        "+123456",  # too short
        "+1234567890123456",  # 16 digits
        "+81 80 1234 5678",
        "+81-80-1234-5678",
        " +818012345678",
        "++818012345678",
        "Vonage",
        "+8180123456７8",  # a full-width digit
        "818012345678\n",
    ],
)
def test_e164_digits_refuses_anything_else(value: str) -> None:
    with pytest.raises(ValueError, match="E.164"):
        e164_digits(value)


@pytest.mark.parametrize("value", [None, 818012345678, ["+818012345678"], {"n": 1}])
def test_e164_digits_refuses_non_strings(value: object) -> None:
    with pytest.raises(ValueError, match="E.164"):
        e164_digits(value)
