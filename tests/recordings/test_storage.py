"""The stores: the local folder and S3 (moto's server over HTTP) behave alike."""

from __future__ import annotations

import io
import os

import pytest

from recordings.storage import StorageError, get_storage


def test_an_object_round_trips_and_reads_from_an_offset(any_store):
    store = get_storage()
    payload = os.urandom(9 * 1024 * 1024 + 123)  # over the 8 MiB multipart threshold on S3

    store.put("voice/1.enc", io.BytesIO(payload))

    assert store.size("voice/1.enc") == len(payload)
    assert store.open("voice/1.enc").read() == payload
    assert store.open("voice/1.enc", start=5000).read() == payload[5000:]


def test_a_deleted_or_unknown_object_is_a_storage_error(any_store):
    store = get_storage()
    store.put("voice/2.enc", io.BytesIO(b"x"))

    store.delete("voice/2.enc")

    with pytest.raises(StorageError):
        store.size("voice/2.enc")
    with pytest.raises(StorageError):
        store.open("voice/404.enc")


def test_s3_holds_the_object_under_the_prefix_with_the_sse_header(s3_store, settings):
    settings.RECORDINGS_S3_SSE = "AES256"

    get_storage().put("chat/3.enc", io.BytesIO(b"sealed"))

    head = s3_store.head_object(Bucket=settings.RECORDINGS_S3_BUCKET, Key="recordings/chat/3.enc")
    assert head["ServerSideEncryption"] == "AES256"


def test_a_failed_local_write_leaves_no_object(local_store):
    class Broken(io.RawIOBase):
        def read(self, size=-1):
            raise OSError("disk gone")

    store = get_storage()
    with pytest.raises(OSError):
        store.put("voice/4.enc", Broken())

    assert list(local_store.rglob("*")) == [local_store / "voice"]


def test_a_large_s3_upload_is_sent_in_parts_and_the_sse_header_covers_them(s3_store, settings):
    settings.RECORDINGS_S3_SSE = "AES256"
    payload = os.urandom(3 * 8 * 1024 * 1024 + 7)  # four parts, the last one short

    get_storage().put("voice/5.enc", io.BytesIO(payload))

    head = s3_store.head_object(Bucket=settings.RECORDINGS_S3_BUCKET, Key="recordings/voice/5.enc")
    assert head["ContentLength"] == len(payload)
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ETag"].strip('"').endswith("-4")  # S3's multipart ETag: <md5 of md5s>-<parts>
    assert get_storage().open("voice/5.enc").read() == payload


def test_an_s3_upload_that_fails_midway_leaves_no_object_and_no_parts(s3_store, settings):
    class DiesAfterTwoParts(io.RawIOBase):
        """A source that fails after 20 MiB (a client gone, a disk error) once parts are on S3."""

        sent = 0

        def readable(self):
            return True

        def read(self, size=-1):
            if self.sent >= 20 * 1024 * 1024:
                raise OSError("the source went away")
            block = b"\0" * (size if size > 0 else 1024 * 1024)
            self.sent += len(block)
            return block

    with pytest.raises(OSError):
        get_storage().put("voice/6.enc", DiesAfterTwoParts())

    bucket = settings.RECORDINGS_S3_BUCKET
    assert "Contents" not in s3_store.list_objects_v2(Bucket=bucket, Prefix="recordings/voice/6.enc")
    assert s3_store.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
