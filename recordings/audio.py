"""Audio formats: detection by content, and transcoding by quality level with PyAV (FFmpeg's codecs
ship inside its wheel; no system ffmpeg).

Quality levels, chosen for 8 kHz telephony (speech carries up to ~3.4 kHz):
- lossless: FLAC, the source's sample rate and channels (about half the size of 16-bit WAV);
- high: MP3 64 kbps mono; standard: MP3 32 kbps mono; low: MP3 16 kbps mono.
MP3 keeps the source's sample rate when MP3 allows it (8 kHz and up) and every player opens it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ACCEPTED_FORMATS = ("wav", "mp3", "flac", "aac")
MAGIC_BYTES_NEEDED = 12

QUALITY_LEVELS = ("lossless", "high", "standard", "low")
LOSSY_BITRATES = {"high": 64_000, "standard": 32_000, "low": 16_000}
MP3_SAMPLE_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
OUTPUT_FORMATS = {"lossless": "flac", "high": "mp3", "standard": "mp3", "low": "mp3"}
CONTENT_TYPES = {
    "flac": "audio/flac",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "aac": "audio/aac",
    "json.gz": "application/gzip",
}


class UnsupportedAudio(Exception):
    """Not one of the accepted formats, or not decodable audio."""


def detect_format(head: bytes) -> str | None:
    """The format named by the first bytes of a file, or None. Content decides, never the name."""
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:3] == b"ID3":
        return "mp3"
    if len(head) >= 8 and head[4:8] == b"ftyp":
        return "aac"  # an MP4/M4A container (AAC inside, checked when decoded)
    if len(head) >= 2 and head[0] == 0xFF:
        if head[1] & 0xF6 == 0xF0:
            return "aac"  # ADTS: 12-bit sync, layer 00
        if head[1] & 0xE0 == 0xE0 and head[1] & 0x06:
            return "mp3"  # MPEG audio frame sync with a layer
    return None


def unsupported_message() -> str:
    return f"Unsupported audio format; accepted: {', '.join(name.upper() for name in ACCEPTED_FORMATS)}."


@dataclass(frozen=True)
class AudioInfo:
    codec: str
    sample_rate: int
    channels: int
    duration_seconds: float


@dataclass(frozen=True)
class Transcoded:
    source: AudioInfo
    output: AudioInfo
    output_format: str


def probe(path: Path) -> AudioInfo:
    """Decodes the whole file: the duration counts samples, not the container's claim."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise UnsupportedAudio("The file holds no audio stream.")
            stream = container.streams.audio[0]
            samples = sum(frame.samples for frame in container.decode(stream))
            rate, channels = stream.codec_context.sample_rate, stream.codec_context.channels
            return AudioInfo(stream.codec_context.name, rate, channels, samples / rate if rate else 0.0)
    except av.FFmpegError as exc:
        raise UnsupportedAudio(f"The audio could not be decoded: {exc}") from exc


def transcode(source: Path, target: Path, quality: str) -> Transcoded:
    """Decodes `source` and encodes it at `quality` into `target`, frame by frame (streamed)."""
    import av

    if quality not in QUALITY_LEVELS:
        raise ValueError(f"unknown quality {quality!r}")
    output_format = OUTPUT_FORMATS[quality]
    try:
        with av.open(str(source)) as inp, av.open(str(target), "w", format=output_format) as out:
            if not inp.streams.audio:
                raise UnsupportedAudio("The file holds no audio stream.")
            in_stream = inp.streams.audio[0]
            in_ctx = in_stream.codec_context
            rate, channels = in_ctx.sample_rate, in_ctx.channels
            if output_format == "flac":
                out_stream = out.add_stream("flac", rate=rate, layout=in_ctx.layout.name)
                sample_format = "s16" if in_ctx.format.bytes <= 2 else "s32"
            else:
                rate = rate if rate in MP3_SAMPLE_RATES else min(MP3_SAMPLE_RATES, key=lambda r: abs(r - rate))
                out_stream = out.add_stream("libmp3lame", rate=rate, layout="mono")
                out_stream.codec_context.bit_rate = LOSSY_BITRATES[quality]
                sample_format = "s16p"
            resampler = av.AudioResampler(
                format=sample_format,
                layout=out_stream.codec_context.layout.name,
                rate=rate,
                frame_size=out_stream.codec_context.frame_size or None,
            )
            source_samples = output_samples = 0
            for frame in inp.decode(in_stream):
                source_samples += frame.samples
                frame.pts = None
                for converted in resampler.resample(frame):
                    output_samples += converted.samples
                    out.mux(out_stream.encode(converted))
            for converted in resampler.resample(None):
                output_samples += converted.samples
                out.mux(out_stream.encode(converted))
            out.mux(out_stream.encode(None))
            out_rate, out_channels = out_stream.codec_context.sample_rate, out_stream.codec_context.channels
    except av.FFmpegError as exc:
        raise UnsupportedAudio(f"The audio could not be decoded: {exc}") from exc
    if source_samples == 0:
        raise UnsupportedAudio("The file holds no audio samples.")
    return Transcoded(
        source=AudioInfo(in_ctx.name, in_ctx.sample_rate, channels, source_samples / in_ctx.sample_rate),
        output=AudioInfo(out_stream.codec_context.name, out_rate, out_channels, output_samples / out_rate),
        output_format=output_format,
    )
