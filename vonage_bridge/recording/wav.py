"""The recording file format: a canonical stereo PCM16 WAV, G.711 mu-law decoding, and the
file name of a call. Pure: no I/O.

A recording is RIFF/WAVE with one ``fmt `` chunk (PCM, 2 channels, 16 bits, the front door's
rate) and one ``data`` chunk of interleaved little-endian samples, left = caller, right =
assistant: 44 bytes of header, then 4 bytes per sample frame. The writer puts a header with
the sizes at 0 first and writes the real sizes at the end (and after each flush, so a file
cut short by a crash still opens).

Sources: the WAVE format (Microsoft/IBM RIFF, as summarised at
http://soundfile.sapp.org/doc/WaveFormat/); G.711 mu-law: ITU-T G.711
(https://www.itu.int/rec/T-REC-G.711), decoding as in its reference implementation.
"""

from __future__ import annotations

import hashlib
import re
import struct

import numpy as np
import numpy.typing as npt

HEADER_BYTES = 44
CHANNELS = 2
SAMPLE_BYTES = 2
FRAME_BYTES = CHANNELS * SAMPLE_BYTES
"""Bytes per stereo sample frame (left + right, PCM16)."""
SUFFIX = ".wav"
PARTIAL_SUFFIX = ".wav.part"
"""A recording being written; renamed to ``<name>.wav`` once finalised."""
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-]{1,100}")


def wav_header(rate_hz: int, data_bytes: int) -> bytes:
    """The 44-byte header of a stereo PCM16 WAV whose data chunk holds ``data_bytes``.

    Raises:
        ValueError: ``data_bytes`` not a whole number of stereo frames, or past the 4 GiB a
            RIFF size can hold.
    """
    if data_bytes % FRAME_BYTES or not 0 <= data_bytes <= 0xFFFFFFFF - 36:
        raise ValueError(f"data_bytes={data_bytes} is not a valid stereo PCM16 size")
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,  # PCM fmt chunk size
        1,  # WAVE_FORMAT_PCM
        CHANNELS,
        rate_hz,
        rate_hz * FRAME_BYTES,  # byte rate
        FRAME_BYTES,  # block align
        SAMPLE_BYTES * 8,
        b"data",
        data_bytes,
    )


def _mulaw_table() -> npt.NDArray[np.int16]:
    """The 256 mu-law codes decoded to PCM16 (G.711: complement, bias 0x84)."""
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(codes & 0x80, -magnitude, magnitude).astype(np.int16)


MULAW_TO_PCM16 = _mulaw_table()
"""mu-law code -> PCM16 sample (0xFF -> 0, 0x00 -> -32124, 0x80 -> 32124)."""


def decode_mulaw(data: bytes) -> npt.NDArray[np.int16]:
    """G.711 mu-law bytes -> PCM16 samples (one per byte)."""
    return MULAW_TO_PCM16[np.frombuffer(data, dtype=np.uint8)]


def file_stem(call_uuid: str) -> str:
    """The recording's file name without suffix: the call id itself when it is plain
    (letters, digits, ``-``, ``_``; at most 100), else ``call-`` and its SHA-256 (so a call
    id from a webhook can never name a path outside the recordings folder)."""
    if _SAFE_NAME.fullmatch(call_uuid):
        return call_uuid
    return "call-" + hashlib.sha256(call_uuid.encode("utf-8", "replace")).hexdigest()
