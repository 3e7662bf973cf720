"""Test audio made here: a sine at 8 kHz, written as WAV (wave module) or encoded with PyAV."""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

RATE = 8000


def sine_wav(path: Path, seconds: float = 2.0, rate: int = RATE, frequency: float = 440.0) -> Path:
    frames = int(seconds * rate)
    samples = (int(12000 * math.sin(2 * math.pi * frequency * n / rate)) for n in range(frames))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"".join(struct.pack("<h", sample) for sample in samples))
    return path


def encoded(path: Path, fmt: str, seconds: float = 2.0) -> Path:
    """A sine in `fmt` (wav, mp3, flac, aac as ADTS) at 8 kHz mono (AAC at 16 kHz)."""
    import av

    source = sine_wav(path.with_suffix(".src.wav"), seconds)
    if fmt == "wav":
        return source
    codec, container, rate = {
        "mp3": ("libmp3lame", "mp3", RATE),
        "flac": ("flac", "flac", RATE),
        "aac": ("aac", "adts", 16000),
    }[fmt]
    with av.open(str(source)) as inp, av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        resampler = av.AudioResampler(
            format=stream.codec_context.codec.audio_formats[0].name,
            layout="mono",
            rate=rate,
            frame_size=stream.codec_context.frame_size or None,
        )
        for frame in inp.decode(audio=0):
            frame.pts = None
            for converted in resampler.resample(frame):
                out.mux(stream.encode(converted))
        for converted in resampler.resample(None):
            out.mux(stream.encode(converted))
        out.mux(stream.encode(None))
    return path
