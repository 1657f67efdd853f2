"""audio.path: Vonage's path by L16 rate (l16_path), and PassthroughPath's formats."""

from __future__ import annotations

import pytest

from vonage_bridge.audio.formats import PCM16_24K, PCMU_8K, AudioFormat
from vonage_bridge.audio.path import PassthroughPath, ResamplingPath, l16_path


def test_l16_at_24_khz_is_realtimes_pcm_and_passes_through() -> None:
    path = l16_path(24_000)
    assert isinstance(path, PassthroughPath)  # no resampler at all: nothing to pay per frame
    assert path.caller == AudioFormat("l16", 24_000)
    assert path.realtime == PCM16_24K
    frame = bytes(range(256)) * 3 + bytes(192)  # 960 bytes: 20 ms
    assert path.up(frame) is frame and path.down(frame) is frame
    assert path.drain_down() == b""


@pytest.mark.parametrize("rate", [8_000, 16_000])
def test_other_l16_rates_are_resampled_to_and_from_24_khz(rate: int) -> None:
    path = l16_path(rate, "LQ")
    assert isinstance(path, ResamplingPath)
    assert path.caller == AudioFormat("l16", rate)
    assert path.realtime == PCM16_24K


def test_passthrough_refuses_formats_that_are_not_the_same_bytes() -> None:
    assert PassthroughPath().caller == PassthroughPath().realtime == PCMU_8K
    with pytest.raises(ValueError, match="not the same bytes"):
        PassthroughPath(AudioFormat("l16", 16_000), PCM16_24K)
    with pytest.raises(ValueError, match="not the same bytes"):
        PassthroughPath(PCMU_8K, AudioFormat("l16", 8_000))  # 1 byte a sample against 2
