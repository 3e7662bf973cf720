"""Recording stores for tests: a temporary folder, or moto's S3 server on a loopback port."""

from __future__ import annotations

import base64
import socket

import pytest

TEST_MASTER_KEYS = "test-2:" + base64.b64encode(b"2" * 32).decode() + ",test-1:" + base64.b64encode(b"1" * 32).decode()
BUCKET = "test-recordings"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(autouse=True)
def recording_keys(settings):
    settings.RECORDINGS_MASTER_KEYS = TEST_MASTER_KEYS


@pytest.fixture
def local_store(settings, tmp_path):
    """Recordings in a folder of this test's own."""
    settings.RECORDINGS_S3_BUCKET = ""
    settings.RECORDINGS_LOCAL_DIR = tmp_path / "recordings"
    return settings.RECORDINGS_LOCAL_DIR


@pytest.fixture(scope="session")
def moto_server():
    """moto's S3 server: a real HTTP endpoint on loopback that boto3 talks to as to AWS."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_store(settings, moto_server, monkeypatch):
    """Recordings in a fresh bucket on moto's server."""
    import boto3

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    settings.RECORDINGS_S3_BUCKET = BUCKET
    settings.RECORDINGS_S3_ENDPOINT_URL = moto_server
    settings.RECORDINGS_S3_REGION = "us-east-1"
    settings.RECORDINGS_S3_PREFIX = "recordings/"
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_server)
    existing = [bucket["Name"] for bucket in client.list_buckets().get("Buckets", [])]
    if BUCKET in existing:
        for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=item["Key"])
    else:
        client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture(params=["local", "s3"])
def any_store(request):
    """Each test using it runs once on the folder and once on moto's S3."""
    return request.getfixturevalue(f"{request.param}_store")
