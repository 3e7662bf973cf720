"""AWS KMS as the wrapper of recordings' data keys (optional: RECORDINGS_KMS_KEY_ID).

With a KMS key configured, each object's data key comes from KMS GenerateDataKey: we hold the
plaintext key only while encrypting, and the database keeps the ciphertext blob KMS returned, under
key id "kms:<key uuid>". Reading asks KMS to Decrypt that blob, so the master key never leaves KMS
and access to recordings can be cut off (or audited) in KMS itself. An encryption context binds each
blob to this purpose: a blob lifted from another system does not open here.

The local key ring stays readable: recordings wrapped before KMS was configured keep working, and
`manage.py rewrap_recording_keys` moves them under the KMS key (and back, if KMS is turned off).
Every call has timeouts; an unreachable KMS is `KeyServiceUnavailable` (retried by workers, a 503 on
download), never mistaken for a tampered object.
"""

from __future__ import annotations

import functools

from django.conf import settings

from recordings.storage import StorageError

PREFIX = "kms:"
ENCRYPTION_CONTEXT = {"purpose": "oncall-recordings"}


class KeyServiceUnavailable(StorageError):
    """KMS did not answer (network, throttling, a disabled key): worth trying again later, like a
    store that did not answer (the workers' retries cover both)."""


class KeyRefused(Exception):
    """KMS says this blob is not a data key it wrapped for us (tampered, or another context)."""


def enabled() -> bool:
    return bool(settings.RECORDINGS_KMS_KEY_ID)


def is_kms_key_id(key_id: str) -> bool:
    return key_id.startswith(PREFIX)


@functools.lru_cache(maxsize=4)
def _client(region: str, endpoint_url: str | None, connect_timeout: float, read_timeout: float):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "kms",
        region_name=region,
        endpoint_url=endpoint_url,
        config=Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"total_max_attempts": 3, "mode": "standard"},
        ),
    )


def client():
    return _client(
        settings.RECORDINGS_KMS_REGION or settings.RECORDINGS_S3_REGION,
        settings.RECORDINGS_KMS_ENDPOINT_URL or None,
        settings.RECORDINGS_KMS_CONNECT_TIMEOUT,
        settings.RECORDINGS_KMS_READ_TIMEOUT,
    )


def _key_id_of(arn_or_id: str) -> str:
    """'arn:aws:kms:…:key/<uuid>' -> 'kms:<uuid>' (fits the key_id column; KMS finds the key from the blob)."""
    return PREFIX + arn_or_id.rsplit("/", 1)[-1]


def _call(operation: str, **arguments) -> dict:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return getattr(client(), operation)(**arguments)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("InvalidCiphertextException", "IncorrectKeyException"):
            raise KeyRefused(f"KMS refused the wrapped data key ({code}).") from exc
        raise KeyServiceUnavailable(f"KMS {operation} failed: {code or exc}") from exc
    except BotoCoreError as exc:
        raise KeyServiceUnavailable(f"KMS {operation} failed: {exc}") from exc


def current_key_id() -> str:
    """The configured key as stored on rows ("kms:<uuid>"), whatever form (alias, ARN) configures it."""
    return _resolved(settings.RECORDINGS_KMS_KEY_ID)


@functools.lru_cache(maxsize=8)
def _resolved(configured: str) -> str:
    return _key_id_of(_call("describe_key", KeyId=configured)["KeyMetadata"]["Arn"])


def generate_data_key() -> tuple[bytes, str, bytes]:
    """(plaintext data key, key id, wrapped blob) from the configured KMS key."""
    answer = _call(
        "generate_data_key",
        KeyId=settings.RECORDINGS_KMS_KEY_ID,
        KeySpec="AES_256",
        EncryptionContext=ENCRYPTION_CONTEXT,
    )
    return answer["Plaintext"], _key_id_of(answer["KeyId"]), answer["CiphertextBlob"]


def wrap(data_key: bytes) -> tuple[str, bytes]:
    """An existing data key (re-wrapping a recording) wrapped by the configured KMS key."""
    answer = _call(
        "encrypt", KeyId=settings.RECORDINGS_KMS_KEY_ID, Plaintext=data_key, EncryptionContext=ENCRYPTION_CONTEXT
    )
    return _key_id_of(answer["KeyId"]), answer["CiphertextBlob"]


def unwrap(blob: bytes) -> bytes:
    return _call("decrypt", CiphertextBlob=blob, EncryptionContext=ENCRYPTION_CONTEXT)["Plaintext"]
