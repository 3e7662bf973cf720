"""Recordings benchmark: the store, download and transcode paths a user's audio takes, on the real code.

Each measurement runs in a fresh child process of this script (Django set up against a bench
database), which warms up with a small file, then samples its own RSS every 10 ms while it works:
- store: `recordings.services.upload_audio` (what `PUT /api/v1/recordings/{id}/audio` calls): detect the
  format, encrypt in authenticated chunks under a fresh data key, upload (local folder or moto's S3);
- download: `recordings.selectors.open_download` plus reading every chunk (what the download view
  streams): the integrity pass over every chunk and the SHA-256, then the decrypting stream;
- transcode: `recordings.audio.transcode` alone, and `recordings.services.process` (what the worker's
  `recordings.process_upload` task runs: decrypt, transcode, encrypt, store) per quality level.

Prints one JSON object: MB/s for store and download per target and size (MB = 2**20 bytes), the
peak RSS growth over the child's warmed-up baseline (target: < 64 MB, streaming not buffering),
and the speed in x real time per quality level for an 8 kHz mono WAV.

Usage: .venv/bin/python bench/recordings.py [--sizes 10,100,1000] [--targets disk,s3]
           [--transcode-seconds 600] [--skip-transcode] [--skip-store]
Uses DATABASE_URL / REDIS_URL when set (a fresh database `<name>_recordingsbench` next to the named
one; the Redis database is flushed), else SQLite in var/ and an embedded Redis. The S3 target is
moto's server (ThreadedMotoServer) on 127.0.0.1 in the parent process, idle while a child works.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from escalation_latency import PROJECT, free_port, prepare_database, start_redis

MB = 1024 * 1024
RATE = 8000  # telephony: 8 kHz, 16-bit mono = 16 000 bytes per second of audio
BYTES_PER_SECOND = RATE * 2
BUCKET = "bench-recordings"
WARMUP_MB = 1
RSS_TARGET_MB = 64


# --- test audio (PyAV, written once per size) --------------------------------------------------------


def write_wav(path: Path, size_bytes: int) -> Path:
    """An 8 kHz mono 16-bit WAV of a 440 Hz tone, about `size_bytes` long, written by PyAV frame by frame."""
    import av

    tone = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * n / RATE))) for n in range(RATE))
    block_seconds = 10
    samples_left = max(RATE, (size_bytes - 78) // 2)  # PyAV's WAV header (with its LIST chunk) is 78 bytes
    with av.open(str(path), "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=RATE, layout="mono")
        while samples_left > 0:
            samples = min(samples_left, RATE * block_seconds)
            frame = av.AudioFrame(format="s16", layout="mono", samples=samples)
            frame.planes[0].update((tone * block_seconds)[: samples * 2])
            frame.sample_rate, frame.pts = RATE, None
            out.mux(stream.encode(frame))
            samples_left -= samples
        out.mux(stream.encode(None))
    return path


# --- the child: one measurement in a process of its own ------------------------------------------------


class PeakRss:
    """Samples this process's RSS every 10 ms in a thread; `growth_mb` is the peak over the baseline."""

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process()
        self.baseline = self.peak = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def growth_mb(self) -> float:
        return round((self.peak - self.baseline) / MB, 1)


def _store(path: Path, quality: str = "standard") -> int:
    from recordings import services

    recording = services.start_voice(session_id="bench", agent_id="bench", customer_id="bench", quality=quality)
    with path.open("rb") as source:
        services.upload_audio(recording.pk, source)
    return recording.pk


def _mark(recording_id: int, status: str) -> None:
    """Bench setup, not a shortcut through the measured path: a stored upload is what a download reads,
    a `processing` one is what the worker's task finds after `stop_voice`, without a broker in between."""
    from recordings.models import Recording

    Recording.objects.filter(pk=recording_id).update(status=status)


def _download(recording_id: int) -> tuple[int, float]:
    """Bytes read through the download path, and seconds until the first byte could be sent."""
    from recordings import selectors

    started = time.perf_counter()
    download = selectors.open_download(recording_id)
    first_byte = time.perf_counter() - started
    return sum(len(chunk) for chunk in download.chunks), first_byte


def _discard(recording_id: int) -> None:
    from recordings.models import Recording
    from recordings.storage import get_storage

    recording = Recording.objects.get(pk=recording_id)
    if recording.storage_key:
        get_storage().delete(recording.storage_key)
    recording.delete()


def _warm_up(warmup: Path) -> None:
    """One small store and download, so imports, clients and connections are not counted as growth."""
    from recordings.models import Status

    recording_id = _store(warmup)
    _mark(recording_id, Status.STORED)
    _download(recording_id)
    _discard(recording_id)


def child_store(path: Path, warmup: Path) -> dict:
    from recordings.models import Status

    _warm_up(warmup)
    with PeakRss() as rss:
        started = time.perf_counter()
        recording_id = _store(path)
        seconds = time.perf_counter() - started
    _mark(recording_id, Status.STORED)
    return {"recording_id": recording_id, "seconds": seconds, "rss_growth_mb": rss.growth_mb}


def child_download(recording_id: int, warmup: Path) -> dict:
    from recordings.models import Recording

    _warm_up(warmup)
    expected = Recording.objects.get(pk=recording_id).size_bytes
    with PeakRss() as rss:
        started = time.perf_counter()
        received, first_byte = _download(recording_id)
        seconds = time.perf_counter() - started
    _discard(recording_id)
    if received != expected:
        raise RuntimeError(f"the download gave {received} bytes where {expected} were stored")
    return {"seconds": seconds, "first_byte_seconds": first_byte, "rss_growth_mb": rss.growth_mb}


def child_transcode(path: Path, work: Path) -> dict:
    from recordings import audio, services
    from recordings.models import Recording, Status

    figures = {}
    clip = write_wav(work / "clip.wav", 5 * BYTES_PER_SECOND)
    for quality in audio.QUALITY_LEVELS:  # codecs opened once before any clock runs
        audio.transcode(clip, work / f"clip.{audio.OUTPUT_FORMATS[quality]}", quality)
    for quality in audio.QUALITY_LEVELS:
        target = work / f"alone.{audio.OUTPUT_FORMATS[quality]}"
        started = time.perf_counter()
        result = audio.transcode(path, target, quality)
        alone = time.perf_counter() - started
        target.unlink()

        recording_id = _store(path, quality)
        _mark(recording_id, Status.PROCESSING)
        started = time.perf_counter()
        services.process(recording_id)
        processed = time.perf_counter() - started
        row = Recording.objects.get(pk=recording_id)
        if row.status != Status.STORED:
            raise RuntimeError(f"processing at {quality} ended {row.status}: {row.failure_reason}")
        audio_seconds = result.source.duration_seconds
        figures[quality] = {
            "format": f"{row.format} {row.codec} {row.sample_rate} Hz",
            "transcode_x_realtime": round(audio_seconds / alone, 1),
            "worker_process_x_realtime": round(audio_seconds / processed, 1),
            "output_bytes_per_second_of_audio": round(row.size_bytes / audio_seconds),
            "compression_ratio": round(row.source_size_bytes / row.size_bytes, 1),
        }
        _discard(recording_id)
    return figures


def run_child(args: argparse.Namespace) -> None:
    import django

    django.setup()
    work = Path(args.work)
    if args.child == "store":
        figures = child_store(Path(args.path), work / "warmup.wav")
    elif args.child == "download":
        figures = child_download(args.recording_id, work / "warmup.wav")
    else:
        figures = child_transcode(Path(args.path), work)
    print(json.dumps(figures))


# --- the parent: audio, stores, children, figures ---------------------------------------------------


def child(env: dict, work: Path, kind: str, *extra: str) -> dict:
    command = [sys.executable, __file__, "--child", kind, "--work", str(work), *extra]
    done = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the {kind} child failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def start_moto(env: dict) -> tuple[object, dict]:
    """moto's S3 server on loopback (in this process, idle while a child works) and a fresh bucket."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # not a line per request on the console
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    credentials = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_SESSION_TOKEN": "bench"}
    os.environ.update(credentials)
    boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
    s3_env = {
        **env,
        **credentials,
        "RECORDINGS_S3_BUCKET": BUCKET,
        "RECORDINGS_S3_ENDPOINT_URL": endpoint,
        "RECORDINGS_S3_REGION": "us-east-1",
    }
    return server, s3_env


def throughput(size_bytes: int, seconds: float) -> float:
    return round(size_bytes / MB / seconds, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100,1000", help="file sizes in MB (2**20 bytes), comma-separated")
    parser.add_argument("--targets", default="disk,s3", help="disk, s3 or both")
    parser.add_argument("--transcode-seconds", type=float, default=600.0, help="length of the transcoded WAV")
    parser.add_argument("--skip-transcode", action="store_true")
    parser.add_argument("--skip-store", action="store_true", help="only the transcoding figures")
    parser.add_argument("--child", choices=["store", "download", "transcode"], help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--recording-id", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args)
        return

    sizes = [int(size) for size in args.sizes.split(",") if size.strip()]
    targets = [target.strip() for target in args.targets.split(",") if target.strip()]
    if unknown := set(targets) - {"disk", "s3"}:
        parser.error(f"unknown targets {sorted(unknown)}; use disk, s3 or both")
    work = Path(tempfile.mkdtemp(prefix="recordings-bench-"))
    moto, processes = None, []
    try:
        env = {
            **os.environ,
            "DEBUG": "false",
            "SECRET_KEY": "bench-secret",
            "LOG_LEVEL": "WARNING",
            "RECORDINGS_MASTER_KEYS": "bench-1:" + base64.b64encode(os.urandom(32)).decode(),
            "RECORDINGS_LOCAL_DIR": str(work / "store"),
            "RECORDINGS_S3_BUCKET": "",
            "PROMETHEUS_MULTIPROC_DIR": str(work / "prometheus"),
            "DATABASE_URL": prepare_database("recordingsbench"),
            "REDIS_URL": start_redis(processes),  # required outside DEBUG; this bench barely uses it
        }
        (work / "prometheus").mkdir()
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=PROJECT, env=env, check=True
        )
        write_wav(work / "warmup.wav", WARMUP_MB * MB)
        environments = {"disk": env}
        if "s3" in targets and not args.skip_store:
            moto, environments["s3"] = start_moto(env)

        store: dict = {target: {} for target in targets}
        download: dict = {target: {} for target in targets}
        rss: dict = {"store": {target: {} for target in targets}, "download": {target: {} for target in targets}}
        for size_mb in [] if args.skip_store else sizes:
            path = write_wav(work / f"audio-{size_mb}mb.wav", size_mb * MB)
            size_bytes = path.stat().st_size
            for target in targets:
                stored = child(environments[target], work, "store", "--path", str(path))
                fetched = child(environments[target], work, "download", "--recording-id", str(stored["recording_id"]))
                store[target][f"{size_mb}MB"] = {
                    "mb_per_s": throughput(size_bytes, stored["seconds"]),
                    "seconds": round(stored["seconds"], 2),
                }
                download[target][f"{size_mb}MB"] = {
                    "mb_per_s": throughput(size_bytes, fetched["seconds"]),
                    "seconds": round(fetched["seconds"], 2),
                    "first_byte_seconds": round(fetched["first_byte_seconds"], 2),
                }
                rss["store"][target][f"{size_mb}MB"] = stored["rss_growth_mb"]
                rss["download"][target][f"{size_mb}MB"] = fetched["rss_growth_mb"]
            path.unlink()

        transcode = None
        if not args.skip_transcode:
            path = write_wav(work / "transcode.wav", int(args.transcode_seconds * BYTES_PER_SECOND))
            transcode = child(env, work, "transcode", "--path", str(path))
            path.unlink()

        worst = max(
            (value for phase in rss.values() for by_size in phase.values() for value in by_size.values()),
            default=None,
        )
        print(
            json.dumps(
                {
                    "database": env["DATABASE_URL"].split(":", 1)[0],
                    "audio": "WAV, 8 kHz mono 16-bit, 440 Hz tone (PyAV)",
                    "store_mb_per_s": store if not args.skip_store else None,
                    "download_mb_per_s": download if not args.skip_store else None,
                    "peak_rss_growth_mb": {**rss, "worst": worst, "target": f"< {RSS_TARGET_MB}"}
                    if not args.skip_store
                    else None,
                    "transcode": {"audio_seconds": args.transcode_seconds, "by_quality": transcode}
                    if transcode
                    else None,
                },
                indent=2,
            )
        )
    finally:
        if moto is not None:
            moto.stop()
        for process in processes:  # the embedded Redis, when REDIS_URL was not given
            process.terminate()
            process.wait(timeout=20)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
