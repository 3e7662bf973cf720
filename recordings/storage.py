"""Where encrypted recordings live: S3 (boto3) when RECORDINGS_S3_BUCKET is set, else a local folder.

Both only ever see ciphertext. A put is all-or-nothing: S3 shows an object only once its (multipart)
upload completes, and the folder writes a temporary file and renames it into place, so a worker
killed mid-upload leaves no half object under the final key.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol

from django.conf import settings

logger = logging.getLogger(__name__)

# S3's parts are at least 5 MiB (but the last); 8 MiB parts keep a 2 GiB upload to 256 requests.
PART_SIZE = 8 * 1024 * 1024
PARTS_IN_FLIGHT = 2


class StorageError(Exception):
    """The store failed or does not hold the object."""


class Storage(Protocol):
    name: str

    def put(self, key: str, source: BinaryIO) -> None: ...

    def open(self, key: str, start: int = 0) -> BinaryIO: ...

    def size(self, key: str) -> int: ...

    def delete(self, key: str) -> None: ...


class LocalStorage:
    """Files under a folder (var/recordings by default): the embedded store of `make run`."""

    name = "local"

    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise StorageError(f"storage key escapes the recordings folder: {key!r}")
        return path

    def put(self, key: str, source: BinaryIO) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".partial-")
        try:
            with os.fdopen(handle, "wb") as out:
                while block := source.read(1024 * 1024):
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def open(self, key: str, start: int = 0) -> BinaryIO:
        try:
            handle = self._path(key).open("rb")
        except FileNotFoundError as exc:
            raise StorageError(f"object {key!r} is not in the recordings folder") from exc
        handle.seek(start)
        return handle

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError as exc:
            raise StorageError(f"object {key!r} is not in the recordings folder") from exc

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3Storage:
    """An S3 bucket (or an S3-compatible endpoint) through boto3, with timeouts and retries."""

    name = "s3"

    def __init__(self, *, bucket: str, prefix: str, region: str, endpoint_url: str | None, sse: str = ""):
        import boto3
        from botocore.config import Config

        self.bucket, self.prefix, self.sse = bucket, prefix, sse
        self.client = boto3.client(
            "s3",
            region_name=region,
            endpoint_url=endpoint_url,
            config=Config(
                connect_timeout=settings.RECORDINGS_S3_CONNECT_TIMEOUT,
                read_timeout=settings.RECORDINGS_S3_READ_TIMEOUT,
                # total_max_attempts counts the first try too (max_attempts would count only retries)
                retries={"total_max_attempts": settings.RECORDINGS_S3_MAX_ATTEMPTS, "mode": "standard"},
            ),
        )

    def _key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def put(self, key: str, source: BinaryIO) -> None:
        """A multipart upload of 8 MiB parts, at most PARTS_IN_FLIGHT sent at a time while the next is
        read: memory stays at a few parts whatever the file's size. (boto3's managed transfer buffers
        up to 10 parts of a stream it cannot rewind, and ours cannot be: a 1 GB store grew the worker
        by ~80 MB; bench/recordings.py.) S3 shows the object only once the upload completes; a
        failed one is aborted, so no parts are left behind to pay for."""
        from recordings.crypto import read_full

        extra = {"ServerSideEncryption": self.sse} if self.sse else {}
        where = {"Bucket": self.bucket, "Key": self._key(key)}
        block = read_full(source, PART_SIZE)
        if len(block) < PART_SIZE:
            self._call("upload", key, lambda: self.client.put_object(Body=block, **where, **extra))
            return
        upload_id = self._call("upload", key, lambda: self.client.create_multipart_upload(**where, **extra))["UploadId"]
        try:
            parts = self._upload_parts(key, where, upload_id, block, source)
            self._call(
                "upload",
                key,
                lambda: self.client.complete_multipart_upload(
                    **where, UploadId=upload_id, MultipartUpload={"Parts": parts}
                ),
            )
        except BaseException:
            try:
                self.client.abort_multipart_upload(**where, UploadId=upload_id)
            except Exception as exc:  # the bucket's lifecycle rule for incomplete uploads is the backstop
                logger.warning("multipart upload not aborted", extra={"key": key, "reason": str(exc)})
            raise

    def _upload_parts(self, key: str, where: dict, upload_id: str, block: bytes, source: BinaryIO) -> list[dict]:
        from concurrent.futures import ThreadPoolExecutor

        from recordings.crypto import read_full

        def send(number: int, body: bytes) -> dict:
            answer = self._call(
                "upload",
                key,
                lambda: self.client.upload_part(**where, UploadId=upload_id, PartNumber=number, Body=body),
            )
            return {"PartNumber": number, "ETag": answer["ETag"]}

        parts, in_flight, number = [], [], 0
        with ThreadPoolExecutor(max_workers=PARTS_IN_FLIGHT, thread_name_prefix="s3-part") as pool:
            while block:
                number += 1
                in_flight.append(pool.submit(send, number, block))
                block = b""
                if len(in_flight) >= PARTS_IN_FLIGHT:
                    parts.append(in_flight.pop(0).result())
                block = read_full(source, PART_SIZE)
            parts.extend(future.result() for future in in_flight)
        return parts

    def _call(self, doing: str, key: str, request):
        try:
            return request()
        except Exception as exc:  # boto3 raises many kinds (client, connection, validation)
            raise StorageError(f"{doing} of {key!r} to s3://{self.bucket} failed: {exc}") from exc

    def open(self, key: str, start: int = 0) -> BinaryIO:
        from botocore.exceptions import BotoCoreError, ClientError

        arguments = {"Bucket": self.bucket, "Key": self._key(key)}
        if start:
            arguments["Range"] = f"bytes={start}-"
        try:
            return self.client.get_object(**arguments)["Body"]
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"object {key!r} could not be read from s3://{self.bucket}: {exc}") from exc

    def size(self, key: str) -> int:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._key(key))["ContentLength"]
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"object {key!r} is not in s3://{self.bucket}: {exc}") from exc

    def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"object {key!r} could not be deleted from s3://{self.bucket}: {exc}") from exc


def get_storage() -> Storage:
    """The configured store (built per call: settings may change, and clients are cheap)."""
    if settings.RECORDINGS_S3_BUCKET:
        return S3Storage(
            bucket=settings.RECORDINGS_S3_BUCKET,
            prefix=settings.RECORDINGS_S3_PREFIX,
            region=settings.RECORDINGS_S3_REGION,
            endpoint_url=settings.RECORDINGS_S3_ENDPOINT_URL,
            sse=settings.RECORDINGS_S3_SSE,
        )
    return LocalStorage(settings.RECORDINGS_LOCAL_DIR)
