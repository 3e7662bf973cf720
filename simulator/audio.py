"""Real, decodable audio for the recordings the simulator "makes": a tone as long as the recording.

The audio is generated, never recorded: a 440 Hz sine with a short 880 Hz beep each second, 8 kHz
16-bit PCM (telephony), in WAV through the standard library's `wave` module.
"""

from __future__ import annotations

import io
import math
import struct
import wave

SAMPLE_RATE = 8000


def tone_wav(seconds: int, channels: int = 1) -> bytes:
    """`seconds` of tone as a WAV file (every channel the same)."""
    frames = bytearray()
    for index in range(max(0, seconds) * SAMPLE_RATE):
        in_second = index % SAMPLE_RATE
        frequency = 880.0 if in_second < SAMPLE_RATE // 10 else 440.0
        value = int(8000 * math.sin(2 * math.pi * frequency * index / SAMPLE_RATE))
        frames += struct.pack("<h", value) * channels
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(bytes(frames))
    return out.getvalue()


def tone_mp3(seconds: int, channels: int = 1) -> bytes:
    """The same tone as MP3, through PyAV (its wheel ships the LAME encoder)."""
    import av

    source = io.BytesIO(tone_wav(seconds, channels))
    out = io.BytesIO()
    with av.open(source, "r") as reader, av.open(out, "w", format="mp3") as writer:
        stream = writer.add_stream("mp3", rate=SAMPLE_RATE)
        stream.bit_rate = 32000
        for frame in reader.decode(audio=0):
            frame.pts = None
            for packet in stream.encode(frame):
                writer.mux(packet)
        for packet in stream.encode(None):
            writer.mux(packet)
    return out.getvalue()
